"""A few of ``torchvision.transforms.functional``'s functions, on one image (PIL, tensor or array
(..., C, H, W)), over the same arithmetic as the transform classes."""

from __future__ import annotations

from convlens.data import imageops as ops
from convlens.data.images import image_size, on_image
from convlens.data.transforms import Grayscale, InterpolationMode, Normalize, _interpolation, resize_image
from convlens.vision.transforms.conversions import to_pil_image, to_tensor

__all__ = [
    "to_tensor", "to_pil_image", "normalize", "hflip", "vflip", "pad", "crop", "center_crop", "resize",
    "resized_crop", "rgb_to_grayscale", "get_image_size",
]


def normalize(tensor, mean, std, inplace: bool = False):
    return Normalize(mean, std)(tensor)


def hflip(img):
    return on_image(img, ops.hflip, "hflip")


def vflip(img):
    return on_image(img, ops.vflip, "vflip")


def pad(img, padding, fill=0, padding_mode: str = "constant"):
    return on_image(img, lambda a: ops.pad(a, padding, fill, padding_mode), "pad")


def crop(img, top: int, left: int, height: int, width: int):
    return on_image(img, lambda a: ops.crop(a, top, left, height, width), "crop")


def center_crop(img, output_size):
    size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size) * (
        2 if len(output_size) == 1 else 1)
    return on_image(img, lambda a: ops.center_crop(a, int(size[0]), int(size[1])), "center_crop")


def resize(img, size, interpolation=InterpolationMode.BILINEAR, max_size=None, antialias: bool = True):
    h, w = ops.resize_output_size(*image_size(img), size, max_size)
    return resize_image(img, h, w, _interpolation(interpolation), antialias)


def resized_crop(img, top: int, left: int, height: int, width: int, size,
                 interpolation=InterpolationMode.BILINEAR, antialias: bool = True):
    return resize(crop(img, top, left, height, width), size, interpolation, antialias=antialias)


def rgb_to_grayscale(img, num_output_channels: int = 1):
    return Grayscale(num_output_channels)(img)


def get_image_size(img) -> list[int]:
    """``[width, height]``, torchvision's order."""
    h, w = image_size(img)
    return [w, h]
