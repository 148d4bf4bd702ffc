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
    graph_dir: str = setting(
        "WEBAPP_GRAPH_DIR",
        "",
        "Where the backbone graphs fetched from MLflow are kept, named by sha256 (about 100 MB each); "
        "empty: graphs/ of WEBAPP_STATE_DIR.",
    )
    uploads_url: str = setting(
        "WEBAPP_UPLOADS_URL",
        "",
        "Where uploads wait for an answer and review: a folder, or s3://bucket/prefix on the object store "
        "(FSDL_S3_*); empty: uploads/ of WEBAPP_STATE_DIR.",
    )
    s3_access_key_id: str = setting(
        "WEBAPP_S3_ACCESS_KEY_ID",
        "",
        "The web app's own access key on the object store (it may keep uploads, and read none of the training "
        "data); empty: FSDL_S3_ACCESS_KEY_ID.",
    )
    s3_secret_access_key: str = setting("WEBAPP_S3_SECRET_ACCESS_KEY", "", "Its secret.")
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
    trusted_proxies: int = setting(
        "WEBAPP_TRUSTED_PROXIES",
        0,
        "Reverse proxies in front of the web app whose X-Forwarded-For it believes (0: none; 1 behind one proxy). "
        "Budgets are per client address: behind a proxy, set it, or every client shares the proxy's budget.",
    )
    rate_limit_storage: str = setting(
        "WEBAPP_RATE_LIMIT_STORAGE",
        "",
        "Where the per-client budgets are counted (a URI of the limits library); empty: SQLite in the state "
        "folder, shared by every worker.",
    )
    rate_limit_predict: str = setting(
        "WEBAPP_RATE_LIMIT_PREDICT", "20/minute;300/hour", "Predictions one client may ask for (over: HTTP 429)."
    )
    upload_budget: str = setting(
        "WEBAPP_UPLOAD_BUDGET",
        "200/hour",
        "MiB one client may upload (each upload costs its size, rounded up to whole MiB; over: HTTP 429).",
    )
    rate_limit_feedback: str = setting(
        "WEBAPP_RATE_LIMIT_FEEDBACK", "20/minute;200/hour", "Answers one client may send (over: HTTP 429)."
    )
    rate_limit_default: str = setting(
        "WEBAPP_RATE_LIMIT_DEFAULT",
        "300/minute",
        "Requests one client may make to any other page or API (health checks, /metrics and static files are free).",
    )
    login_limit_client: str = setting(
        "WEBAPP_LOGIN_LIMIT_CLIENT",
        "5/minute;20/hour",
        "Failed logins one client may make before it must wait (HTTP 429, even with the right password).",
    )
    login_limit_account: str = setting(
        "WEBAPP_LOGIN_LIMIT_ACCOUNT",
        "30/hour",
        "Failed logins to one account, from all clients together, before it must wait.",
    )
    review_queue_max: int = setting(
        "WEBAPP_REVIEW_QUEUE_MAX",
        2000,
        "Most answers waiting for review; past it the oldest expire with their uploads.",
    )
    review_max_age_days: float = setting(
        "WEBAPP_REVIEW_MAX_AGE_DAYS", 14.0, "Days an answer waits for review before it expires with its upload."
    )
    review_pending_per_client: int = setting(
        "WEBAPP_REVIEW_PENDING_PER_CLIENT",
        25,
        "Answers from one client that may wait for review at once (more: HTTP 429 until some are decided).",
    )
    latency_budget_seconds: float = setting(
        "WEBAPP_LATENCY_BUDGET_SECONDS",
        2.0,
        "Longest a prediction should wait for the model: a worker admits as many at once as fit in it at the "
        "measured service time; the rest get HTTP 503 with Retry-After at once.",
    )
    service_seconds: float = setting(
        "WEBAPP_SERVICE_SECONDS",
        0.25,
        "Time of one inference assumed until the worker has measured its own (the first predictions refine it).",
    )
    max_in_flight: int = setting(
        "WEBAPP_MAX_IN_FLIGHT", 0, "Most predictions one worker admits at once, whatever the budget allows (0: no cap)."
    )
    workers: int = setting("WEBAPP_WORKERS", 1, "gunicorn worker processes (each loads ResNet50).")
    connections: int = setting(
        "WEBAPP_CONNECTIONS", 1000, "Connections one gunicorn worker serves at once (gevent; slow clients included)."
    )
