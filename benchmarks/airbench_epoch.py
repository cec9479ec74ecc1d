"""airbench's training step, convlens next to PyTorch CPU eager on the same net, interleaved.

    python benchmarks/airbench_epoch.py [--model airbench94] [--batch 128] [--repeats 5] [--steps 2]

Both sides run the recipe's step through the public API — model(x), cross-entropy with label smoothing
0.2, loss.backward(), Nesterov SGD with airbench's two parameter groups — on the same weights and random
data, in blocks of `--steps` steps, alternating convlens / PyTorch `--repeats` times. It prints the
median and range of images per second, the seconds one 50,000-image epoch would take at that rate,
the ratio, the matmul peak measured in the same run and the machine's load average (the numbers are
only comparable with each other: the machine may be shared).

OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, when set, are unset for this process (the script restarts
itself without them, as `convlens bench` does): they force OpenBLAS onto slower kernels.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

from convlens.bench import OPENBLAS_VARS, _timed, forward_flops, matmul_peak


def torch_twin(model):
    """The same airbench net in torch.nn, with the same weights and buffers."""
    from collections import OrderedDict

    import numpy as np
    import torch

    from convlens import nn
    from convlens.models.airbench import Mul

    class TorchMul(torch.nn.Module):
        def __init__(self, scale):
            super().__init__()
            self.scale = scale

        def forward(self, x):
            return x * self.scale

    mods = []
    for name, m in model.named_children():
        kind = type(m).__name__
        if isinstance(m, nn.Conv2d):
            t = torch.nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, padding=m.padding,
                                bias=m.bias is not None)
        elif kind == "BatchNorm2d":
            t = torch.nn.BatchNorm2d(m.num_features, eps=m.eps, momentum=m.momentum)
        elif kind in ("GELU", "Flatten"):
            t = getattr(torch.nn, kind)()
        elif kind == "MaxPool2d":
            t = torch.nn.MaxPool2d(m.kernel_size)
        elif kind == "AdaptiveMaxPool2d":
            t = torch.nn.AdaptiveMaxPool2d(1)
        elif kind == "Linear":
            t = torch.nn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
        elif isinstance(m, Mul):
            t = TorchMul(m.scale)
        else:
            raise ValueError(f"no torch twin for {name} ({kind})")
        mods.append((name, t))
    net = torch.nn.Sequential(OrderedDict(mods))
    own = net.state_dict()
    sd = model.state_dict()
    net.load_state_dict({k: v if k.endswith("num_batches_tracked") else torch.from_numpy(np.array(sd[k]._data))
                         for k, v in own.items()})
    for name, p in net.named_parameters():  # the same frozen parameters
        p.requires_grad_(dict(model.named_parameters())[name].requires_grad)
    return net


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="airbench94", choices=("airbench94", "airbench93"))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=2, help="training steps per timed block")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    removed = [v for v in OPENBLAS_VARS if v in os.environ]
    if removed:
        env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_VARS}
        env["CONVLENS_BENCH_UNSET"] = ",".join(removed)
        os.execve(sys.executable, [sys.executable, __file__, *(argv or sys.argv[1:])], env)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    import numpy as np
    import torch
    from threadpoolctl import threadpool_limits

    import convlens
    from convlens import models, optim
    from convlens.nn import functional as F
    from convlens.train.data_parallel import SlicedStep
    from convlens.train.parts import param_groups

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    recipe = models.default_recipe(args.model)
    convlens.manual_seed(0)
    model = models.get_model(args.model)
    net = torch_twin(model)
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((args.batch, 3, 32, 32), dtype=np.float32)
    ys = rng.integers(0, 10, args.batch)
    lr, wd = recipe["lr"], recipe["weight_decay"]
    groups = param_groups(model, lr, wd, recipe["bias_lr_scale"], decoupled_weight_decay=True)
    opt = optim.SGD(groups, momentum=recipe["momentum"], nesterov=True)
    tparams = dict(net.named_parameters())
    names = {id(p): n for n, p in model.named_parameters()}
    topt = torch.optim.SGD([{**{k: v for k, v in g.items() if k != "params"},
                             "params": [tparams[names[id(p)]] for p in g["params"]]} for g in groups],
                           momentum=recipe["momentum"], nesterov=True)
    smoothing = recipe["label_smoothing"]
    sliced = SlicedStep(model, lambda out, y: F.cross_entropy(out, y, label_smoothing=smoothing))
    x, y, tx, ty = convlens.tensor(xs), convlens.tensor(ys), torch.from_numpy(xs), torch.from_numpy(ys)

    def ours():
        opt.zero_grad()
        sliced(x, y)  # what convlens.train.fit runs: forward + backward in batch slices on the threads
        opt.step()

    def theirs():
        topt.zero_grad()
        torch.nn.functional.cross_entropy(net(tx), ty, label_smoothing=smoothing).backward()
        topt.step()

    print(f"convlens {convlens.__version__} · numpy {np.__version__} · torch {torch.__version__} · "
          f"{platform.machine()} · {os.cpu_count()} CPUs · {args.threads} threads")
    unset = os.environ.get("CONVLENS_BENCH_UNSET")
    print("environment: " + (f"unset {unset} for this process" if unset else "OPENBLAS_* not set"))
    load0 = os.getloadavg()
    peak = matmul_peak(args.threads)
    flops = forward_flops(model, (3, 32, 32))
    print(f"matmul peak {peak:.0f} GFLOP/s; {args.model}: {flops / 1e6:.0f} MFLOP forward per image; batch "
          f"{args.batch}, {args.repeats} interleaved blocks of {args.steps} steps")
    ours(), theirs()  # warm-up
    a, b = [], []
    for _ in range(args.repeats):
        a.append(args.batch * args.steps / _timed(ours, args.steps))
        b.append(args.batch * args.steps / _timed(theirs, args.steps))
    load1 = os.getloadavg()
    for side, r in (("convlens", a), ("PyTorch", b)):
        med = statistics.median(r)
        print(f"  {side:<9} {med:7.1f} img/s (range {min(r):.1f}-{max(r):.1f}) → {50000 / med:7.0f} s per "
              f"50,000-image epoch, {med * 3 * flops / 1e9:5.1f} GFLOP/s")
    print(f"  ratio convlens/PyTorch {statistics.median(a) / statistics.median(b):.2f} (median img/s); "
          f"load average before {load0[0]:.1f}, after {load1[0]:.1f} on {os.cpu_count()} CPUs "
          f"({time.strftime('%Y-%m-%d %H:%M')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
