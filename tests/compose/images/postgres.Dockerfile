# Stand-in for postgres:16-bookworm, built by build.sh where no image registry is reachable.
# Differs from the official image:
# - The server is Debian's PostgreSQL 15 (bookworm has no 16; the official image builds 16 from the
#   PostgreSQL project's own apt repository). Airflow 3.3 supports both; nothing here depends on 16.
# - postgres-entrypoint.sh handles only what docker-compose.yml uses: POSTGRES_USER,
#   POSTGRES_PASSWORD and POSTGRES_DB on the first start (no /docker-entrypoint-initdb.d scripts, no
#   POSTGRES_INITDB_ARGS or POSTGRES_HOST_AUTH_METHOD); it drops to the postgres user with setpriv
#   instead of gosu.
FROM debian:bookworm-slim

ENV PGDATA=/var/lib/postgresql/data \
    PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8

# No cluster at install time: the entrypoint creates one in $PGDATA on the first start.
RUN mkdir -p /etc/postgresql-common \
    && echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.conf \
    && apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p "$PGDATA" /var/run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
    && chmod 3777 /var/run/postgresql

COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql/data
ENTRYPOINT ["docker-entrypoint.sh"]
# Fast shutdown on `docker stop`, as the official image does.
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
