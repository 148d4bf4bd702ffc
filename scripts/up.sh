#!/usr/bin/env bash
# Start the platform as local processes: `make up` (embedded) or `make up-distributed` (FSDL_MODE=distributed).
# Safe to run again; Ctrl-C stops everything. With --prepare-only it seeds the data, checks the services
# and migrates the database, then exits (the stack tests start the processes themselves).
set -euo pipefail
prepare_only=false
[ "${1:-}" = --prepare-only ] && prepare_only=true

# shellcheck source=scripts/local-env.sh
. "$(dirname "$0")/local-env.sh"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

mode=${FSDL_MODE:-embedded}
procfile="$FSDL_ROOT/Procfile"
ports=("$AIRFLOW_PORT" "$MLFLOW_PORT" "$WEBAPP_PORT")
if [ "$mode" = distributed ]; then
    procfile="$FSDL_ROOT/Procfile.distributed"
    ports+=("$FLOWER_PORT")
fi

for port in "${ports[@]}"; do
    if python -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('$FSDL_BIND_HOST', $port)) != 0)"; then
        echo "Port $port on $FSDL_BIND_HOST is already in use: is the platform already running?" >&2
        echo "Stop it, or pick other ports in .env (AIRFLOW_PORT, MLFLOW_PORT, WEBAPP_PORT)." >&2
        exit 1
    fi
done

say "Data under $FSDL_DATA_DIR, service state under $FSDL_STORAGE_DIR"
mkdir -p "$FSDL_DATA_DIR"/raw/intel_scenes "$FSDL_DATA_DIR"/processed "$FSDL_DATA_DIR"/feedback/intel_scenes
fsdl seed --sample "$FSDL_ROOT/samples/intel_scenes" --wine "$FSDL_ROOT/data/raw/wine/winequality-red.csv"

if [ -z "$FSDL_OFFLINE_WEIGHTS_CHOSEN" ] && ! fsdl weights-cached --quiet; then
    export FSDL_OFFLINE_WEIGHTS=1
    say "ResNet50 ImageNet weights are not cached: using deterministic random weights (FSDL_OFFLINE_WEIGHTS=1)."
    echo "    Run '.venv/bin/fsdl download-weights' (needs internet access) for the real ones, then restart."
fi

if [ "$mode" = distributed ]; then
    say "Checking PostgreSQL and Redis"
    python "$FSDL_ROOT/scripts/check_services.py" "$FSDL_POSTGRES_URL" "$FSDL_REDIS_URL"
fi

say "Migrating the Airflow database ($AIRFLOW__DATABASE__SQL_ALCHEMY_CONN)"
airflow db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1 || {
    tail -n 30 "$AIRFLOW_HOME/db-migrate.log" >&2
    echo "airflow db migrate failed; the whole log is $AIRFLOW_HOME/db-migrate.log" >&2
    exit 1
}
python - "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" "$AIRFLOW_ADMIN_USER" "$AIRFLOW_ADMIN_PASSWORD" <<'PY'
import json, os, sys
path, user, password = sys.argv[1:]
tmp = path + ".tmp"
with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
    json.dump({user: password}, out)
os.replace(tmp, path)
PY

if $prepare_only; then
    exit 0
fi

cat <<MSG

  Airflow UI   http://$FSDL_BIND_HOST:$AIRFLOW_PORT   (login $AIRFLOW_ADMIN_USER / $AIRFLOW_ADMIN_PASSWORD)
  MLflow UI    http://$FSDL_BIND_HOST:$MLFLOW_PORT
  Web app      http://$FSDL_BIND_HOST:$WEBAPP_PORT   (serves $FSDL_SCENES_MODEL_NAME@production once a version has that alias)
MSG
if [ "$mode" = distributed ]; then
    echo "  Flower       http://$FSDL_BIND_HOST:$FLOWER_PORT   (Celery workers and tasks)"
fi
cat <<MSG
  Logs         below, one colour per process; Airflow task logs in $AIRFLOW_HOME/logs

  Ctrl-C stops everything.

MSG
say "Starting the $mode mode from ${procfile##*/}"
exec honcho start -f "$procfile" --env /dev/null
