"""Training throughput of convlens next to PyTorch CPU eager, measured in one interleaved run.

    python benchmarks/train_bench.py          # or: convlens bench

For each case both sides train the same network (one builder function called with convlens.nn and
with torch.nn, weights copied) on the same random float32 data with SGD + momentum, in the loop users
write: zero_grad, model(x), cross_entropy, backward, step. Timings alternate A B A B after a warm-up,
and the median of the repeats is reported with the ratio convlens / PyTorch, convlens's achieved
GFLOP/s (3 × forward FLOPs per image: forward, input gradient, weight gradient) and its fraction of the
matmul peak measured in the same run. PyTorch is imported here only: it is a benchmark oracle.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

from convlens.summary import forward_flops  # the cases' FLOPs (benchmarks/ import it from here too)

OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def lenet5(nn):
    """A: LeNet-5 as in the model zoo (ReLU, average pooling, 28×28 input padded by 2)."""
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.AvgPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.AvgPool2d(2), nn.Conv2d(16, 120, 5), nn.ReLU(), nn.Flatten(), nn.Linear(120, 84),
                         nn.ReLU(), nn.Linear(84, 10))


def convnetjs(nn):
    """B: ConvNetJS's CIFAR-10 demo net."""
    layers, c = [], 3
    for k in (16, 20, 20):
        layers += [nn.Conv2d(c, k, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]
        c = k
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(320, 10))


def vgg(nn):
    """C: VGG-style, two 3×3 convs per stage, 32 / 64 / 128 channels."""
    layers, c = [], 3
    for k in (32, 64, 128):
        layers += [nn.Conv2d(c, k, 3, padding=1), nn.ReLU(), nn.Conv2d(k, k, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        c = k
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(128 * 16, 10))


def airbench(nn):
    """D: airbench-style CIFAR-10 net: 2×2 conv to 24 channels, three blocks of conv 3×3 → max pool 2 →
    BN → GELU → conv 3×3 → BN → GELU (64, 256, 256 channels), global max pool, linear."""
    layers, c = [nn.Conv2d(3, 24, 2), nn.BatchNorm2d(24), nn.GELU()], 24
    for k in (64, 256, 256):
        layers += [nn.Conv2d(c, k, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(k), nn.GELU(),
                   nn.Conv2d(k, k, 3, padding=1, bias=False), nn.BatchNorm2d(k), nn.GELU()]
        c = k
    return nn.Sequential(*layers, nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(256, 10, bias=False))


def speech1d(nn):
    """E: 1-D, speech-like: conv1d(1→32, k=80, stride 4) → BN → ReLU → max pool 4, three conv1d(k=3)
    blocks (32, 64, 64) with BN, ReLU, max pool 4, global average pool, linear 35."""
    layers, c = [nn.Conv1d(1, 32, 80, stride=4), nn.BatchNorm1d(32), nn.ReLU(), nn.MaxPool1d(4)], 32
    for k in (32, 64, 64):
        layers += [nn.Conv1d(c, k, 3, padding=1), nn.BatchNorm1d(k), nn.ReLU(), nn.MaxPool1d(4)]
        c = k
    return nn.Sequential(*layers, nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(64, 35))


def video3d(nn):
    """F: 3-D, video-like: three conv3d(k=3, padding 1) blocks (32, 64, 128) with ReLU and max pool 2,
    global average pool, linear 10."""
    layers, c = [], 3
    for k in (32, 64, 128):
        layers += [nn.Conv3d(c, k, 3, padding=1), nn.ReLU(), nn.MaxPool3d(2)]
        c = k
    return nn.Sequential(*layers, nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(128, 10))


@dataclass
class Case:
    name: str
    build: object  # build(nn) -> nn.Sequential, called with convlens.nn and with torch.nn
    input_shape: tuple
    batch: int
    classes: int = 10


CASES = [
    Case("A LeNet-5", lenet5, (1, 28, 28), 64),
    Case("A LeNet-5", lenet5, (1, 28, 28), 256),
    Case("B ConvNetJS CIFAR-10", convnetjs, (3, 32, 32), 64),
    Case("B ConvNetJS CIFAR-10", convnetjs, (3, 32, 32), 256),
    Case("C VGG-style", vgg, (3, 32, 32), 128),
    Case("D airbench-style BN", airbench, (3, 32, 32), 512),  # ~2 s a step
    Case("E 1-D speech", speech1d, (1, 8000), 64, classes=35),
    Case("F 3-D video", video3d, (3, 16, 64, 64), 8),  # ~0.4 s a step
]
LATENCY = (0, 2, 5)  # single-image inference for A, B and D


def build_convlens(case: Case):
    from convlens import nn

    return case.build(nn)


def build_torch(model, case: Case):
    """The same network in torch.nn, from the same builder, with convlens's weights copied in."""
    import numpy as np
    import torch

    net = case.build(torch.nn)
    ours = model.state_dict()
    state = {}
    for key, value in net.state_dict().items():
        state[key] = torch.from_numpy(np.array(ours[key])).to(value.dtype).reshape(value.shape)
    net.load_state_dict(state)
    return net


def matmul_peak(threads: int) -> float:
    """GFLOP/s of a large float32 square NumPy matmul: the ceiling the GEMM-bound parts can reach."""
    import numpy as np

    a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)
    a @ a
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - t)
    return 2 * 2048**3 / best / 1e9


def _convlens_step(model, opt, x, y):
    """The loop users write (README, tutorials): zero_grad, forward, loss, backward, step."""
    import convlens.nn.functional as F

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return step


def _sliced_step(model, opt, x, y):
    """The step `convlens.train.fit` takes where it applies: forward + backward in batch slices, one per
    thread (train/data_parallel.py), then the optimizer. Reported as an extra row only."""
    import convlens.nn.functional as F
    from convlens.train.data_parallel import SlicedStep

    sliced = SlicedStep(model, F.cross_entropy)

    def step():
        opt.zero_grad()
        sliced(x, y)
        opt.step()

    return step


def _torch_step(net, opt, x, y):
    import torch

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()

    return step


# Idle time before each timed block: BLAS and OpenMP worker threads keep spinning for a while after
# their last parallel region (OpenBLAS for up to ~0.1 s), and would otherwise take a core from the
# side timed next.
SETTLE_SECONDS = 0.15


def _timed(step, iters: int, cpu: list | None = None) -> float:
    """Wall seconds of `iters` steps; the process CPU seconds they took are appended to `cpu`."""
    time.sleep(SETTLE_SECONDS)
    c, t = time.process_time(), time.perf_counter()
    for _ in range(iters):
        step()
    wall = time.perf_counter() - t
    if cpu is not None:
        cpu.append(time.process_time() - c)
    return wall


def _data(case: Case, batch: int):
    import numpy as np

    rng = np.random.default_rng(0)
    return (rng.random((batch, *case.input_shape), dtype=np.float32),
            rng.integers(0, case.classes, batch))


def _side_step(side: str, case: Case, sliced: bool = False):
    """One side's training step for `case` (the same weights on both sides: seed 0, copied to torch)."""
    import convlens
    from convlens import optim

    convlens.manual_seed(0)
    model = build_convlens(case)
    xs, ys = _data(case, case.batch)
    if side == "convlens":
        make = _sliced_step if sliced else _convlens_step
        return make(model, optim.SGD(model.parameters(), lr=0.01, momentum=0.9), convlens.tensor(xs),
                    convlens.tensor(ys)), model
    import torch

    net = build_torch(model, case)
    return _torch_step(net, torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9), torch.from_numpy(xs),
                       torch.from_numpy(ys)), model


def _side_inference(side: str, case: Case):
    """One side's single-image inference call for `case`: eval mode, no gradient recording."""
    import convlens

    convlens.manual_seed(0)
    model = build_convlens(case).eval()
    x, _ = _data(case, 1)
    if side == "convlens":
        xc = convlens.tensor(x)

        def call():
            with convlens.no_grad():
                model(xc)
        return call
    import torch

    net, xt = build_torch(model, case).eval(), torch.from_numpy(x)

    def call():
        with torch.no_grad():
            net(xt)
    return call


def worker(side: str, index: int, threads: int, sliced: bool, latency: bool = False) -> None:
    """Child process timing one side of one case on command: each line on stdin is a number of steps to
    time (0: one untimed warm-up step), each answer on stdout a JSON line {"wall": s, "cpu": s}, with
    "calls" (the seconds of each call) when timing single-image inference (`latency`)."""
    import torch

    from convlens import parallel

    torch.set_num_threads(threads)
    parallel.set_num_threads(threads)
    step = _side_inference(side, CASES[index]) if latency else _side_step(side, CASES[index], sliced)[0]
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        iters = max(int(line), 1)
        if latency:
            time.sleep(SETTLE_SECONDS)
            calls = []
            for _ in range(iters):
                t = time.perf_counter()
                step()
                calls.append(time.perf_counter() - t)
            print(json.dumps({"wall": sum(calls), "cpu": 0.0, "calls": calls}), flush=True)
            continue
        cpu: list = []
        wall = _timed(step, iters, cpu)
        print(json.dumps({"wall": wall, "cpu": cpu[0]}), flush=True)


class _Worker:
    """A worker process for one side (see `worker`); PyTorch's runs without convlens's malloc settings
    unless `same_allocator`, so that each library is timed as its users run it."""

    def __init__(self, side: str, index: int, threads: int, sliced: bool, same_allocator: bool,
                 latency: bool = False):
        from convlens.kernels import allocator

        env = os.environ.copy()
        if side == "torch" and not same_allocator:
            env[allocator.ENV] = "0"
        cmd = [sys.executable, "-m", "convlens.bench", "--worker", side, "--worker-case", str(index),
               "--threads", str(threads)] + (["--sliced"] if sliced else []) + (["--worker-latency"] if latency else [])
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"convlens bench: a worker process ended early (exit code {self.proc.wait()})")
        return json.loads(line)

    def time(self, iters: int) -> tuple[float, float]:
        answer = self.ask(iters)
        return answer["wall"], answer["cpu"]

    def ask(self, iters: int) -> dict:
        self.proc.stdin.write(f"{iters}\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def run_case(case: Case, repeats: int, min_seconds: float, threads: int, sliced: bool = False,
             same_allocator: bool = False):
    """Interleaved A B A B timing of both sides, each in its own process (only one of them runs at a time)."""
    index = CASES.index(case)
    ours = _Worker("convlens", index, threads, sliced, same_allocator)
    theirs = _Worker("torch", index, threads, sliced, same_allocator)
    try:
        for w in (ours, theirs):  # warm-up: two steps (the first builds caches, workspaces, JIT primitives)
            w.time(2)
        per = max(ours.time(1)[0], theirs.time(1)[0])
        iters = max(1, int(min_seconds / max(per, 1e-4)))
        a, b, ca, cb = [], [], [], []
        for _ in range(repeats):  # A B A B ..., every case all its blocks (3 one-step blocks read F 0.94–1.10)
            for w, rate, cpu in ((ours, a, ca), (theirs, b, cb)):
                wall, c = w.time(iters)
                rate.append(case.batch * iters / wall)
                cpu.append(c)
    finally:
        ours.close()
        theirs.close()
    # CPU seconds per step of each side, as a ratio PyTorch / convlens: on a loaded machine the wall
    # clock mostly measures the other users; with --threads 1 CPU time is the work each side did
    # (with more threads it also counts time spent spinning while waiting)
    return a, b, forward_flops(build_convlens(case), case.input_shape), statistics.median(cb) / statistics.median(ca)


def latency(case: Case, threads: int = 2, blocks: int = 8, calls: int = 50, same_allocator: bool = False):
    """Median single-image inference time (ms) of both sides, eval mode, no gradient recording: each side
    in its own process (as for training), `blocks` blocks of `calls` calls per side, alternating, each
    block after the idle pause. (Timing both libraries call by call in one process measured their
    OpenMP runtimes against each other: each one's workers spin after a call, on the cores the other's
    next call needs — LeNet-5 read 0.70 against 0.60 ms that way, 0.28 and 0.28 ms each on its own.)"""
    index = CASES.index(case)
    ours = _Worker("convlens", index, threads, False, same_allocator, latency=True)
    theirs = _Worker("torch", index, threads, False, same_allocator, latency=True)
    times: dict = {"convlens": [], "torch": []}
    try:
        for w in (ours, theirs):  # warm-up
            w.ask(20)
        for _ in range(blocks):
            for name, w in (("convlens", ours), ("torch", theirs)):
                times[name] += w.ask(calls)["calls"]
    finally:
        ours.close()
        theirs.close()
    return statistics.median(times["convlens"]) * 1e3, statistics.median(times["torch"]) * 1e3


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    """Reset the kernel's peak-RSS mark (VmHWM) so that import-time peaks do not count (Linux ≥ 4.0)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def memory_probe(side: str, index: int, threads: int, steps: int = 2) -> None:
    """Child process: peak resident memory of training case `index`, minus resident memory after imports."""
    import torch

    from convlens import parallel

    torch.set_num_threads(threads)
    parallel.set_num_threads(threads)
    _reset_peak()
    base = _status_kib("VmRSS")
    step, model = _side_step(side, CASES[index])
    if side == "torch":
        del model
    for _ in range(steps):
        step()
    peak = _status_kib("VmHWM")
    print(json.dumps({"side": side, "peak_minus_base_mib": (peak - base) / 1024}))


def _memory(side: str, index: int, threads: int, same_allocator: bool = False) -> float:
    from convlens.kernels import allocator

    env = os.environ.copy()
    if side == "torch" and not same_allocator:
        env[allocator.ENV] = "0"
    out = subprocess.run([sys.executable, "-m", "convlens.bench", "--memory-probe", side, "--memory-case", str(index),
                          "--threads", str(threads)], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_minus_base_mib"]


def _load() -> str:
    try:
        return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "load average unknown"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="convlens bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed blocks per side and case (default 7)")
    parser.add_argument("--seconds", type=float, default=0.6, help="length of one timed block (default 0.6 s)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep-openblas-env", action="store_true",
                        help="do not unset OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for this process")
    parser.add_argument("--cases", default="all", help=f"comma list of case indices (0-{len(CASES) - 1}) or 'all'")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--no-training", action="store_true", help="skip the timed training cases")
    parser.add_argument("--sliced", action="store_true", help="also time SlicedStep (fit's step) as an extra row")
    parser.add_argument("--same-allocator", action="store_true",
                        help="run PyTorch with convlens's malloc settings too (convlens/kernels/allocator.py); by "
                             "default each side runs with its own library's settings, as its users get them")
    parser.add_argument("--memory-probe", choices=["convlens", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=["convlens", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--worker-case", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--worker-latency", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--memory-case", type=int, default=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.memory_probe:
        memory_probe(args.memory_probe, args.memory_case, args.threads)
        return 0
    if args.worker:
        worker(args.worker, args.worker_case, args.threads, args.sliced, args.worker_latency)
        return 0
    removed = [v for v in OPENBLAS_VARS if v in os.environ]
    if removed and not args.keep_openblas_env:
        # OpenBLAS reads these when it loads, so the process restarts without them.
        env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_VARS}
        env["CONVLENS_BENCH_UNSET"] = ",".join(removed)
        os.execve(sys.executable, [sys.executable, "-m", "convlens.bench", *(argv or sys.argv[1:])], env)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    try:
        import torch
    except ImportError:
        print("convlens bench: PyTorch is needed as the reference (pip install torch==2.13.0)", file=sys.stderr)
        return 2
    import numpy as np
    from threadpoolctl import threadpool_info, threadpool_limits

    import convlens
    from convlens import parallel

    torch.set_num_threads(args.threads)
    parallel.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    blas = [f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')}, {i.get('num_threads')} threads)"
            for i in threadpool_info() if i.get("user_api") == "blas"]
    unset = os.environ.get("CONVLENS_BENCH_UNSET")
    print(f"convlens {convlens.__version__} · numpy {np.__version__} · torch {torch.__version__} · "
          f"python {platform.python_version()} · {platform.machine()} · {os.cpu_count()} CPUs")
    print(f"NumPy BLAS: {'; '.join(blas)}")
    print("environment: " + (f"unset {unset} for this process (they force OpenBLAS onto slower kernels)"
                             if unset else "OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE not set"))
    print(f"at start: {_load()}")
    peak = matmul_peak(args.threads)
    print(f"matmul peak (NumPy float32 2048², {args.threads} threads): {peak:.0f} GFLOP/s")
    print(f"float32, random data, SGD momentum 0.9, {args.threads} threads; the plain loop "
          f"(zero_grad, model(x), cross_entropy, backward, step) on both sides; median [range] of the timed "
          f"blocks (~{args.seconds} s each), interleaved convlens/PyTorch, each side in its own process, PyTorch "
          f"{'with' if args.same_allocator else 'without'} convlens's malloc settings; ratio = img/s convlens / PyTorch; CPU ratio = "
          f"process CPU seconds per step PyTorch / convlens (the fair one on a loaded machine at --threads 1)\n")
    header = (f"{'case':<22}{'batch':>6}{'convlens img/s':>24}{'PyTorch img/s':>24}{'ratio':>7}{'GFLOP/s':>9}"
              f"{'of peak':>9}{'CPU ratio':>10}")
    print(header)
    print("-" * len(header))
    chosen = range(len(CASES)) if args.cases == "all" else [int(c) for c in args.cases.split(",")]

    def row(label, case, a, b, flops, cpu_ratio):
        ours, theirs = statistics.median(a), statistics.median(b)
        gflops = ours * 3 * flops / 1e9
        ra, rb = f"{ours:,.0f} [{min(a):,.0f}-{max(a):,.0f}]", f"{theirs:,.0f} [{min(b):,.0f}-{max(b):,.0f}]"
        print(f"{label:<22}{case.batch:>6}{ra:>24}{rb:>24}{ours / theirs:>7.2f}{gflops:>9.1f}{gflops / peak:>9.1%}"
              f"{cpu_ratio:>10.2f}", flush=True)
        return ours / theirs

    ratios = []
    for i in ([] if args.no_training else chosen):
        case = CASES[i]
        ratios.append(row(case.name, case, *run_case(case, args.repeats, args.seconds, args.threads,
                                                     same_allocator=args.same_allocator)))
        if args.sliced and i in (2, 4):
            row("  (SlicedStep, fit)", case, *run_case(case, args.repeats, args.seconds, args.threads, sliced=True,
                                                       same_allocator=args.same_allocator))
    if ratios:
        print(f"\nmedian ratio {statistics.median(ratios):.2f}, lowest {min(ratios):.2f}; {_load()}")
    if not args.no_latency:
        print("\nsingle-image inference latency (eval, no grad; median of 8 × 50 calls per side, each side in its "
              "own process, blocks interleaved)")
        for i in LATENCY:
            o, t = latency(CASES[i], args.threads, same_allocator=args.same_allocator)
            print(f"  {CASES[i].name:<22} convlens {o:7.3f} ms   PyTorch {t:7.3f} ms   ratio {t / o:.2f}", flush=True)
    if not args.no_memory:
        print("\npeak memory of training (peak RSS minus RSS after imports, a fresh process per side and case)")
        for i in chosen:
            ours = _memory("convlens", i, args.threads)
            theirs = _memory("torch", i, args.threads, args.same_allocator)
            print(f"  {CASES[i].name:<22} b{CASES[i].batch:<4} convlens {ours:7.0f} MiB   PyTorch {theirs:7.0f} MiB   "
                  f"ratio {ours / theirs:.2f}", flush=True)
    print(f"\nat end: {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
