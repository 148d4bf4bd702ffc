"""The web app's environment variables, declared once (the library's are in fsdl_lib.config)."""

from __future__ import annotations

from dataclasses import dataclass

from fsdl_lib.config import EnvSettings, setting


@dataclass(frozen=True)
class WebSettings(EnvSettings):
    secret_key: str = setting(
        "WEBAPP_SECRET_KEY", "", "Flask secret key; empty makes a random one at each start (one process only)."
    )
    max_upload_mb: int = setting("WEBAPP_MAX_UPLOAD_MB", 10, "Largest upload accepted, in MiB (larger: HTTP 413).")
    model_alias: str = setting("WEBAPP_MODEL_ALIAS", "production", "Registry alias of the model served.")
    poll_seconds: int = setting(
        "WEBAPP_MODEL_POLL_SECONDS", 5, "How often the served alias is checked for a new version."
    )
    prediction_ttl_seconds: int = setting(
        "WEBAPP_PREDICTION_TTL_SECONDS", 3600, "How long an upload waits for feedback before it is removed."
    )
    state_dir: str = setting(
        "WEBAPP_STATE_DIR",
        "",
        "Uploads awaiting feedback and the feedback log (SQLite); empty: FSDL_STORAGE_DIR/webapp.",
    )
    mlflow_ui_url: str = setting(
        "WEBAPP_MLFLOW_UI_URL", "", "MLflow UI link shown on the pages; empty means MLFLOW_TRACKING_URI."
    )
    mlflow_username: str = setting(
        "WEBAPP_MLFLOW_USERNAME", "fsdl-webapp", "The web app's MLflow login (read-only; mlflow/accounts.py)."
    )
    mlflow_password: str = setting("WEBAPP_MLFLOW_PASSWORD", "", "Its password (make secrets generates it).")
    feedback_policy: str = setting(
        "WEBAPP_FEEDBACK_POLICY",
        "review",
        "review: answers wait for a reviewer before they reach training; trust: every answer is accepted "
        "(demos and benchmarks only).",
    )
    reviewer_user: str = setting("WEBAPP_REVIEWER_USER", "reviewer", "Login of the review page and its API.")
    reviewer_password: str = setting(
        "WEBAPP_REVIEWER_PASSWORD", "", "Its password (make secrets generates it); empty: reviewing is closed."
    )
    review_sample_rate: float = setting(
        "WEBAPP_REVIEW_SAMPLE_RATE",
        0.05,
        "Share of predictions queued for review at random, without an answer: catches confident mistakes and "
        "gives /monitoring an unbiased accuracy.",
    )
    unsure_below: float = setting(
        "WEBAPP_UNSURE_BELOW", 0.6, "Top probability under which the classify page asks for feedback prominently."
    )
    unsure_margin: float = setting(
        "WEBAPP_UNSURE_MARGIN", 0.15, "Gap between the two top probabilities under which it asks prominently too."
    )
    drift_interval_seconds: int = setting(
        "WEBAPP_DRIFT_INTERVAL_SECONDS",
        300,
        "How often the served version's drift is checked, in the background; 0: never.",
    )
    drift_window: int = setting("WEBAPP_DRIFT_WINDOW", 200, "Newest predictions of the served version in one check.")
    drift_min_window: int = setting(
        "WEBAPP_DRIFT_MIN_WINDOW", 50, "Fewest predictions worth checking (fewer: the check waits)."
    )
    drift_alpha: float = setting(
        "WEBAPP_DRIFT_ALPHA", 0.01, "Significance of the feature test: the share of checks that alarm without drift."
    )
    drift_persist_checks: int = setting(
        "WEBAPP_DRIFT_PERSIST_CHECKS", 3, "Consecutive flagged checks after which drift counts as persistent."
    )
    workers: int = setting("WEBAPP_WORKERS", 1, "gunicorn worker processes (each loads ResNet50).")
    connections: int = setting(
        "WEBAPP_CONNECTIONS", 1000, "Connections one gunicorn worker serves at once (gevent; slow clients included)."
    )
