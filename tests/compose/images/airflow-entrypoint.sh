#!/usr/bin/env bash
# Entrypoint of the apache/airflow stand-in (see airflow.Dockerfile): the parts of the official
# /entrypoint that docker-compose.yml relies on.
set -euo pipefail

# Any uid with gid 0 may run the image (AIRFLOW_UID): give it a passwd entry and the airflow home.
if ! whoami >/dev/null 2>&1 && [ -w /etc/passwd ]; then
    echo "default:x:$(id -u):0:default user:${AIRFLOW_USER_HOME_DIR}:/sbin/nologin" >>/etc/passwd
fi
export HOME="${AIRFLOW_USER_HOME_DIR}"

if [ -n "${_AIRFLOW_DB_MIGRATE:-}" ] && [ "${_AIRFLOW_DB_MIGRATE}" != false ]; then
    airflow db migrate
fi

if [ $# -eq 0 ]; then
    exec bash
fi
case "$1" in
    bash | python | airflow) exec "$@" ;;
    *) exec airflow "$@" ;;
esac
