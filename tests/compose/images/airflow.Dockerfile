# Stand-in for apache/airflow:3.3.2-python3.11, built by build.sh where no image registry is
# reachable. Like the official image: user airflow (uid 50000, gid 0) with AIRFLOW_HOME=/opt/airflow,
# Airflow in a virtualenv at /home/airflow/.local that is first on PATH (so `pip install` in a
# derived image as that user lands there), dumb-init as PID 1, curl for healthchecks, and an
# /entrypoint that runs `airflow <command>`, `bash` or `python`, honours _AIRFLOW_DB_MIGRATE and
# runs under any uid with gid 0.
# Differs from the official image:
# - built on the python:3.11-slim-bookworm stand-in (Debian's Python 3.11.2, not a source build);
# - only the extras this project uses (celery, postgres, redis, fab, statsd), installed without
#   Airflow's constraints file (not reachable here), with celery pinned below 5.7 as
#   requirements/platform.txt explains; the official image installs ~30 extras at constraint pins;
# - the entrypoint is a small rewrite: it does not wait for the database, create users
#   (_AIRFLOW_WWW_USER_CREATE) or install _PIP_ADDITIONAL_REQUIREMENTS.
FROM python:3.11-slim-bookworm

ARG AIRFLOW_VERSION=3.3.2
ENV AIRFLOW_HOME=/opt/airflow \
    AIRFLOW_USER_HOME_DIR=/home/airflow \
    AIRFLOW_UID=50000 \
    PATH=/home/airflow/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends curl dumb-init libpq5 sqlite3 procps \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 50000 --gid 0 --home-dir /home/airflow --create-home --shell /bin/bash airflow \
    && mkdir -p /opt/airflow/dags /opt/airflow/logs /opt/airflow/plugins /opt/airflow/config \
    && chown -R airflow:0 /opt/airflow /home/airflow \
    && chmod -R g+rwX /opt/airflow /home/airflow \
    && chmod g=u /etc/passwd

USER 50000
RUN python -m venv /home/airflow/.local \
    && pip install --upgrade pip \
    && pip install "apache-airflow[celery,postgres,redis,fab,statsd]==${AIRFLOW_VERSION}" "celery[redis]>=5.5,<5.7" \
    && chmod -R g+rwX /home/airflow/.local

COPY --chown=airflow:0 airflow-entrypoint.sh /entrypoint
WORKDIR /opt/airflow
EXPOSE 8080
ENTRYPOINT ["/usr/bin/dumb-init", "--", "/entrypoint"]
CMD []
