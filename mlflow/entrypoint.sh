#!/bin/sh
# Entrypoint of the MLflow image: write the logins (mlflow/accounts.py) next to the configuration
# MLFLOW_AUTH_CONFIG_PATH names, then run the command (mlflow server --app-name basic-auth ...).
set -eu
if [ -n "${MLFLOW_AUTH_CONFIG_PATH:-}" ]; then
    python /opt/fsdl/accounts.py "$(dirname "$MLFLOW_AUTH_CONFIG_PATH")"
fi
exec "$@"
