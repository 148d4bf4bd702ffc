# shellcheck shell=bash
# Environment of the local run modes; sourced by scripts/up.sh and the tests, never run directly.
# Order: .env (if any) > values already in the environment > defaults from `fsdl env`.
# FSDL_MODE=embedded (SQLite, LocalExecutor) or distributed (Postgres, Celery + Redis, Flower).

FSDL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export FSDL_ROOT
if [ -f "$FSDL_ROOT/.env" ]; then
    set -a
    # shellcheck disable=SC1091
    . "$FSDL_ROOT/.env"
    set +a
fi
export PATH="$FSDL_ROOT/.venv/bin:$PATH"
cd "$FSDL_ROOT" || return 1
# Remember whether the user chose the weights, before defaults fill the variable in.
export FSDL_OFFLINE_WEIGHTS_CHOSEN="${FSDL_OFFLINE_WEIGHTS+yes}"
settings=$(fsdl env) || return 1  # a bad value stops here, saying which
eval "$settings"
unset settings
# Every process of this platform carries its storage folder: `make down` and `make status` find
# them by it, in whatever process group or session they run (fsdl_tools/processes.py).
FSDL_INSTANCE=$(realpath -m "$FSDL_STORAGE_DIR")
export FSDL_INSTANCE

export AIRFLOW_HOME="${AIRFLOW_HOME:-$FSDL_STORAGE_DIR/airflow}"
mkdir -p "$AIRFLOW_HOME"

# Secrets every process of a role must share: made once per AIRFLOW_HOME and kept there; values
# already in the environment (from .env, say) win.
# The logins generated on the first start are kept in FSDL_NEW_LOGINS for scripts/up.sh to show once.
FSDL_NEW_LOGINS=$(python -m fsdl_deploy.secrets "$AIRFLOW_HOME/secrets.env") || return 1
export FSDL_NEW_LOGINS
# Split at the first '=' by hand: `IFS='=' read name value` drops a value's one trailing '=' (the
# padding of a base64 key such as the Fernet key).
while IFS= read -r line; do
    name=${line%%=*}
    [ -n "$name" ] && [ "$name" != "$line" ] && [ -z "${!name:-}" ] && export "$name=${line#*=}"
done <"$AIRFLOW_HOME/secrets.env"
unset line name

# What the services add (Airflow's executor, database and API, the MLflow server's storage and
# logins), derived from the settings in one place: deploy/src/fsdl_deploy/environment.py.
services=$(fsdl-deploy env "${FSDL_MODE:-embedded}") || return 1
eval "$services"
unset services
mkdir -p "$MLFLOW_ARTIFACTS_DESTINATION"
