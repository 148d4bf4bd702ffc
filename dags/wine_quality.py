"""
# Wine quality (ElasticNet)

Trains an ElasticNet regressor on the UCI red-wine data and registers it in MLflow; the work is in
`fsdl_lib.wine`.

1. **create_experiment**: get or create the `wine-quality` experiment.
2. **load_data**: read and check `data/raw/wine/winequality-red.csv`.
3. **split_data**: a seeded train/test split, written to `data/processed/wine/`.
4. **train_and_evaluate**: one MLflow run: ElasticNet with the `alpha` and `l1_ratio` params
   (autologged), RMSE, MAE and R² on the test split, and the model with a signature and an input
   example.
5. **register_model**: a new version of `wine-quality` with the alias `challenger`.

Trigger it from the UI ("Trigger DAG w/ config") to try other hyperparameters.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, task

from _tasks import compute_queue
from fsdl_lib.resources import COMPUTE_POOL
from fsdl_lib.wine import DEFAULT_ALPHA, DEFAULT_L1_RATIO


@dag(
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["wine", "training", "mlflow"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=20),
        "execution_timeout": timedelta(minutes=15),
    },
    dagrun_timeout=timedelta(hours=1),
    max_active_runs=1,
    params={
        "alpha": Param(DEFAULT_ALPHA, type="number", minimum=0, description="ElasticNet regularisation strength."),
        "l1_ratio": Param(
            DEFAULT_L1_RATIO, type="number", minimum=0, maximum=1, description="L1 share of the penalty."
        ),
    },
    doc_md=__doc__,
)
def wine_quality():
    @task
    def create_experiment() -> str:
        from fsdl_lib.config import load_settings
        from fsdl_lib.tracking import get_or_create_experiment

        return get_or_create_experiment(load_settings().wine_experiment)

    @task
    def load_data() -> dict:
        from fsdl_lib.config import load_settings
        from fsdl_lib.dataset import file_sha256
        from fsdl_lib.wine import load_wine

        path = load_settings().wine_csv
        frame = load_wine(path)
        return {"path": str(path), "rows": len(frame), "sha256": file_sha256(path)}

    @task
    def split_data(data: dict) -> dict:
        from fsdl_lib.config import load_settings
        from fsdl_lib.wine import load_wine, split_wine

        settings = load_settings()
        return split_wine(load_wine(settings.location(data["path"])), settings.processed_dir / "wine").as_dict()

    @task(pool=COMPUTE_POOL, pool_slots=1, **compute_queue())  # ElasticNet on 1,600 rows: one thread is plenty
    def train_and_evaluate(split: dict, experiment_id: str, params: dict | None = None) -> dict:
        from _tasks import current_task, limit_threads, lineage_tags
        from fsdl_lib import wine

        limit_threads()
        dataset = wine.WineSplit.from_dict(split)
        run_id, metrics = wine.train_and_evaluate(
            dataset,
            experiment_id,
            alpha=float(params["alpha"]),
            l1_ratio=float(params["l1_ratio"]),
            task_key=current_task().key,
            tags=lineage_tags(dataset.version),
        )
        return {"run_id": run_id, "metrics": metrics}

    @task
    def register_model(trained: dict, split: dict) -> dict:
        from _tasks import lineage_tags
        from fsdl_lib import wine
        from fsdl_lib.config import load_settings

        tags = lineage_tags(split["version"])
        return wine.register(trained["run_id"], trained["metrics"], tags, settings=load_settings())

    split = split_data(load_data())
    register_model(train_and_evaluate(split, create_experiment()), split)


wine_quality()
