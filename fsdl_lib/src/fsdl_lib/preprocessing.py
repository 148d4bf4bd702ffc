"""The image transform shared by training and serving, so the two can never drift apart.

It has two halves. :func:`pixels` resizes an image to the backbone's input and leaves it as RGB bytes;
it needs no torch, and serving runs it before the exported graph. :func:`normalise` turns those bytes
into the network's input; it is torch, and it is the first operation of the exported graph, so the
eager extractor and the graph compute the same thing from the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch

IMAGENET_MEAN: Final[tuple[float, float, float]] = (0.485, 0.456, 0.406)
IMAGENET_STD: Final[tuple[float, float, float]] = (0.229, 0.224, 0.225)


def pixels(image: Image.Image, image_size: int) -> np.ndarray:
    """``image`` as RGB bytes of shape (size, size, 3): converted to RGB, both sides resized bilinearly."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    size = (image_size, image_size)
    if image.size != size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def pixel_batch(images: list[Image.Image], image_size: int) -> np.ndarray:
    """Several images as one (N, size, size, 3) uint8 array: the exported graph's input."""
    out = np.empty((len(images), image_size, image_size, 3), dtype=np.uint8)
    for row, image in enumerate(images):
        out[row] = pixels(image, image_size)
    return out


def normalise(batch: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(N, size, size, 3) uint8 bytes to the (N, 3, size, size) float32 input ImageNet's networks expect;
    ``mean`` and ``std`` are shaped (3, 1, 1)."""
    return (batch.permute(0, 3, 1, 2).contiguous().float().div(255.0) - mean) / std


def in_batches(
    images: Sequence[Image.Image], batch_size: int, features_of: Callable[[list[Image.Image]], np.ndarray], dim: int
) -> np.ndarray:
    """(N, dim) float32 features of ``images`` in order, ``features_of`` called ``batch_size`` images at a time."""
    if not images:
        return np.empty((0, dim), dtype=np.float32)
    chunks = [features_of(list(images[start : start + batch_size])) for start in range(0, len(images), batch_size)]
    return np.concatenate(chunks).astype(np.float32, copy=False)


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
        return self.batch([image])[0]

    def batch(self, images: list[Image.Image]) -> torch.Tensor:
        """Stack several images into a (N, 3, size, size) tensor."""
        import torch

        return normalise(torch.from_numpy(pixel_batch(images, self.image_size)), self._mean, self._std)

    def __repr__(self) -> str:
        return f"Preprocessor(image_size={self.image_size})"
