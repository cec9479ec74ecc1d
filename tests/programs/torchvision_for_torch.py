"""The torch side's stand-in for torchvision (which cannot be installed next to torch 2.13 here): the
few datasets, transforms and utils the programs call, written directly on torch, NumPy and Pillow from
torchvision's documented behaviour, independently of convlens, so that the same program can run on
torch as the comparison."""

from __future__ import annotations

import gzip
import math
import os
import random
import types

import numpy as np
import torch
from PIL import Image


# ---- datasets -----------------------------------------------------------------------------------------
def _idx(path):
    raw = gzip.open(path).read() if os.path.exists(path) else open(path[:-3], "rb").read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


class MNIST(torch.utils.data.Dataset):
    folder = "MNIST"
    classes = [f"{i} - {w}" for i, w in enumerate("zero one two three four five six seven eight nine".split())]

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        raw = os.path.join(root, self.folder, "raw")
        p = "train" if train else "t10k"
        self.data = torch.from_numpy(_idx(os.path.join(raw, f"{p}-images-idx3-ubyte.gz")).copy())
        self.targets = torch.from_numpy(_idx(os.path.join(raw, f"{p}-labels-idx1-ubyte.gz")).astype(np.int64))
        self.transform, self.target_transform = transform, target_transform

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        img, target = Image.fromarray(self.data[i].numpy(), mode="L"), int(self.targets[i])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target


class FashionMNIST(MNIST):
    folder = "FashionMNIST"
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


class CIFAR10(torch.utils.data.Dataset):
    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        d = os.path.join(root, "cifar-10-batches-bin")
        names = [f"data_batch_{i}.bin" for i in range(1, 6)] if train else ["test_batch.bin"]
        rec = np.concatenate([np.fromfile(os.path.join(d, n), np.uint8).reshape(-1, 3073) for n in names])
        self.data = rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
        self.targets = rec[:, 0].astype(int).tolist()
        self.classes = open(os.path.join(d, "batches.meta.txt")).read().split()
        self.transform, self.target_transform = transform, target_transform

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        img, target = Image.fromarray(self.data[i]), self.targets[i]
        if self.transform is not None:
            img = self.transform(img)
        return img, target


class ImageFolder(torch.utils.data.Dataset):
    def __init__(self, root, transform=None, target_transform=None):
        self.classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.samples = [(os.path.join(root, c, f), i) for c, i in self.class_to_idx.items()
                        for f in sorted(os.listdir(os.path.join(root, c)))]
        self.targets = [t for _, t in self.samples]
        self.transform = transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        path, target = self.samples[i]
        img = Image.open(path).convert("RGB")
        return (self.transform(img) if self.transform else img), target


datasets = types.SimpleNamespace(MNIST=MNIST, FashionMNIST=FashionMNIST, CIFAR10=CIFAR10, ImageFolder=ImageFolder)


# ---- transforms ---------------------------------------------------------------------------------------
class Compose:
    def __init__(self, ts):
        self.ts = ts

    def __call__(self, x):
        for t in self.ts:
            x = t(x)
        return x


class ToTensor:
    def __call__(self, pic):
        a = np.array(pic, np.uint8, copy=True)
        a = a[:, :, None] if a.ndim == 2 else a
        return torch.from_numpy(a).permute(2, 0, 1).contiguous().to(torch.float32).div(255)


class Normalize:
    def __init__(self, mean, std):
        self.mean, self.std = torch.tensor(mean).view(-1, 1, 1), torch.tensor(std).view(-1, 1, 1)

    def __call__(self, t):
        return (t - self.mean) / self.std


class Resize:
    def __init__(self, size):
        self.size = size

    def __call__(self, img):
        w, h = img.size
        if isinstance(self.size, int):
            s = self.size
            size = (s, int(s * h / w)) if w <= h else (int(s * w / h), s)
        else:
            size = (self.size[1], self.size[0])
        return img.resize(size, Image.BILINEAR)


class CenterCrop:
    def __init__(self, size):
        self.size = size

    def __call__(self, img):
        w, h = img.size
        t, l = int(round((h - self.size) / 2.0)), int(round((w - self.size) / 2.0))
        return img.crop((l, t, l + self.size, t + self.size))


class RandomHorizontalFlip:
    def __call__(self, img):
        return img.transpose(Image.FLIP_LEFT_RIGHT) if torch.rand(1) < 0.5 else img


class RandomCrop:
    def __init__(self, size, padding=0):
        self.size, self.padding = size, padding

    def __call__(self, img):
        a = np.pad(np.asarray(img), ((self.padding,) * 2, (self.padding,) * 2, (0, 0)))
        i, j = (int(torch.randint(0, a.shape[k] - self.size + 1, (1,))) for k in (0, 1))
        return Image.fromarray(a[i : i + self.size, j : j + self.size])


class RandomResizedCrop:
    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
        self.size, self.scale, self.ratio = size, scale, ratio

    def __call__(self, img):
        w, h = img.size
        for _ in range(10):
            area = h * w * random.uniform(*self.scale)
            ratio = math.exp(random.uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
            cw, ch = int(round(math.sqrt(area * ratio))), int(round(math.sqrt(area / ratio)))
            if 0 < cw <= w and 0 < ch <= h:
                i, j = random.randint(0, h - ch), random.randint(0, w - cw)
                return img.crop((j, i, j + cw, i + ch)).resize((self.size, self.size), Image.BILINEAR)
        return CenterCrop(min(w, h))(img).resize((self.size, self.size), Image.BILINEAR)


transforms = types.SimpleNamespace(Compose=Compose, ToTensor=ToTensor, Normalize=Normalize, Resize=Resize,
                                   CenterCrop=CenterCrop, RandomHorizontalFlip=RandomHorizontalFlip,
                                   RandomCrop=RandomCrop, RandomResizedCrop=RandomResizedCrop)


def make_grid(tensor, nrow=8, padding=2):
    n, c, h, w = tensor.shape
    cols, rows = min(nrow, n), math.ceil(n / min(nrow, n))
    grid = torch.zeros(c, rows * (h + padding) + padding, cols * (w + padding) + padding)
    for k in range(n):
        y, x = divmod(k, cols)
        grid[:, y * (h + padding) + padding : (y + 1) * (h + padding), x * (w + padding) + padding : (x + 1) * (w + padding)] = tensor[k]
    return grid


utils = types.SimpleNamespace(make_grid=make_grid)
