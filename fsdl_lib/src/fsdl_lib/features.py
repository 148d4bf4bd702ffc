"""The ResNet50 feature extractor used by training and serving.

The backbone is torchvision's ResNet50 with its classification head removed: each image becomes a
2048-dimensional vector. Weights are ImageNet's, pinned to one enum member of torchvision's weights
API and cached under ``TORCH_HOME``; or, with ``FSDL_OFFLINE_WEIGHTS=1``, a deterministic random
initialisation for machines that cannot download them. The extractor's :attr:`FeatureExtractor.id`
says which one ran, and models record it, so features of the two are never mixed silently.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from fsdl_lib.exceptions import WeightsUnavailableError
from fsdl_lib.preprocessing import Preprocessor, in_batches, normalise, transform_id
from fsdl_lib.resources import apply_to_torch

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from fsdl_lib.config import Settings

log = logging.getLogger(__name__)

ARCHITECTURE: Final = "resnet50"
PRETRAINED_WEIGHTS: Final = "IMAGENET1K_V2"
"""The torchvision ``ResNet50_Weights`` member the platform is pinned to."""
FEATURE_DIM: Final = 2048
_CPU_BATCH: Final = 8
_GPU_BATCH: Final = 64


def weights_file(torch_home: Path) -> Path:
    """Where torchvision caches the pinned weights under ``torch_home``."""
    from torchvision.models import ResNet50_Weights

    url = ResNet50_Weights[PRETRAINED_WEIGHTS].url
    return torch_home / "hub" / "checkpoints" / os.path.basename(url)


def weights_cached(torch_home: Path) -> bool:
    return weights_file(torch_home).is_file()


@dataclass(frozen=True)
class BackboneId:
    """Which backbone made a set of features: architecture, weights and input transform.

    Its text form (``resnet50:IMAGENET1K_V2:resize224``) is what feature caches and MLflow tags
    record; features of two different ids are never mixed.
    """

    architecture: str
    weights: str
    transform: str

    @classmethod
    def of(cls, *, offline_weights: bool, seed: int = 0, image_size: int = 224) -> BackboneId:
        weights = f"random-seed{seed}" if offline_weights else PRETRAINED_WEIGHTS
        return cls(ARCHITECTURE, weights, transform_id(image_size))

    @classmethod
    def parse(cls, text: str) -> BackboneId:
        parts = text.split(":")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"{text!r} is not a backbone id (architecture:weights:transform)")
        return cls(*parts)

    def __str__(self) -> str:
        return f"{self.architecture}:{self.weights}:{self.transform}"


def resolve_device(name: str = "auto") -> torch.device:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def download_weights(torch_home: Path) -> Path:
    """Download the pinned weights into ``torch_home`` (used when building images)."""
    _load_pretrained_state(torch_home, download=True)
    return weights_file(torch_home)


def _load_pretrained_state(torch_home: Path, *, download: bool) -> dict[str, torch.Tensor]:
    import torch
    from torchvision.models import ResNet50_Weights

    weights = ResNet50_Weights[PRETRAINED_WEIGHTS]
    path = weights_file(torch_home)
    how_to_fix = (
        f"Fix it one of three ways: run `fsdl download-weights` on a machine with internet access; "
        f"copy {path.name} into {path.parent}; or set FSDL_OFFLINE_WEIGHTS=1 to use deterministic "
        f"random weights (for tests and offline demos: predictions are much weaker)."
    )
    if path.is_file():
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise WeightsUnavailableError(
                f"cached ResNet50 weights at {path} cannot be read ({exc}). Delete the file. " + how_to_fix
            ) from exc
    if not download:
        raise WeightsUnavailableError(
            f"ResNet50 {PRETRAINED_WEIGHTS} weights are not cached at {path} and downloading is "
            f"off (FSDL_WEIGHTS_DOWNLOAD=0). " + how_to_fix
        )
    log.info("downloading ResNet50 %s weights to %s", PRETRAINED_WEIGHTS, path.parent)
    try:
        return torch.hub.load_state_dict_from_url(
            weights.url, model_dir=str(path.parent), progress=True, check_hash=True
        )
    except Exception as exc:
        raise WeightsUnavailableError(
            f"ResNet50 {PRETRAINED_WEIGHTS} weights are not cached at {path} and could not be "
            f"downloaded ({type(exc).__name__}: {exc}). " + how_to_fix
        ) from exc


class FeatureExtractor:
    """ResNet50 without its head: images in, (N, 2048) float32 features out.

    Build it once per process (it holds about 100 MB of weights) and call :meth:`extract`.
    """

    def __init__(
        self,
        *,
        offline_weights: bool = False,
        seed: int = 0,
        image_size: int = 224,
        device: str = "auto",
        batch_size: int = 0,
        torch_home: Path | None = None,
        download: bool = True,
    ) -> None:
        import torch
        from torchvision.models import resnet50

        apply_to_torch()  # the task's share of the cores, when a task set one
        self.preprocessor = Preprocessor(image_size)
        self.device = resolve_device(device)
        self.batch_size = batch_size or (_GPU_BATCH if self.device.type == "cuda" else _CPU_BATCH)
        self.backbone = BackboneId.of(offline_weights=offline_weights, seed=seed, image_size=image_size)
        self.id = str(self.backbone)
        if offline_weights:
            # Fork the global RNG so the same seed gives the same weights in every process,
            # whatever ran before, and the caller's random state is left untouched.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = resnet50(weights=None)
        else:
            home = torch_home if torch_home is not None else Path(torch.hub.get_dir()).parent
            model = resnet50(weights=None)
            model.load_state_dict(_load_pretrained_state(home, download=download))
        model.fc = torch.nn.Identity()
        self.model = model.eval().to(self.device)
        log.info("feature extractor %s ready on %s (batch size %d)", self.id, self.device, self.batch_size)

    @classmethod
    def from_settings(cls, settings: Settings) -> FeatureExtractor:
        return cls(
            offline_weights=settings.offline_weights,
            seed=settings.weights_seed,
            image_size=settings.image_size,
            device=settings.device,
            batch_size=settings.batch_size,
            torch_home=settings.torch_home,
            download=settings.weights_download,
        )

    feature_dim: Final = FEATURE_DIM

    def pixels_module(self) -> torch.nn.Module:
        """The network from RGB bytes, (N, size, size, 3) uint8, to features: the normalisation of
        :meth:`Preprocessor.batch` then the backbone, as one module (what :mod:`fsdl_lib.graph` exports)."""
        import torch

        preprocessor, backbone = self.preprocessor, self.model

        class PixelsToFeatures(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.backbone = backbone
                self.register_buffer("mean", preprocessor._mean.clone())
                self.register_buffer("std", preprocessor._std.clone())

            def forward(self, pixels: torch.Tensor) -> torch.Tensor:
                return self.backbone(normalise(pixels, self.mean, self.std))

        return PixelsToFeatures().eval()

    def forward(self, batch: torch.Tensor) -> np.ndarray:
        """Run the backbone on an already preprocessed batch."""
        import torch

        with torch.inference_mode():
            out = self.model(batch.to(self.device, non_blocking=True))
        return out.float().cpu().numpy()

    def extract(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Features of ``images`` in order, computed ``batch_size`` at a time."""
        return in_batches(
            images, self.batch_size, lambda chunk: self.forward(self.preprocessor.batch(chunk)), FEATURE_DIM
        )

    def __repr__(self) -> str:
        return f"FeatureExtractor(id={self.id!r}, device={self.device})"
