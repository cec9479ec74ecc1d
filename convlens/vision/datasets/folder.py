"""torchvision's ``DatasetFolder`` and ``ImageFolder``: ``root/<class>/**/<file>``, read lazily, one file
per item (``loader(path)``, a PIL RGB image by default), with ``.classes``, ``.class_to_idx``,
``.samples`` (= ``.imgs``), ``.targets`` and ``.loader``.

Each item is decoded when asked for, as in torchvision, so images may differ in size (a transform
resizes them) and a folder is usable at once; with ``num_workers > 0`` the DataLoader decodes in
parallel threads (Pillow releases the GIL while decoding). ``convlens.data.ImageFolder`` is convlens's
other, eager version: everything decoded once into one cached uint8 array (same-size images).
"""

from __future__ import annotations

import os

from convlens.data.errors import DataNotFoundError

from .vision import VisionDataset

__all__ = ["DatasetFolder", "ImageFolder", "IMG_EXTENSIONS", "find_classes", "make_dataset", "pil_loader",
           "default_loader", "has_file_allowed_extension"]

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def has_file_allowed_extension(filename: str, extensions) -> bool:
    return filename.lower().endswith(extensions if isinstance(extensions, str) else tuple(extensions))


def find_classes(directory) -> tuple[list[str], dict[str, int]]:
    """Class names (the sorted sub-folder names) and their indices."""
    try:
        with os.scandir(directory) as it:
            classes = sorted(entry.name for entry in it if entry.is_dir())
    except FileNotFoundError:
        raise DataNotFoundError(f"{directory}: no such folder (expected one sub-folder per class)") from None
    if not classes:
        raise DataNotFoundError(f"Couldn't find any class folder in {directory}.")
    return classes, {c: i for i, c in enumerate(classes)}


def make_dataset(directory, class_to_idx: dict[str, int], extensions=None, is_valid_file=None,
                 allow_empty: bool = False) -> list[tuple[str, int]]:
    """``(path, class index)`` of every valid file under each class folder (walked recursively, links
    followed, sorted), torchvision's order."""
    directory = os.path.expanduser(directory)
    if (extensions is None) == (is_valid_file is None):
        raise ValueError("Both extensions and is_valid_file cannot be None or not None at the same time")
    if is_valid_file is None:
        def is_valid_file(path: str) -> bool:
            return has_file_allowed_extension(path, extensions)

    instances, found = [], set()
    for target_class in sorted(class_to_idx):
        index = class_to_idx[target_class]
        target_dir = os.path.join(directory, target_class)
        if not os.path.isdir(target_dir):
            continue
        for root, _, fnames in sorted(os.walk(target_dir, followlinks=True)):
            for fname in sorted(fnames):
                path = os.path.join(root, fname)
                if is_valid_file(path):
                    instances.append((path, index))
                    found.add(target_class)
    empty = set(class_to_idx) - found
    if empty and not allow_empty:
        msg = f"Found no valid file for the classes {', '.join(sorted(empty))}. "
        if extensions is not None:
            exts = extensions if isinstance(extensions, str) else ", ".join(extensions)
            msg += f"Supported extensions are: {exts}"
        raise DataNotFoundError(msg)
    return instances


class DatasetFolder(VisionDataset):
    """Files in class folders, each read with ``loader(path)``."""

    def __init__(self, root, loader, extensions=None, transform=None, target_transform=None,
                 is_valid_file=None, allow_empty: bool = False):
        super().__init__(root, transform=transform, target_transform=target_transform)
        classes, class_to_idx = self.find_classes(self.root)
        samples = self.make_dataset(self.root, class_to_idx, extensions, is_valid_file, allow_empty=allow_empty)
        self.loader, self.extensions = loader, extensions
        self.classes, self.class_to_idx = classes, class_to_idx
        self.samples = samples
        self.targets = [s[1] for s in samples]

    @staticmethod
    def make_dataset(directory, class_to_idx, extensions=None, is_valid_file=None, allow_empty: bool = False):
        return make_dataset(directory, class_to_idx, extensions, is_valid_file, allow_empty)

    def find_classes(self, directory):
        return find_classes(directory)

    def __getitem__(self, index: int):
        path, target = self.samples[index]
        sample = self.loader(path)
        if self.transform is not None:
            sample = self.transform(sample)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return sample, target

    def __len__(self) -> int:
        return len(self.samples)


def pil_loader(path: str):
    """The file as a PIL RGB image (a clear error naming the file if it is not a readable image)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open(path, "rb") as f:
            return Image.open(f).convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        from convlens.data.errors import DataError

        raise DataError(f"{path}: not a readable image ({type(e).__name__}: {e})") from e


def default_loader(path: str):
    return pil_loader(path)


class ImageFolder(DatasetFolder):
    """Images in class folders (``root/dog/xxx.png``, ``root/cat/123.jpg``), PIL RGB by default."""

    def __init__(self, root, transform=None, target_transform=None, loader=default_loader, is_valid_file=None,
                 allow_empty: bool = False):
        super().__init__(root, loader, IMG_EXTENSIONS if is_valid_file is None else None, transform=transform,
                         target_transform=target_transform, is_valid_file=is_valid_file, allow_empty=allow_empty)
        self.imgs = self.samples
