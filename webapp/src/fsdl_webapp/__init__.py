"""The web app: classify an upload with the production model, collect the user's feedback."""

from __future__ import annotations

import dataclasses
import logging
import secrets
from pathlib import Path
from typing import Any

from flask import Flask

from fsdl_lib.config import Settings
from fsdl_lib.exceptions import ConfigError
from fsdl_webapp.config import WebSettings
from fsdl_webapp.review_queue import POLICIES

__all__ = ["create_app"]


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Application factory. ``test_config`` overrides settings (tests pass settings)."""
    app = Flask(__name__)
    config = test_config or {}
    settings: Settings = config.get("FSDL_SETTINGS") or Settings.from_env()
    web: WebSettings = config.get("WEB_SETTINGS") or WebSettings.from_env()
    if web.feedback_policy not in POLICIES:
        raise ConfigError("WEBAPP_FEEDBACK_POLICY", web.feedback_policy, " or ".join(POLICIES))
    if web.s3_access_key_id:  # the web app's own identity on the object store, whatever the environment holds
        settings = dataclasses.replace(
            settings, s3_access_key_id=web.s3_access_key_id, s3_secret_access_key=web.s3_secret_access_key
        )
    if not web.secret_key:
        app.logger.warning("WEBAPP_SECRET_KEY is not set; using a random key (set it when running several workers)")
    app.config.update(
        SECRET_KEY=web.secret_key or secrets.token_hex(32),
        MAX_CONTENT_LENGTH=web.max_upload_mb * 1024 * 1024,
        BOOTSTRAP_SERVE_LOCAL=True,
        JSON_SORT_KEYS=False,
        FSDL_SETTINGS=settings,
        WEB_SETTINGS=web,
        MLFLOW_UI_URL=(web.mlflow_ui_url or settings.mlflow_tracking_uri).rstrip("/"),
        WEB_STATE_DIR=str(Path(web.state_dir) if web.state_dir else settings.storage_dir / "webapp"),
    )
    app.config.update({k: v for k, v in config.items() if k.isupper()})
    if not app.debug:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from flask_bootstrap import Bootstrap5

    Bootstrap5(app)

    from fsdl_webapp import (
        access,
        admission,
        api,
        errors,
        health,
        metrics,
        monitoring,
        pages,
        review,
        rollback,
        services,
        throttle,
    )

    services.init_app(app, start_polling=config.get("START_POLLING", True))
    # First of the request hooks: a prediction past the latency budget is refused before anything else runs.
    admission.init_app(app, ADMITTED_ENDPOINTS, lambda: services.get_model_service().admission)
    metrics.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(monitoring.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(review.bp)
    app.register_blueprint(rollback.bp)
    throttle.init_app(app, logins=LOGIN_ENDPOINTS)
    access.init_app(app)
    errors.init_app(app)
    return app


ADMITTED_ENDPOINTS = {"api.predict"}
"""The views whose work in flight is bounded (fsdl_webapp.admission): those that run the model."""

LOGIN_ENDPOINTS = [
    "review.page", "review.image", "review.queue", "review.decisions", "review.decide", "rollback.page",
    "rollback.rollback",
]  # fmt: skip
"""The views behind the web app's login (fsdl_webapp.access.login_required): failed logins are throttled."""
