# shellcheck shell=bash
# Environment of the local run modes; sourced by scripts/up.sh and the tests, never run directly.
# Order: .env (if any) > values already in the environment > defaults from `fsdl env`.
# Set FSDL_MODE=distributed before sourcing for the Postgres + Celery topology.

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
eval "$(fsdl env)" || return 1

export AIRFLOW_HOME="${AIRFLOW_HOME:-$FSDL_STORAGE_DIR/airflow}"
mkdir -p "$AIRFLOW_HOME"

# Secrets every process of a role must share; made once per AIRFLOW_HOME and kept there.
python - "$AIRFLOW_HOME/secrets.env" <<'PY'
import base64, os, secrets, sys
path = sys.argv[1]
wanted = {
    "AIRFLOW__API_AUTH__JWT_SECRET": lambda: secrets.token_urlsafe(64),
    "AIRFLOW__API__SECRET_KEY": lambda: secrets.token_urlsafe(32),
    "AIRFLOW__CORE__FERNET_KEY": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode(),
    "WEBAPP_SECRET_KEY": lambda: secrets.token_urlsafe(32),
}
have = open(path).read() if os.path.exists(path) else ""
missing = [k for k in wanted if f"{k}=" not in have]
if missing:
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a") as out:
        out.writelines(f"{k}={wanted[k]()}\n" for k in missing)
PY
set -a
# shellcheck disable=SC1091
. "$AIRFLOW_HOME/secrets.env"
set +a

export AIRFLOW__CORE__DAGS_FOLDER="$FSDL_ROOT/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="$AIRFLOW_ADMIN_USER:admin"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$AIRFLOW_HOME/passwords.json"
export AIRFLOW__API__HOST="$FSDL_BIND_HOST"
export AIRFLOW__API__PORT="$AIRFLOW_PORT"
export AIRFLOW__API__WORKERS="${AIRFLOW__API__WORKERS:-1}"
export AIRFLOW__API__BASE_URL="http://$FSDL_BIND_HOST:$AIRFLOW_PORT"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://$FSDL_BIND_HOST:$AIRFLOW_PORT/execution/"
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="${AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL:-30}"
case "${FSDL_MODE:-embedded}" in
    embedded)
        export AIRFLOW__CORE__EXECUTOR=LocalExecutor
        export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$AIRFLOW_HOME/airflow.db"
        ;;
    *)
        echo "unknown FSDL_MODE=${FSDL_MODE}" >&2
        return 1
        ;;
esac

export MLFLOW_BACKEND_STORE_URI="sqlite:///$FSDL_STORAGE_DIR/mlflow/mlflow.db"
export MLFLOW_ARTIFACTS_DESTINATION="$FSDL_STORAGE_DIR/mlflow/artifacts"
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
export MLFLOW_ALLOWED_HOSTS="${MLFLOW_ALLOWED_HOSTS:-localhost:*,127.0.0.1:*,mlflow:$MLFLOW_PORT,mlflow}"
mkdir -p "$FSDL_STORAGE_DIR/mlflow/artifacts"
