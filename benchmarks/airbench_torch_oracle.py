"""airbench94's training run in PyTorch CPU eager, as an oracle for convlens's recipe on the same data.

    python benchmarks/airbench_torch_oracle.py [--data ../shared/data/cifar10-jpeg.tar.gz] [--epochs 10]
                                               [--seed 0] [--threads 2]

When convlens's airbench run (`scripts/results/airbench_cifar10.py`) lands below the published figure,
this says whether the gap is convlens's or the data's: the same net, with the same initial weights
(convlens's `airbench94` built with the seed and its whitening fitted to the same first 5,000 training
images, copied into torch.nn) trained by a loop written from airbench94's published description —
summed label-smoothed loss with airbench's own learning rate per 1024 images and "kilostep" scale,
Nesterov SGD in two groups (batch-norm biases at 64× the lr, decay decoupled from it), the triangular
schedule, Lookahead over every float tensor of the state dict (batch-norm statistics included), the
whitening bias trained for 3 epochs, alternating flips, ±2-pixel reflect translation, TTA level 2 — on
the data convlens reads (the CIFAR-10 JPEG copy: say so when quoting a number).

It prints one JSON line: test accuracy with and without TTA, epochs, seconds. PyTorch is only an
oracle here; nothing in convlens imports it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# airbench94's published hyper-parameters (per 1024 images, summed loss)
HYP = dict(batch_size=1024, lr=11.5, momentum=0.85, weight_decay=0.0153, bias_scaler=64.0, label_smoothing=0.2,
           whiten_bias_epochs=3, translate=2, warmup=0.23, lr_start=0.2, lr_end=0.07, lookahead_k=5)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"))
    p.add_argument("--epochs", type=float, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = p.parse_args(argv)

    import numpy as np
    import torch
    import torch.nn.functional as F
    from airbench_epoch import torch_twin  # beside this script (a script's folder is on sys.path)

    import convlens
    from convlens import data, models
    from convlens.data.catalog import load
    from convlens.models.airbench import prepare_model

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train, test = load(args.data, train=True), load(args.data, train=False)
    mean, std = (a.reshape(1, 3, 1, 1) for a in data.mean_std(train))

    def normed(ds):
        return torch.from_numpy(((ds.images.astype(np.float32) / 255 - mean) / std).astype(np.float32))

    x_train, y_train = normed(train), torch.from_numpy(np.asarray(train.labels, dtype=np.int64))
    x_test, y_test = normed(test), torch.from_numpy(np.asarray(test.labels, dtype=np.int64))

    convlens.manual_seed(args.seed)
    model = models.get_model("airbench94")
    prepare_model(model, x_train[:5000].numpy())
    net = torch_twin(model)
    net.train()

    bs, momentum = HYP["batch_size"], HYP["momentum"]
    kilostep = 1024 * (1 + 1 / (1 - momentum))
    lr = HYP["lr"] / kilostep
    wd = HYP["weight_decay"] * bs / kilostep
    lr_bias = lr * HYP["bias_scaler"]
    norm_biases = [p for n, p in net.named_parameters() if n.startswith("bn") and p.requires_grad]
    whiten_bias = [net.whiten.bias]
    others = [p for n, p in net.named_parameters() if p.requires_grad and not n.startswith("bn") and n != "whiten.bias"]
    opt = torch.optim.SGD([dict(params=norm_biases, lr=lr_bias, weight_decay=wd / lr_bias),
                           dict(params=others, lr=lr, weight_decay=wd / lr),
                           dict(params=whiten_bias, lr=lr, weight_decay=wd / lr)], momentum=momentum, nesterov=True)
    for g in opt.param_groups:
        g["initial_lr"] = g["lr"]
    steps_per_epoch = len(x_train) // bs  # drop_last, as airbench
    total = math.ceil(steps_per_epoch * args.epochs)
    sched = np.interp(np.arange(total + 1), [0, int(HYP["warmup"] * total), total], [HYP["lr_start"], 1, HYP["lr_end"]])
    alpha = 0.95 ** 5 * (np.arange(total + 1) / total) ** 3
    ema = {k: v.clone() for k, v in net.state_dict().items()}

    def lookahead(decay: float) -> None:
        with torch.no_grad():
            for e, v in zip(ema.values(), net.state_dict().values()):
                if v.dtype == torch.float32:
                    e.lerp_(v, 1 - decay)
                    v.copy_(e)

    gen = torch.Generator().manual_seed(args.seed)
    flipped = torch.flip(x_train, dims=[-1])
    first = torch.rand(len(x_train), generator=gen) < 0.5
    pre = torch.where(first[:, None, None, None], flipped, x_train)  # random flips in epoch 0
    pad = HYP["translate"]
    padded = F.pad(pre, (pad,) * 4, mode="reflect")
    step, started, epoch = 0, time.perf_counter(), 0
    while step < total:
        if epoch == HYP["whiten_bias_epochs"]:
            net.whiten.bias.requires_grad_(False)
        dx = torch.randint(0, 2 * pad + 1, (len(x_train),), generator=gen)
        dy = torch.randint(0, 2 * pad + 1, (len(x_train),), generator=gen)
        order = torch.randperm(len(x_train), generator=gen)
        rows = torch.arange(32)
        for b in range(steps_per_epoch):
            if step >= total:
                break
            idx = order[b * bs:(b + 1) * bs]
            ii, jj = dy[idx, None] + rows, dx[idx, None] + rows
            xb = padded[idx[:, None, None, None], torch.arange(3)[None, :, None, None], ii[:, None, :, None],
                        jj[:, None, None, :]]
            if epoch % 2 == 1:  # every image the other way round than in the epoch before
                xb = xb.flip(-1)
            for g in opt.param_groups:
                g["lr"] = g["initial_lr"] * sched[step]
            loss = F.cross_entropy(net(xb), y_train[idx], label_smoothing=HYP["label_smoothing"], reduction="sum")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step % HYP["lookahead_k"] == 0:
                lookahead(alpha[step])
        print(f"epoch {epoch + 1}: loss {loss.item() / bs:.4f}, {time.perf_counter() - started:.0f} s", file=sys.stderr)
        epoch += 1
    lookahead(1.0)  # the model on the slow weights
    seconds = time.perf_counter() - started

    net.eval()

    def mirror(x):
        return 0.5 * net(x) + 0.5 * net(x.flip(-1))

    def tta(x):
        xp = F.pad(x, (1,) * 4, mode="reflect")
        return 0.5 * mirror(x) + 0.25 * (mirror(xp[..., :32, :32]) + mirror(xp[..., 2:, 2:]))

    with torch.no_grad():
        plain = torch.cat([net(x_test[i:i + 500]) for i in range(0, len(x_test), 500)]).argmax(1)
        aug = torch.cat([tta(x_test[i:i + 500]) for i in range(0, len(x_test), 500)]).argmax(1)
    out = {"oracle": "torch", "torch": torch.__version__, "epochs": args.epochs, "seed": args.seed, "steps": total,
           "test_accuracy": (aug == y_test).float().mean().item(),
           "test_accuracy_no_tta": (plain == y_test).float().mean().item(), "train_seconds": round(seconds, 1),
           "dataset": "CIFAR-10 (JPEG copy)"}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
