"""The image transform shared by training and serving, so the two can never drift apart."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch

IMAGENET_MEAN: Final[tuple[float, float, float]] = (0.485, 0.456, 0.406)
IMAGENET_STD: Final[tuple[float, float, float]] = (0.229, 0.224, 0.225)


def transform_id(image_size: int) -> str:
    """Identifies the transform of :class:`Preprocessor` at ``image_size``; part of the backbone id."""
    return f"resize{image_size}"


class Preprocessor:
    """Resize an RGB image to ``size`` x ``size`` and normalise it with ImageNet statistics.

    Intel scene photos are 150x150 with a few exceptions, so the transform resizes both sides
    rather than cropping: nothing of the scene is cut away and odd sizes are handled.
    """

    def __init__(self, image_size: int = 224) -> None:
        if image_size < 32:
            raise ValueError(f"image_size must be at least 32 pixels, got {image_size}")
        import torch

        self.image_size = image_size
        self._mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD).view(3, 1, 1)

    @property
    def id(self) -> str:
        return transform_id(self.image_size)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        """Return a float32 tensor of shape (3, size, size)."""
        import torch

        if image.mode != "RGB":
            image = image.convert("RGB")
        size = (self.image_size, self.image_size)
        if image.size != size:
            image = image.resize(size, Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype=np.uint8)
        tensor = torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)
        return (tensor - self._mean) / self._std

    def batch(self, images: list[Image.Image]) -> torch.Tensor:
        """Stack several images into a (N, 3, size, size) tensor."""
        import torch

        return torch.stack([self(image) for image in images])

    def __repr__(self) -> str:
        return f"Preprocessor(image_size={self.image_size})"
