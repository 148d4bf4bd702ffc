#!/usr/bin/env bash
# Start the platform as local processes: `make up` (embedded) or `make up-distributed` (FSDL_MODE=distributed).
# Safe to run again. Ctrl-C, SIGTERM or a closed terminal (SIGHUP) stops everything it started;
# `make down` stops a platform of this checkout left running, `make status` says what runs. With --prepare-only it seeds the data, checks the services
# and migrates the database, then exits (the stack tests start the processes themselves).
set -euo pipefail
prepare_only=false
[ "${1:-}" = --prepare-only ] && prepare_only=true

# shellcheck source=scripts/local-env.sh
. "$(dirname "$0")/local-env.sh"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

mode=${FSDL_MODE:-embedded}
procfile="$FSDL_ROOT/Procfile"
# Where a local client reaches each service (its bind address, or loopback when it binds them all).
read -r airflow_url mlflow_url webapp_url flower_url prometheus_url < <(python -c '
from fsdl_lib.config import load_settings
s = load_settings()
print(s.airflow_url, s.mlflow_url, s.webapp_url, s.flower_url, s.prometheus_url)')
urls=("$airflow_url" "$mlflow_url" "$webapp_url")
if [ "$mode" = distributed ]; then
    procfile="$FSDL_ROOT/Procfile.distributed"
    urls+=("$flower_url")
fi
# Every process of the Procfile; Prometheus only where its binary is installed.
mapfile -t processes < <(sed -n 's/^\([a-z-]*\):.*/\1/p' "$procfile")
if command -v prometheus >/dev/null; then
    urls+=("$prometheus_url")
else
    mapfile -t processes < <(printf '%s\n' "${processes[@]}" | grep -vx prometheus)
fi

running=$(python -m fsdl_tools.processes status --root "$FSDL_STORAGE_DIR")
if [[ $running != No\ platform* ]]; then
    echo "A platform with this storage folder is already running:" >&2
    echo "$running" >&2
    echo "Stop it first: make down" >&2
    exit 1
fi
for url in "${urls[@]}"; do
    if python -c "import socket, sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); sys.exit(socket.socket().connect_ex((p.hostname, p.port)) != 0)" "$url"; then
        echo "${url#http://} is already in use: is the platform already running?" >&2
        echo "Stop it, or pick other ports in .env (AIRFLOW_PORT, MLFLOW_PORT, WEBAPP_PORT, FLOWER_PORT)." >&2
        exit 1
    fi
done

if [ "$mode" = distributed ]; then
    say "Checking PostgreSQL and Redis"
    python "$FSDL_ROOT/scripts/check_services.py" "$FSDL_POSTGRES_URL" "$FSDL_REDIS_URL"
    # Its own store (unless FSDL_S3_ENDPOINT_URL names another): started in the background, stopped
    # with the platform (it carries FSDL_INSTANCE); its log is storage/objectstore/weed.log.
    say "Object store"
    fsdl-deploy objectstore-start
fi

if [ -n "${FSDL_DATA_URL:-}" ]; then
    say "Data in $FSDL_DATA_URL (on $FSDL_S3_ENDPOINT_URL), service state under $FSDL_STORAGE_DIR"
else
    say "Data under $FSDL_DATA_DIR, service state under $FSDL_STORAGE_DIR"
    mkdir -p "$FSDL_DATA_DIR"/raw/intel_scenes "$FSDL_DATA_DIR"/processed "$FSDL_DATA_DIR"/feedback/intel_scenes
fi
fsdl seed --sample "$FSDL_ROOT/samples/intel_scenes" --wine "$FSDL_ROOT/data/raw/wine/winequality-red.csv"

if [ -z "$FSDL_OFFLINE_WEIGHTS_CHOSEN" ] && ! fsdl weights-cached --quiet; then
    export FSDL_OFFLINE_WEIGHTS=1
    say "ResNet50 ImageNet weights are not cached: using deterministic random weights (FSDL_OFFLINE_WEIGHTS=1)."
    echo "    Run '.venv/bin/fsdl download-weights' (needs internet access) for the real ones, then restart."
fi

say "Migrating the Airflow database ($AIRFLOW__DATABASE__SQL_ALCHEMY_CONN)"
airflow db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1 || {
    tail -n 30 "$AIRFLOW_HOME/db-migrate.log" >&2
    echo "airflow db migrate failed; the whole log is $AIRFLOW_HOME/db-migrate.log" >&2
    exit 1
}
# The pool the training tasks take their threads from (one slot per core; see fsdl_lib.resources).
eval "airflow pools set $(fsdl compute-pool)" >/dev/null
fsdl-deploy airflow-passwords "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
# Prometheus's configuration: this machine's addresses, the alert rules of monitoring/alerts.yml.
mkdir -p "$FSDL_STORAGE_DIR/prometheus"
fsdl-deploy prometheus-config --root "$FSDL_ROOT" >"$FSDL_STORAGE_DIR/prometheus/prometheus.yml"
# Its login: PROMETHEUS_USER with PROMETHEUS_PASSWORD (generated), stored as a bcrypt hash.
(umask 077 && fsdl-deploy prometheus-web-config >"$FSDL_STORAGE_DIR/prometheus/web.yml")
say "MLflow logins"
python "$FSDL_ROOT/mlflow/accounts.py" "$(dirname "$MLFLOW_AUTH_CONFIG_PATH")"

if $prepare_only; then
    exit 0
fi

if [ -n "$FSDL_NEW_LOGINS" ]; then
    echo
    echo "$FSDL_NEW_LOGINS"
    echo "  They are shown this once; later, read them in $AIRFLOW_HOME/secrets.env."
fi
cat <<MSG

  Airflow UI   $airflow_url   (login $AIRFLOW_ADMIN_USER)
  MLflow UI    $mlflow_url   (login $MLFLOW_AUTH_ADMIN_USERNAME)
  Web app      $webapp_url   (serves $FSDL_SCENES_MODEL_NAME@production once a version has that alias)
MSG
if [ "$mode" = distributed ]; then
    echo "  Flower       $flower_url   (login $FLOWER_USER; Celery workers and tasks)"
fi
if command -v prometheus >/dev/null; then
    echo "  Prometheus   $prometheus_url   (login $PROMETHEUS_USER; alerts: monitoring/alerts.yml)"
else
    echo "  Prometheus   not installed (apt-get install prometheus): metrics at $webapp_url/metrics, nothing scrapes them"
fi
cat <<MSG
  Passwords    $AIRFLOW_HOME/secrets.env (or your .env)
  Logs         below, one colour per process; Airflow task logs in $AIRFLOW_HOME/logs

  Ctrl-C stops everything (so does closing this terminal); from elsewhere: make down.

MSG
say "Starting the $mode mode from ${procfile##*/}"
exec python -m fsdl_tools.processes supervise -- honcho start -f "$procfile" --env /dev/null "${processes[@]}"
