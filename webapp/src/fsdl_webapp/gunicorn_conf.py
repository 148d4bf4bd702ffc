"""gunicorn settings from the environment: `gunicorn -c python:fsdl_webapp.gunicorn_conf 'fsdl_webapp:create_app()'`."""

from fsdl_lib.config import Settings
from fsdl_webapp.config import WebSettings

_settings = Settings.from_env()
_web = WebSettings.from_env()

bind = f"{_settings.bind_host}:{_settings.webapp_port}"
workers = _web.workers
threads = _web.threads
worker_class = "gthread"
timeout = 120
graceful_timeout = 10
accesslog = "-"
errorlog = "-"
