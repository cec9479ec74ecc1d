"""Data-parallel training over MPI: steps/s on 1 and 2 ranks, the all-reduce's share, and a projection.

    python benchmarks/distributed_bench.py [--launches 2] [--out scripts/results/distributed.json]

The driver starts ``mpiexec -n 1`` and ``mpiexec -n 2`` workers in turn (interleaved, ``--launches``
times each; one convlens/BLAS thread per rank, the default under MPI) with OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE removed from the workers' environment (they push OpenBLAS onto slower kernels). Each
worker times the plain ``zero_grad / model(x) / loss.backward() / opt.step()`` loop through
`DistributedDataParallel` at a fixed *global* batch (each of N ranks takes B/N images), in blocks,
for three nets: LeNet-5, the ConvNetJS CIFAR-10 net and an airbench94-style net (its widths 64/256/256,
conv-BN-GELU blocks with max pooling; built here, ~2.0 M parameters); and, on 2 ranks, the all-reduce
of float32 buffers from 4 KiB to 32 MiB. The all-reduce share is the time DistributedDataParallel
spends launching and waiting for reductions over the step time (it includes waiting for the slower
rank). Then the measured single-rank step times and the parameter sizes go into the cost model of
docs/distributed.md for 8, 64 and 256 ranks on 10 and 100 Gb/s networks.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
NETS = {"lenet5": (64, (1, 28, 28)), "convnetjs-cifar10": (32, (3, 32, 32)), "airbench-style": (16, (3, 32, 32))}
# (label, bandwidth in bytes/s, per-message latency in s): assumptions, see docs/distributed.md
NETWORKS = (("10 Gb/s Ethernet", 10e9 / 8, 25e-6), ("100 Gb/s InfiniBand", 100e9 / 8, 2e-6))


def airbench_style():
    """airbench94's layout (Keller Jordan's CIFAR-10 speedrun net) in convlens layers: a 2×2 stem
    conv to 24 channels, then three blocks conv-BN-GELU, max pool 2, conv-BN-GELU (64, 256, 256
    channels), global max pool, a linear layer without bias."""
    from convlens import nn

    act = getattr(nn, "GELU", nn.ReLU)  # ReLU where this convlens has no GELU yet (about the same cost)

    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(cout), act(),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), act()]

    return nn.Sequential(nn.Conv2d(3, 24, 2, padding=0, bias=True), act(), *block(24, 64), *block(64, 256),
                         *block(256, 256), nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(256, 10, bias=False))


def _model(name):
    from convlens import models

    return airbench_style() if name == "airbench-style" else models.get_model(name)


def worker(blocks: int, seconds: float) -> dict:
    import numpy as np

    import convlens
    from convlens import distributed as dist
    from convlens.nn import functional as F

    dist.init()
    n, r = dist.world_size(), dist.rank()
    out = {"ranks": n, "threads": convlens.parallel.get_num_threads(), "nets": {}}
    for name, (batch, shape) in NETS.items():
        convlens.manual_seed(0)
        net = _model(name)
        model = dist.DistributedDataParallel(net)
        g = np.random.default_rng(r)
        x = convlens.tensor(g.standard_normal((batch // n, *shape)).astype(np.float32))
        y = convlens.tensor(g.integers(0, 10, batch // n))
        opt = convlens.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

        def step(model=model, opt=opt, x=x, y=y):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()

        t0 = time.perf_counter()
        step()
        step()
        per_step = (time.perf_counter() - t0) / 2
        steps = max(2, int(seconds / per_step))
        steps = int(dist.broadcast_json(steps))  # every rank runs the same number
        rows = []
        for b in range(blocks):
            model.overlap = n == 1 or b % 2 == 0  # alternate overlapped and blocking reductions on 2 ranks
            dist.barrier()
            c0, t0 = model.comm_seconds, time.perf_counter()
            for _ in range(steps):
                step()
            wall = time.perf_counter() - t0
            rows.append({"overlap": model.overlap, "steps_per_s": steps / wall,
                         "comm_share": (model.comm_seconds - c0) / wall})
        params = sum(int(p._data.size) for p in net.parameters())
        ts = []
        if n > 1:  # the reduction alone: one buffer of all the gradients, no waiting for the other rank
            buf = np.ones(params, np.float32)
            for _ in range(15):
                dist.barrier()
                t0 = time.perf_counter()
                dist.all_reduce(buf)
                ts.append(time.perf_counter() - t0)
        out["nets"][name] = {"global_batch": batch, "params": params, "blocks": rows,
                             "allreduce_s": statistics.median(ts) if ts else 0.0}
    if n == 2:
        sizes, times = [], []
        for k in range(10, 24, 1):  # 4 KiB .. 32 MiB
            a = np.ones(1 << k, np.float32)
            reps = max(3, min(50, int(0.2 / max(1e-5, (4 << k) / 2e9))))
            ts = []
            for _ in range(reps):
                dist.barrier()
                t0 = time.perf_counter()
                dist.all_reduce(a)
                ts.append(time.perf_counter() - t0)
            sizes.append(4 << k)
            times.append(statistics.median(ts))
        out["allreduce"] = {"bytes": sizes, "seconds": times}
    return out if r == 0 else None


def _launch(mpiexec: str, ranks: int, blocks: int, seconds: float) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                            "CONVLENS_NUM_THREADS")}
    cmd = [mpiexec, "-n", str(ranks), sys.executable, str(HERE), "--worker", str(blocks), str(seconds)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def project(t_compute: float, nbytes: int, ranks: int, bandwidth: float, latency: float) -> tuple[float, float]:
    """(all-reduce seconds, speed-up over one rank) for `ranks` ranks each running a step of
    `t_compute` seconds on its own B images (the global batch grows with the ranks): the all-reduce
    as Rabenseifner's reduce-scatter + all-gather, 2·log2(N)·latency + 2·(N−1)/N·bytes/bandwidth,
    not overlapped with compute."""
    import math

    t_ar = 2 * math.log2(ranks) * latency + 2 * (ranks - 1) / ranks * nbytes / bandwidth
    return t_ar, ranks * t_compute / (t_compute + t_ar)


def _params(name: str) -> int:
    return sum(int(p._data.size) for p in _model(name).parameters())


def print_projection(nets: dict, into: dict) -> None:
    """nets: name -> (one-rank step seconds at the per-rank batch, gradient bytes)."""
    print("\nprojection (per-rank batch as measured, global batch × N; all-reduce not overlapped):")
    for name, (t_c, nbytes) in nets.items():
        for label, bw, lat in NETWORKS:
            row = {}
            for n in (8, 64, 256):
                t_ar, s = project(t_c, nbytes, n, bw, lat)
                row[n] = {"allreduce_ms": t_ar * 1e3, "speedup": s, "efficiency": s / n}
            into.setdefault(name, {})[label] = row
            print(f"  {name:<18} {label:<20} step {t_c * 1e3:7.1f} ms + all-reduce "
                  + ", ".join(f"N={n}: {v['allreduce_ms']:.2f} ms → {v['speedup']:.1f}× ({100 * v['efficiency']:.0f} %)"
                              for n, v in row.items()))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--launches", type=int, default=2, help="launches per rank count, interleaved (default 2)")
    p.add_argument("--blocks", type=int, default=4, help="timed blocks per net and launch (default 4)")
    p.add_argument("--seconds", type=float, default=1.0, help="length of one block (default 1 s)")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    p.add_argument("--compute-ms", default="", metavar="NET=MS,...",
                   help="project with these one-rank step times (e.g. quiet-machine ones) instead of measuring")
    p.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.compute_ms:
        given = {k: float(v) / 1e3 for k, v in (kv.split("=") for kv in args.compute_ms.split(","))}
        print_projection({k: (t, 4 * _params(k)) for k, t in given.items()}, {})
        return 0
    if args.worker:
        res = worker(int(args.worker[0]), float(args.worker[1]))
        if res is not None:
            print(json.dumps(res))
        return 0
    mpiexec = str(Path(sys.executable).parent / "mpiexec")
    if not Path(mpiexec).is_file():
        mpiexec = "mpiexec"
    load = os.getloadavg()
    runs = {1: [], 2: []}
    for _ in range(args.launches):
        for ranks in (1, 2):
            runs[ranks].append(_launch(mpiexec, ranks, args.blocks, args.seconds))
    load = [round(x, 2) for x in (*load, *os.getloadavg())]
    result = {"load_before_after": load, "cpus": os.cpu_count(), "nets": {}, "allreduce": runs[2][0]["allreduce"]}
    print(f"load average before / after: {load[:3]} / {load[3:]}, {os.cpu_count()} CPUs; one thread per rank; "
          "OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset for the workers\n")
    print(f"{'net':<30}{'params':>10}{'batch':>6}{'1 rank steps/s':>20}{'2 ranks steps/s':>20}{'speed-up':>9}"
          f"{'comm+wait share':>18}{'all-reduce alone':>18}")
    for name in NETS:
        one = [b["steps_per_s"] for r in runs[1] for b in r["nets"][name]["blocks"]]
        two = {ov: [b for r in runs[2] for b in r["nets"][name]["blocks"] if b["overlap"] == ov] for ov in (True, False)}
        info = runs[1][0]["nets"][name]
        entry = {"params": info["params"], "bytes": 4 * info["params"], "global_batch": info["global_batch"],
                 "one_rank_steps_per_s": one}
        entry["two_ranks_allreduce_s"] = [r["nets"][name]["allreduce_s"] for r in runs[2]]
        for ov, rows in two.items():
            key = "overlap" if ov else "blocking"
            entry[f"two_ranks_{key}_steps_per_s"] = [b["steps_per_s"] for b in rows]
            entry[f"two_ranks_{key}_comm_share"] = [b["comm_share"] for b in rows]
        result["nets"][name] = entry
        for key in ("overlap", "blocking"):
            s2, sh = entry[f"two_ranks_{key}_steps_per_s"], entry[f"two_ranks_{key}_comm_share"]
            ar_ms = 1e3 * statistics.median(entry["two_ranks_allreduce_s"])
            print(f"{name + ' (' + key + ')':<30}{info['params']:>10,}{info['global_batch']:>6}"
                  f"{statistics.median(one):>10.1f} ({min(one):.1f}-{max(one):.1f})"
                  f"{statistics.median(s2):>10.1f} ({min(s2):.1f}-{max(s2):.1f})"
                  f"{statistics.median(s2) / statistics.median(one):>8.2f}×"
                  f"{100 * statistics.median(sh):>10.1f} % ({100 * min(sh):.0f}-{100 * max(sh):.0f})"
                  f"{ar_ms:>9.3f} ms ({ar_ms * statistics.median(s2) / 10:.1f} %)")
    ar = result["allreduce"]
    print("\nall-reduce between 2 ranks on this machine (median): "
          + ", ".join(f"{b // 1024} KiB {t * 1e3:.3g} ms" for b, t in zip(ar["bytes"], ar["seconds"]) if b in
                      (4096, 262144, 4 << 20, 32 << 20)))
    result["projection"] = {}
    print_projection({name: (1 / statistics.median(e["one_rank_steps_per_s"]), e["bytes"])
                      for name, e in result["nets"].items()}, result["projection"])
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
