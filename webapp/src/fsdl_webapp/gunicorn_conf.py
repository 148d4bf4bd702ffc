"""gunicorn settings from the environment: `gunicorn -c python:fsdl_webapp.gunicorn_conf 'fsdl_webapp:create_app()'`."""

from fsdl_lib.config import Settings
from fsdl_webapp.config import WebSettings

_settings = Settings.from_env()
_web = WebSettings.from_env()

bind = f"{_settings.webapp_bind_host}:{_settings.webapp_port}"
workers = _web.workers
# gevent: each connection is a greenlet, so clients that trickle or stall (slowloris) cannot hold the
# worker; gunicorn's docs prescribe async workers (or a buffering proxy) for serving clients directly.
worker_class = "gevent"
worker_connections = _web.connections
timeout = 120
graceful_timeout = 10
accesslog = "-"
errorlog = "-"
