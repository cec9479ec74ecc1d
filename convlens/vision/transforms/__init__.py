"""``convlens.vision.transforms``, shaped like ``torchvision.transforms``: each transform takes one PIL
image, tensor or array, ``t(img)``; the ones defined in ``convlens.data.transforms`` also run on whole
batches, ``t(batch, rng)`` (one implementation, two call forms)."""

from convlens.data.transforms import (
    CenterCrop,
    Compose,
    Grayscale,
    InterpolationMode,
    Normalize,
    Pad,
    RandomCrop,
    RandomHorizontalFlip,
    RandomShift,
    RandomVerticalFlip,
    Resize,
)
from convlens.vision.transforms import functional
from convlens.vision.transforms.conversions import (
    Lambda,
    PILToTensor,
    RandomResizedCrop,
    ToPILImage,
    ToTensor,
)

__all__ = [
    "CenterCrop", "Compose", "Grayscale", "InterpolationMode", "Lambda", "Normalize", "PILToTensor", "Pad",
    "RandomCrop", "RandomHorizontalFlip", "RandomResizedCrop", "RandomShift", "RandomVerticalFlip", "Resize",
    "ToPILImage", "ToTensor", "functional",
]
