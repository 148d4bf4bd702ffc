"""
# Wine quality (ElasticNet)

Trains an ElasticNet regressor on the UCI red-wine data and registers it in MLflow.

1. **create_experiment**: get or create the `wine-quality` experiment.
2. **load_data**: read and check `data/raw/wine/winequality-red.csv`.
3. **split_data**: a seeded train/test split, written to `data/processed/wine/`.
4. **train_model**: ElasticNet with the `alpha` and `l1_ratio` params, under MLflow autologging,
   logged with a signature and an input example.
5. **evaluate_model**: RMSE, MAE and R² on the test split, logged on the training run.
6. **register_model**: a new version of `wine-quality` with the alias `challenger`.

Trigger it from the UI ("Trigger DAG w/ config") to try other hyperparameters.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, task


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
        "alpha": Param(0.5, type="number", minimum=0, description="ElasticNet regularisation strength."),
        "l1_ratio": Param(0.5, type="number", minimum=0, maximum=1, description="L1 share of the penalty."),
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
        from pathlib import Path

        from fsdl_lib.config import load_settings
        from fsdl_lib.wine import load_wine, split_wine

        return split_wine(load_wine(Path(data["path"])), load_settings().processed_dir / "wine").as_dict()

    @task
    def train_model(split: dict, experiment_id: str, params: dict | None = None) -> str:

        import mlflow
        from sklearn.linear_model import ElasticNet

        from _tasks import current_task
        from fsdl_lib import tracking, wine
        from fsdl_lib.config import load_settings

        settings = load_settings()
        me = current_task()
        train, _ = wine.WineSplit.from_dict(split).load()
        x, y = wine.xy(train)
        tags = {
            tracking.TAG_DATASET_VERSION: split["version"],
            tracking.TAG_CODE_VERSION: tracking.code_version(settings.code_version),
            tracking.TAG_DAG_RUN_ID: me.run_id,
        }
        mlflow.sklearn.autolog(log_models=False, silent=True)
        try:
            with tracking.task_run(experiment_id, task_key=me.key, run_name="elasticnet", tags=tags) as run:
                model = ElasticNet(
                    alpha=float(params["alpha"]), l1_ratio=float(params["l1_ratio"]), random_state=42
                ).fit(x, y)
                tracking.log_sklearn_model(model, x.head(5))
        finally:
            mlflow.sklearn.autolog(disable=True)
        return run.info.run_id

    @task
    def evaluate_model(mlflow_run_id: str, split: dict) -> dict:

        import mlflow

        from fsdl_lib import tracking, wine

        _, test = wine.WineSplit.from_dict(split).load()
        x, y = wine.xy(test)
        model = tracking.load_sklearn_model(f"runs:/{mlflow_run_id}/model")
        metrics = wine.regression_metrics(y, model.predict(x))
        client = mlflow.MlflowClient()
        for name, value in metrics.items():
            client.log_metric(mlflow_run_id, f"test_{name}", value)
        return metrics

    @task
    def register_model(mlflow_run_id: str, metrics: dict, split: dict) -> dict:
        from _tasks import current_task
        from fsdl_lib import tracking
        from fsdl_lib.config import load_settings

        settings = load_settings()
        version = tracking.register_version(
            f"runs:/{mlflow_run_id}/model",
            settings.wine_model_name,
            aliases=[tracking.ALIAS_CHALLENGER],
            run_id=mlflow_run_id,
            tags={
                tracking.TAG_DATASET_VERSION: split["version"],
                tracking.TAG_CODE_VERSION: tracking.code_version(settings.code_version),
                tracking.TAG_DAG_RUN_ID: current_task().run_id,
                **{f"test_{k}": f"{v:.4f}" for k, v in metrics.items()},
            },
        )
        return {"name": version.name, "version": version.version}

    experiment_id = create_experiment()
    split = split_data(load_data())
    mlflow_run_id = train_model(split, experiment_id)
    register_model(mlflow_run_id, evaluate_model(mlflow_run_id, split), split)


wine_quality()
