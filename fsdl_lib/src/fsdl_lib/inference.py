"""What a fitted classifier says about features: the one reading of its confidences, for training
(its drift reference) and for serving alike. Serving imports this, never the training modules."""

from __future__ import annotations

from typing import Any

import numpy as np


def class_probabilities(model: Any, features: np.ndarray) -> np.ndarray:
    """Per row, the model's probability of each of its ``classes_`` (one-hot for a classifier
    without probabilities)."""
    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(features), dtype=float)
    predicted = np.asarray(model.predict(features)).astype(str)
    return (predicted[:, None] == np.asarray(model.classes_).astype(str)[None, :]).astype(float)


def top_probability(model: Any, features: np.ndarray) -> np.ndarray:
    """The model's confidence in each answer."""
    return class_probabilities(model, features).max(axis=1)
