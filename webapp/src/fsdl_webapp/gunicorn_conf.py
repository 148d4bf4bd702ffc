"""gunicorn settings from the environment: `gunicorn -c python:fsdl_webapp.gunicorn_conf 'fsdl_webapp:create_app()'`."""

from fsdl_lib.config import Settings
from fsdl_lib.lean_imports import refuse_training_imports
from fsdl_webapp.config import WebSettings

# Serving runs the exported backbone graph on ONNX Runtime: torch and pyarrow, where they are installed
# at all (a training venv), are never loaded by a serving worker, even by libraries that look for them.
refuse_training_imports()

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
# gunicorn's control socket (25.1 and later) would be one more way to manage the server, which nothing here
# uses; and in the container, where HOME is not writable, trying to create it only logs an error.
control_socket_disable = True
