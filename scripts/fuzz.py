"""The long fuzz: many inputs per parser (the bounded version runs in tests/test_fuzz_parsers.py).

Each input is random bytes or a mutation (bit flips, truncation, splices, byte insertions) of a valid
file of the format, so that the parsers get past their first checks. Every parser must return or raise
one of the project's named errors (DataError, SpecError, CheckpointError); anything else is printed with
the input that caused it and makes the script exit 1. Prints, per parser, the inputs tried, how many
parsed, how many were refused with a named error, and the time.

    python scripts/fuzz.py                      # 100,000 inputs per parser
    python scripts/fuzz.py -n 5000 --only idx   # a quick look at one
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import random
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the shared fuzz targets
import fuzz_targets as F  # noqa: E402


def _seeds() -> dict[str, list[bytes]]:
    """Valid inputs of each format, to mutate."""
    from safetensors.numpy import save

    from convlens.data.idx import write_idx

    tmp = F._TMP
    idx = []
    for a in (np.arange(12, dtype=np.uint8).reshape(3, 4), np.zeros((2, 3, 3), np.float32),
              np.arange(5, dtype=">i4"), np.ones((1, 2, 2, 2), np.int16)):
        write_idx(tmp / "seed.idx", a)
        idx.append((tmp / "seed.idx").read_bytes())
    rng = np.random.default_rng(0)
    rec = np.concatenate([rng.integers(0, 10, (3, 1)), rng.integers(0, 256, (3, 3072))], axis=1).astype(np.uint8)
    specs = [json.dumps({"input_shape": [1, 8, 8], "layers": [
        {"type": "conv", "filters": 4, "size": 3, "pad": 1, "activation": "relu"},
        {"type": "pool", "size": 2}, {"type": "fc", "units": 3}]}).encode(),
        b'input_shape = [1, 8, 8]\n[[layers]]\ntype = "conv"\nfilters = 2\nsize = 3\n[[layers]]\ntype = "fc"\nunits = 2\n']
    st = save({"model.w": np.zeros(3, np.float32), "optim.state.0.momentum_buffer": np.ones(3, np.float32)},
              metadata={"format": "convlens-checkpoint", "token": "t"})
    meta = json.dumps({"format": "convlens-checkpoint", "format_version": 1, "token": "t",
                       "safetensors_size": len(F.WEIGHTS), "architecture": {"name": "lenet5"}}).encode()
    images = []
    from PIL import Image

    for fmt in ("PNG", "JPEG", "GIF", "BMP", "WEBP"):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(buf, fmt)
        images.append(buf.getvalue())
    tars = []
    for compress in ("gz", ""):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode=f"w:{compress}") as tf:
            for name, body in (("ds/train/a/0.png", images[0]), ("ds/train/b/1.png", images[0])):
                info = tarfile.TarInfo(name)
                info.size = len(body)
                tf.addfile(info, io.BytesIO(body))
        tars.append(buf.getvalue())
    return {"idx": idx, "idx_gzip": [gzip.compress(b, mtime=0) for b in idx], "cifar": [rec.tobytes()],
            "spec_text": specs, "checkpoint": [st], "checkpoint_json": [meta], "image_folder": images,
            "archive": tars}


def _mutate(rnd: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rnd.choice([1, 1, 2, 4, 8])):
        op = rnd.random()
        if op < 0.35 and b:  # flip bits
            i = rnd.randrange(len(b))
            b[i] ^= 1 << rnd.randrange(8)
        elif op < 0.5 and b:  # an interesting byte
            b[rnd.randrange(len(b))] = rnd.choice([0, 1, 0x7F, 0x80, 0xFF, 0x20, ord("["), ord("{"), ord('"')])
        elif op < 0.65:  # truncate
            b = b[: rnd.randrange(len(b) + 1)]
        elif op < 0.8:  # insert random bytes
            i = rnd.randrange(len(b) + 1)
            b[i:i] = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 8)))
        elif op < 0.9 and b:  # duplicate a slice
            i = rnd.randrange(len(b))
            j = min(len(b), i + rnd.randint(1, 64))
            b[i:i] = b[i:j]
        else:  # overwrite a 4-byte field (sizes, dimensions, header lengths)
            if len(b) >= 4:
                i = rnd.randrange(len(b) - 3)
                b[i:i + 4] = rnd.choice([0, 1, 0xFFFFFFFF, 0x7FFFFFFF, rnd.getrandbits(32)]).to_bytes(4, "big")
    return bytes(b)


TARGETS = {"idx": F.idx, "idx_gzip": F.idx_gzip, "cifar": F.cifar, "spec_text": F.spec_text,
           "spec_object": None, "checkpoint": F.checkpoint, "checkpoint_json": lambda d: F.checkpoint(d, True),
           "image_folder": F.image_folder, "archive": F.archive}

_KINDS = ["conv", "fc", "pool", "relu", "dropout", "flatten", "bn", "batchnorm", "sigmoid", "tanh", "softmax", "x", ""]
_KEYS = ["filters", "size", "stride", "pad", "units", "activation", "mode", "rate", "groups", "bias", "dilation",
         "padding_mode", "name", "in_channels", "kernel_size", "padding"]


def _value(rnd: random.Random, depth: int = 0):
    r = rnd.random()
    if depth > 2 or r < 0.6:
        return rnd.choice([0, 1, 2, 3, -1, 5, 28, 1e9, 2.5, -0.5, float("nan"), float("inf"), True, False, None, "relu",
                           "max", "avg", "same", "valid", "zeros", "replicate", "", "x" * 50, 2**63])
    if r < 0.8:
        return [_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]
    return {rnd.choice(_KEYS + ["type"]): _value(rnd, depth + 1) for _ in range(rnd.randint(0, 3))}


def _spec(rnd: random.Random):
    """A layer list built the way a person writes one, with random kinds, keys and values."""
    layers = []
    for _ in range(rnd.randint(0, 5)):
        if rnd.random() < 0.1:
            layers.append(_value(rnd))
            continue
        layer = {"type": rnd.choice(_KINDS)}
        for key in rnd.sample(_KEYS, rnd.randint(0, 4)):
            layer[key] = _value(rnd, 1)
        layers.append(layer)
    spec = {"layers": layers}
    if rnd.random() < 0.3:
        spec["input_shape"] = _value(rnd)
    return spec if rnd.random() < 0.95 else _value(rnd)


def run(name: str, n: int, seed: int) -> tuple[int, int, int, list[str]]:
    rnd = random.Random(seed)
    seeds = _seeds().get(name)
    target = TARGETS[name]
    ok = refused = 0
    bad: list[str] = []
    for _ in range(n):
        if name == "spec_object":
            data = _spec(rnd)
            target = F.spec_object
        elif rnd.random() < 0.15:
            data = bytes(rnd.getrandbits(8) for _ in range(rnd.choice([0, 1, 4, 16, 100, 400])))
        else:
            data = _mutate(rnd, rnd.choice(seeds))
        try:
            target(data)
            ok += 1
        except F.NAMED:
            refused += 1
        except Exception as e:  # noqa: BLE001 - exactly what the fuzz looks for
            bad.append(f"{name}: {type(e).__name__}: {str(e)[:160]} on {repr(data)[:300]}")
    return ok, refused, len(bad), bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=100_000, help="inputs per parser (default 100,000)")
    ap.add_argument("--only", choices=sorted(TARGETS), action="append", help="fuzz only this parser")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    failed = False
    print(f"{'parser':<16} {'inputs':>9} {'parsed':>9} {'refused':>9} {'other':>6} {'seconds':>8}")
    for name in args.only or list(TARGETS):
        t = time.perf_counter()
        ok, refused, n_bad, bad = run(name, args.n, args.seed)
        print(f"{name:<16} {args.n:>9,} {ok:>9,} {refused:>9,} {n_bad:>6} {time.perf_counter() - t:>8.1f}", flush=True)
        for line in dict.fromkeys(b.split(" on ")[0] for b in bad):  # one line per distinct failure
            print("   ", next(b for b in bad if b.startswith(line)))
        failed |= bool(bad)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
