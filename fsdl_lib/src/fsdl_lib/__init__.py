"""Shared logic of the platform: configuration, images, ResNet50 features, datasets, MLflow.

Names are re-exported lazily: ``import fsdl_lib`` stays cheap (no torch, no MLflow), which matters
where DAG files are parsed; the heavy modules load when one of their names is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Settings": "config",
    "load_settings": "config",
    "SCENE_CLASSES": "classes",
    "LABEL_TO_INDEX": "classes",
    "label_index": "classes",
    "FsdlError": "exceptions",
    "ConfigError": "exceptions",
    "InvalidImageError": "exceptions",
    "WeightsUnavailableError": "exceptions",
    "FeatureCacheError": "exceptions",
    "ModelNotFoundError": "exceptions",
    "RegistrationError": "exceptions",
    "load_image": "images",
    "detect_format": "images",
    "Preprocessor": "preprocessing",
    "FeatureExtractor": "features",
    "backbone_id": "features",
    "FeatureStore": "feature_store",
    "FeatureSet": "feature_store",
    "UpdateReport": "feature_store",
    "ImageRecord": "dataset",
    "scan_split": "dataset",
    "dataset_version": "dataset",
    "get_or_create_experiment": "tracking",
    "log_dataset": "tracking",
    "register_version": "tracking",
    "resolve_alias": "tracking",
    "load_model": "tracking",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fsdl_lib' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"fsdl_lib.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from fsdl_lib.classes import LABEL_TO_INDEX, SCENE_CLASSES, label_index
    from fsdl_lib.config import Settings, load_settings
    from fsdl_lib.dataset import ImageRecord, dataset_version, scan_split
    from fsdl_lib.exceptions import (
        ConfigError,
        FeatureCacheError,
        FsdlError,
        InvalidImageError,
        ModelNotFoundError,
        RegistrationError,
        WeightsUnavailableError,
    )
    from fsdl_lib.feature_store import FeatureSet, FeatureStore, UpdateReport
    from fsdl_lib.features import FeatureExtractor, backbone_id
    from fsdl_lib.images import detect_format, load_image
    from fsdl_lib.preprocessing import Preprocessor
    from fsdl_lib.tracking import (
        get_or_create_experiment,
        load_model,
        log_dataset,
        register_version,
        resolve_alias,
    )
