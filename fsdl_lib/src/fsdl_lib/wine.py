"""The red-wine quality workload: load and check the CSV, split it, train an ElasticNet and score
it in one MLflow run, register it.

The ``wine_quality`` DAG is thin over this module: :func:`load_wine` → :func:`split_wine` →
:func:`train_and_evaluate` → :func:`register`.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from fsdl_lib import storage
from fsdl_lib.dataset import FileRecord, dataset_version

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from fsdl_lib.config import Settings

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
MODEL_SEED: Final = 42
TEST_FRACTION: Final = 0.25
RUN_NAME: Final = "elasticnet"


def load_wine(path: Path) -> pd.DataFrame:
    """Read the UCI red-wine CSV (``;``-separated; a folder's or a store's) and check its columns and values."""
    import pandas as pd

    try:
        frame = pd.read_csv(io.BytesIO(storage.read_bytes(path)), sep=";")
    except FileNotFoundError:
        raise FileNotFoundError(f"wine data not found at {path}") from None
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
        return cls(storage.location(data["train"]), storage.location(data["test"]), data["version"])

    def load(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        import pandas as pd

        return tuple(pd.read_csv(io.BytesIO(storage.read_bytes(path))) for path in (self.train, self.test))  # type: ignore[return-value]


def split_wine(
    frame: pd.DataFrame, out_dir: Path, *, seed: int = SPLIT_SEED, test_fraction: float = TEST_FRACTION
) -> WineSplit:
    """Split with a fixed seed and persist both parts (atomically) under ``out_dir``."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(frame, test_size=test_fraction, random_state=seed)
    paths, records = {}, []
    for name, part in (("train", train), ("test", test)):
        data = part.to_csv(index=False).encode()
        paths[name] = out_dir / f"{name}.csv"
        storage.write_bytes(paths[name], data)
        records.append(FileRecord(paths[name].name, name, hashlib.sha256(data).hexdigest()))
    log.info("wine split: %d train rows, %d test rows in %s", len(train), len(test), out_dir)
    return WineSplit(paths["train"], paths["test"], dataset_version(records))


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


def train_and_evaluate(
    split: WineSplit,
    experiment_id: str,
    *,
    alpha: float = DEFAULT_ALPHA,
    l1_ratio: float = DEFAULT_L1_RATIO,
    task_key: str,
    tags: Mapping[str, str],
) -> tuple[str, dict[str, float]]:
    """Fit an ElasticNet on the training part and score it on the test part, as one MLflow run.

    The run holds the parameters and training metrics (autologging), the test metrics and the
    model (skops, with signature and input example). Returns the run id and the test metrics.
    """
    import mlflow
    from sklearn.linear_model import ElasticNet

    from fsdl_lib import tracking

    train, test = split.load()
    x, y = xy(train)
    x_test, y_test = xy(test)
    mlflow.sklearn.autolog(log_models=False, silent=True)
    try:
        with tracking.task_run(experiment_id, task_key=task_key, run_name=RUN_NAME, tags=tags) as run:
            model = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, random_state=MODEL_SEED).fit(x, y)
            metrics = regression_metrics(y_test, model.predict(x_test))
            mlflow.log_metrics({f"test_{name}": value for name, value in metrics.items()})
            tracking.log_sklearn_model(model, x.head(5))
    finally:
        mlflow.sklearn.autolog(disable=True)
    log.info("ElasticNet(alpha=%s, l1_ratio=%s): test %s", alpha, l1_ratio, metrics)
    return run.info.run_id, metrics


def register(
    run_id: str, metrics: Mapping[str, float], tags: Mapping[str, str], *, settings: Settings
) -> dict[str, Any]:
    """Register the run's model as a new ``challenger`` version of the wine model (all or nothing)."""
    from fsdl_lib import tracking

    version = tracking.register_version(
        f"runs:/{run_id}/model",
        settings.wine_model_name,
        aliases=[tracking.ALIAS_CHALLENGER],
        run_id=run_id,
        tags={**tags, **{f"test_{name}": f"{value:.4f}" for name, value in metrics.items()}},
    )
    return {"name": version.name, "version": str(version.version), **{f"test_{k}": v for k, v in metrics.items()}}
