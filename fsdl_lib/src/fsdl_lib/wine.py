"""The red-wine quality workload: load, split, train an ElasticNet, evaluate."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from fsdl_lib._atomic import atomic_write_bytes

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)

TARGET: Final = "quality"
FEATURES: Final[tuple[str, ...]] = (
    "fixed acidity",
    "volatile acidity",
    "citric acid",
    "residual sugar",
    "chlorides",
    "free sulfur dioxide",
    "total sulfur dioxide",
    "density",
    "pH",
    "sulphates",
    "alcohol",
)
DEFAULT_ALPHA: Final = 0.5
DEFAULT_L1_RATIO: Final = 0.5
SPLIT_SEED: Final = 42
TEST_FRACTION: Final = 0.25


def load_wine(path: Path) -> pd.DataFrame:
    """Read the UCI red-wine CSV (``;``-separated) and check its columns and values."""
    import pandas as pd

    if not path.is_file():
        raise FileNotFoundError(f"wine data not found at {path}")
    frame = pd.read_csv(path, sep=";")
    missing = [c for c in (*FEATURES, TARGET) if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks the columns {missing}; is it the UCI red-wine CSV (sep=';')?")
    frame = frame[[*FEATURES, TARGET]]
    bad = frame.columns[frame.isna().any() | ~frame.apply(pd.api.types.is_numeric_dtype)].tolist()
    if bad:
        raise ValueError(f"{path}: columns {bad} hold empty or non-numeric values")
    if len(frame) < 20:
        raise ValueError(f"{path} has only {len(frame)} rows; too few to train and test")
    return frame


@dataclass(frozen=True)
class WineSplit:
    """Train and test CSVs written by :func:`split_wine`."""

    train: Path
    test: Path
    version: str

    def as_dict(self) -> dict[str, str]:
        """A small JSON-able form to pass between tasks."""
        return {"train": str(self.train), "test": str(self.test), "version": self.version}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> WineSplit:
        return cls(Path(data["train"]), Path(data["test"]), data["version"])

    def load(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        import pandas as pd

        return pd.read_csv(self.train), pd.read_csv(self.test)


def split_wine(
    frame: pd.DataFrame, out_dir: Path, *, seed: int = SPLIT_SEED, test_fraction: float = TEST_FRACTION
) -> WineSplit:
    """Split with a fixed seed and persist both parts (atomically) under ``out_dir``."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(frame, test_size=test_fraction, random_state=seed)
    digest = hashlib.sha256()
    paths = {}
    for name, part in (("train", train), ("test", test)):
        data = part.to_csv(index=False).encode()
        digest.update(name.encode() + b"\0" + data)
        paths[name] = out_dir / f"{name}.csv"
        atomic_write_bytes(paths[name], data)
    log.info("wine split: %d train rows, %d test rows in %s", len(train), len(test), out_dir)
    return WineSplit(paths["train"], paths["test"], digest.hexdigest())


def xy(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    return frame[list(FEATURES)], frame[TARGET]


def regression_metrics(y_true: np.ndarray | pd.Series, y_pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R² of a prediction."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {
        "rmse": float(mean_squared_error(y_true, y_pred) ** 0.5),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "r2": float(r2_score(y_true, y_pred)),
    }
