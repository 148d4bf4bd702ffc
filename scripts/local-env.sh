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
# Where local clients reach a server bound to $1 (loopback when it binds every interface).
reach() { case "$1" in "" | 0.0.0.0 | "::" | "[::]") echo 127.0.0.1 ;; *) echo "$1" ;; esac; }

export AIRFLOW_HOME="${AIRFLOW_HOME:-$FSDL_STORAGE_DIR/airflow}"
mkdir -p "$AIRFLOW_HOME"

# Secrets every process of a role must share: made once per AIRFLOW_HOME and kept there; values
# already in the environment (from .env, say) win.
# The logins generated on the first start are kept in FSDL_NEW_LOGINS for scripts/up.sh to show once.
FSDL_NEW_LOGINS=$(python "$FSDL_ROOT/scripts/make_secrets.py" "$AIRFLOW_HOME/secrets.env") || return 1
export FSDL_NEW_LOGINS
while IFS='=' read -r name value; do
    [ -n "$name" ] && [ -z "${!name:-}" ] && export "$name=$value"
done <"$AIRFLOW_HOME/secrets.env"

export AIRFLOW__CORE__DAGS_FOLDER="$FSDL_ROOT/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="$AIRFLOW_ADMIN_USER:admin"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$AIRFLOW_HOME/passwords.json"
export AIRFLOW__API__HOST="$AIRFLOW_BIND_HOST"
export AIRFLOW__API__PORT="$AIRFLOW_PORT"
export AIRFLOW__API__WORKERS="${AIRFLOW__API__WORKERS:-1}"
export AIRFLOW__API__BASE_URL="http://$(reach "$AIRFLOW_BIND_HOST"):$AIRFLOW_PORT"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="$AIRFLOW__API__BASE_URL/execution/"
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="${AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL:-30}"
case "${FSDL_MODE:-embedded}" in
    embedded)
        export AIRFLOW__CORE__EXECUTOR=LocalExecutor
        export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$AIRFLOW_HOME/airflow.db"
        ;;
    distributed)
        export AIRFLOW__CORE__EXECUTOR=CeleryExecutor
        export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="$FSDL_POSTGRES_URL"
        export AIRFLOW__CELERY__BROKER_URL="$FSDL_REDIS_URL"
        export AIRFLOW__CELERY__RESULT_BACKEND="db+${FSDL_POSTGRES_URL/+psycopg2/}"
        export AIRFLOW__CELERY__WORKER_CONCURRENCY="$FSDL_CELERY_CONCURRENCY"
        export AIRFLOW__CELERY__FLOWER_HOST="$FLOWER_BIND_HOST"
        export AIRFLOW__CELERY__FLOWER_PORT="$FLOWER_PORT"
        export AIRFLOW__CELERY__FLOWER_BASIC_AUTH="$FLOWER_USER:$FLOWER_PASSWORD"
        export AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT=21600
        export AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK=True
        ;;
    *)
        echo "unknown FSDL_MODE=${FSDL_MODE} (embedded or distributed)" >&2
        return 1
        ;;
esac

# No usage telemetry leaves the machine (MLflow's client, server and UI; any tool honouring DO_NOT_TRACK).
export MLFLOW_DISABLE_TELEMETRY=true
export DO_NOT_TRACK=true
export WEBAPP_MLFLOW_UI_URL="${WEBAPP_MLFLOW_UI_URL:-http://$(reach "$MLFLOW_BIND_HOST"):$MLFLOW_PORT}"
export MLFLOW_BACKEND_STORE_URI="sqlite:///$FSDL_STORAGE_DIR/mlflow/mlflow.db"
export MLFLOW_ARTIFACTS_DESTINATION="$FSDL_STORAGE_DIR/mlflow/artifacts"
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
export MLFLOW_ALLOWED_HOSTS="${MLFLOW_ALLOWED_HOSTS:-localhost:*,127.0.0.1:*,mlflow:$MLFLOW_PORT,mlflow}"
# MLflow's logins (mlflow/accounts.py writes this file and the accounts before the server starts).
export MLFLOW_AUTH_CONFIG_PATH="$FSDL_STORAGE_DIR/mlflow/basic_auth.ini"
# Airflow's tasks use the pipelines' service account; the web app its own (WEBAPP_MLFLOW_*).
export MLFLOW_TRACKING_USERNAME="${MLFLOW_TRACKING_USERNAME:-fsdl-pipelines}"
export MLFLOW_TRACKING_PASSWORD="${MLFLOW_TRACKING_PASSWORD:-$MLFLOW_PIPELINES_PASSWORD}"
mkdir -p "$FSDL_STORAGE_DIR/mlflow/artifacts"
