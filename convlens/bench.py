"""Training throughput of convlens next to PyTorch CPU eager, measured in one interleaved run.

    python benchmarks/train_bench.py          # or: convlens bench

For each case both sides train the same network (built from one layer spec) on the same random
float32 data with SGD + momentum: forward, backward, step. Timings alternate A B A B after a warm-up,
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

OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


@dataclass
class Case:
    name: str
    model: str  # a zoo name, or "vgg" for the VGG-style net of case C
    input_shape: tuple
    batch: int


CASES = [
    Case("A LeNet-5", "lenet5", (1, 28, 28), 64),
    Case("A LeNet-5", "lenet5", (1, 28, 28), 256),
    Case("B ConvNetJS CIFAR-10", "convnetjs-cifar10", (3, 32, 32), 64),
    Case("B ConvNetJS CIFAR-10", "convnetjs-cifar10", (3, 32, 32), 256),
    Case("C VGG-style", "vgg", (3, 32, 32), 128),
]

VGG_SPEC = {
    "input_shape": [3, 32, 32],
    "layers": [
        {"type": "conv", "filters": 32, "size": 3, "pad": 1, "activation": "relu"},
        {"type": "conv", "filters": 32, "size": 3, "pad": 1, "activation": "relu"},
        {"type": "pool", "kind": "max", "size": 2},
        {"type": "conv", "filters": 64, "size": 3, "pad": 1, "activation": "relu"},
        {"type": "conv", "filters": 64, "size": 3, "pad": 1, "activation": "relu"},
        {"type": "pool", "kind": "max", "size": 2},
        {"type": "conv", "filters": 128, "size": 3, "pad": 1, "activation": "relu"},
        {"type": "conv", "filters": 128, "size": 3, "pad": 1, "activation": "relu"},
        {"type": "pool", "kind": "max", "size": 2},
        {"type": "fc", "units": 10},
    ],
}


def build_convlens(case: Case):
    from convlens import models

    if case.model == "vgg":
        return models.from_spec(VGG_SPEC)
    return models.get_model(case.model)


def build_torch(model, input_shape):
    """The same architecture in torch.nn, from convlens's layers (weights copied so both start equal)."""
    import numpy as np
    import torch

    from convlens import nn

    layers = []
    for m in model.modules():
        if isinstance(m, nn.Sequential) or m is model:
            continue
        kind = type(m).__name__
        if kind.startswith("Conv"):
            t = getattr(torch.nn, kind)(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                                        m.dilation, m.groups, m.bias is not None, m.padding_mode)
        elif kind == "Linear":
            t = torch.nn.Linear(m.in_features, m.out_features, m.bias is not None)
        elif kind.startswith(("MaxPool", "AvgPool")):
            t = getattr(torch.nn, kind)(m.kernel_size, m.stride, m.padding)
        elif kind == "Flatten":
            t = torch.nn.Flatten(m.start_dim, m.end_dim)
        elif kind in ("ReLU", "Tanh", "Sigmoid", "Identity"):
            t = getattr(torch.nn, kind)()
        else:
            raise ValueError(f"bench: no torch twin for layer {kind}")
        layers.append(t)
    net = torch.nn.Sequential(*layers)
    state = {k: torch.from_numpy(np.array(v)) for k, v in zip(net.state_dict(), model.state_dict().values())}
    net.load_state_dict(state)
    return net


def forward_flops(model, input_shape) -> int:
    """Multiply-adds × 2 of one image's forward pass through conv and linear layers."""
    import numpy as np

    from convlens import nn

    flops, shape = 0, tuple(input_shape)
    for m in model.modules():
        if isinstance(m, nn.Sequential) or m is model or not hasattr(m, "output_shape"):
            continue
        out = m.output_shape(shape)
        if type(m).__name__.startswith("Conv"):
            per_output = (m.in_channels // m.groups) * int(np.prod(m.kernel_size))
            flops += 2 * per_output * int(np.prod(out))
        elif type(m).__name__ == "Linear":
            flops += 2 * m.in_features * m.out_features
        shape = out
    return flops


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
    """The step `convlens.train.fit` takes: forward + backward in batch slices on the threads (when the
    batch is big enough, see train/data_parallel.py), then the optimizer."""
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


def _timed(step, iters: int) -> float:
    time.sleep(SETTLE_SECONDS)
    t = time.perf_counter()
    for _ in range(iters):
        step()
    return time.perf_counter() - t


def run_case(case: Case, repeats: int, min_seconds: float):
    import numpy as np
    import torch

    import convlens
    from convlens import optim

    convlens.manual_seed(0)
    model = build_convlens(case)
    net = build_torch(model, case.input_shape)
    rng = np.random.default_rng(0)
    xs = rng.random((case.batch, *case.input_shape), dtype=np.float32)
    ys = rng.integers(0, 10, case.batch)
    ours = _convlens_step(model, optim.SGD(model.parameters(), lr=0.01, momentum=0.9), convlens.tensor(xs),
                          convlens.tensor(ys))
    theirs = _torch_step(net, torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9), torch.from_numpy(xs),
                         torch.from_numpy(ys))
    # warm-up, and choose an iteration count that makes each timed block last about min_seconds
    for f in (ours, theirs):
        f()
    per = max(_timed(ours, 2) / 2, _timed(theirs, 2) / 2)
    iters = max(2, int(min_seconds / max(per, 1e-4)))
    a, b = [], []
    for _ in range(repeats):  # A B A B ...
        a.append(case.batch * iters / _timed(ours, iters))
        b.append(case.batch * iters / _timed(theirs, iters))
    return statistics.median(a), statistics.median(b), forward_flops(model, case.input_shape)


def latency(model_name: str, input_shape, repeats: int = 200):
    """Median single-image inference time (ms) of both sides, eval mode, no gradient recording."""
    import numpy as np
    import torch

    import convlens

    case = Case("", model_name, input_shape, 1)
    model = build_convlens(case).eval()
    net = build_torch(model, input_shape).eval()
    x = np.random.default_rng(1).random((1, *input_shape), dtype=np.float32)
    xc, xt = convlens.tensor(x), torch.from_numpy(x)
    ours, theirs = [], []
    with convlens.no_grad(), torch.no_grad():
        for _ in range(20):
            model(xc), net(xt)
        for _ in range(repeats):
            t = time.perf_counter()
            model(xc)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            net(xt)
            theirs.append(time.perf_counter() - t)
    return statistics.median(ours) * 1e3, statistics.median(theirs) * 1e3


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


def memory_probe(side: str, steps: int = 3) -> None:
    """Child process: peak resident memory of training case C, minus resident memory after imports."""
    import numpy as np
    import torch

    import convlens
    from convlens import optim

    torch.set_num_threads(2)
    _reset_peak()
    base = _status_kib("VmRSS")
    case = CASES[-1]
    model = build_convlens(case)
    rng = np.random.default_rng(0)
    xs = rng.random((case.batch, *case.input_shape), dtype=np.float32)
    ys = rng.integers(0, 10, case.batch)
    if side == "convlens":
        step = _convlens_step(model, optim.SGD(model.parameters(), lr=0.01, momentum=0.9),
                              convlens.tensor(xs), convlens.tensor(ys))
    else:
        net = build_torch(model, case.input_shape)
        del model
        step = _torch_step(net, torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9), torch.from_numpy(xs),
                           torch.from_numpy(ys))
    for _ in range(steps):
        step()
    peak = _status_kib("VmHWM")
    print(json.dumps({"side": side, "peak_minus_base_mib": (peak - base) / 1024}))


def _memory(side: str) -> float:
    out = subprocess.run([sys.executable, "-m", "convlens.bench", "--memory-probe", side], capture_output=True,
                         text=True, check=True, env=os.environ.copy())
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_minus_base_mib"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="convlens bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed blocks per side and case (default 7)")
    parser.add_argument("--seconds", type=float, default=0.6, help="length of one timed block (default 0.6 s)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep-openblas-env", action="store_true",
                        help="do not unset OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for this process")
    parser.add_argument("--cases", default="all", help="comma list of case indices (0-4) or 'all'")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--memory-probe", choices=["convlens", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.memory_probe:
        memory_probe(args.memory_probe)
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

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    blas = [f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')}, {i.get('num_threads')} threads)"
            for i in threadpool_info() if i.get("user_api") == "blas"]
    unset = os.environ.get("CONVLENS_BENCH_UNSET")
    import convlens

    print(f"convlens {convlens.__version__} · numpy {np.__version__} · torch {torch.__version__} · "
          f"python {platform.python_version()} · {platform.machine()} · {os.cpu_count()} CPUs")
    print(f"NumPy BLAS: {'; '.join(blas)}")
    print("environment: " + (f"unset {unset} for this process (they force OpenBLAS onto slower kernels)"
                             if unset else "OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE not set"))
    peak = matmul_peak(args.threads)
    print(f"matmul peak (NumPy float32 2048², {args.threads} threads): {peak:.0f} GFLOP/s")
    print(f"float32, random data, SGD momentum 0.9, {args.threads} threads; median of {args.repeats} timed "
          f"blocks of ~{args.seconds} s, interleaved convlens/PyTorch\n")
    header = f"{'case':<24}{'batch':>6}{'convlens img/s':>16}{'PyTorch img/s':>15}{'ratio':>8}{'GFLOP/s':>9}{'of peak':>9}"
    print(header)
    print("-" * len(header))
    chosen = range(len(CASES)) if args.cases == "all" else [int(c) for c in args.cases.split(",")]
    ratios = []
    for i in chosen:
        case = CASES[i]
        ours, theirs, flops = run_case(case, args.repeats, args.seconds)
        gflops = ours * 3 * flops / 1e9
        ratios.append(ours / theirs)
        print(f"{case.name:<24}{case.batch:>6}{ours:>16,.0f}{theirs:>15,.0f}{ours / theirs:>8.2f}"
              f"{gflops:>9.1f}{gflops / peak:>9.1%}", flush=True)
    if ratios:
        print(f"\nmedian ratio {statistics.median(ratios):.2f}, lowest {min(ratios):.2f}")
    print("\nsingle-image inference latency (eval, no grad)")
    for name, shape in (("lenet5", (1, 28, 28)), ("convnetjs-cifar10", (3, 32, 32))):
        o, t = latency(name, shape)
        print(f"  {name:<20} convlens {o:6.3f} ms   PyTorch {t:6.3f} ms   ratio {t / o:.2f}")
    if not args.no_memory:
        ours, theirs = _memory("convlens"), _memory("torch")
        print(f"\npeak memory, training C at batch 128 (peak RSS minus RSS after imports, fresh process each): "
              f"convlens {ours:.0f} MiB, PyTorch {theirs:.0f} MiB, ratio {ours / theirs:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
