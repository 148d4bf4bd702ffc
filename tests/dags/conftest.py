"""The DAG layer: a private Airflow home (SQLite) and a data folder seeded like `make up` does."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLE_DIR

# Airflow reads its configuration when first imported, so the private home is set up at collection.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="fsdl-airflow-"))
os.environ.update(
    AIRFLOW_HOME=str(_AIRFLOW_HOME),
    AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__CORE__UNIT_TEST_MODE="False",
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{_AIRFLOW_HOME}/airflow.db",
)


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[Path]:
    subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
        check=True, capture_output=True, env=os.environ.copy(),
    )  # fmt: skip
    pool = subprocess.run(
        [str(Path(sys.executable).with_name("fsdl")), "compute-pool"], check=True, capture_output=True, text=True
    ).stdout
    subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "pools", "set", *shlex.split(pool)],
        check=True, capture_output=True, env=os.environ.copy(),
    )  # fmt: skip
    yield _AIRFLOW_HOME
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture
def platform_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """FSDL_DATA_DIR with the shipped wine CSV and the scene splits seeded from the sample."""
    from fsdl_lib.seeding import seed_scenes

    data = tmp_path / "data"
    (data / "raw" / "wine").mkdir(parents=True)
    shutil.copy(ROOT / "data" / "raw" / "wine" / "winequality-red.csv", data / "raw" / "wine")
    seed_scenes(SAMPLE_DIR, data / "raw" / "intel_scenes")
    monkeypatch.setenv("FSDL_DATA_DIR", str(data))
    monkeypatch.setenv("FSDL_OFFLINE_WEIGHTS", "1")
    monkeypatch.setenv("FSDL_CODE_VERSION", "test-code")
    return data


def dag_bag(dag_folder: Path):
    """The DAGs as Airflow's dag-processor and task runner parse them: from the DAG bundle at
    ``dags/``, whose folder is on ``sys.path`` (so DAG files can import ``_tasks``)."""
    from airflow.dag_processing.dagbag import BundleDagBag

    return BundleDagBag(dag_folder=str(dag_folder), bundle_path=ROOT / "dags")


def load_dag(dag_id: str):
    bag = dag_bag(ROOT / "dags" / f"{dag_id}.py")
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag(dag_id)


def asset_events(name: str) -> list[dict]:
    """The ``extra`` of every event of the asset ``name``, oldest first."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = (
            select(AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.name == name)
            .order_by(AssetEvent.id)
        )
        return [dict(extra) for extra in session.scalars(query)]
