"""Check that Postgres and Redis of the distributed mode answer, and create Airflow's database.

usage: check_services.py POSTGRES_URL REDIS_URL   (exit 1 with a message saying what to start)
"""

from __future__ import annotations

import sys

from sqlalchemy.engine import make_url


def ensure_database(url: str) -> None:
    import psycopg2
    from psycopg2 import sql

    target = make_url(url)
    params = {"host": target.host, "port": target.port or 5432, "user": target.username, "password": target.password}
    try:
        conn = psycopg2.connect(dbname="postgres", connect_timeout=5, **params)
    except psycopg2.OperationalError as exc:
        sys.exit(f"PostgreSQL at {target.host}:{params['port']} does not answer ({exc}).\n"
                 "Start it (Debian: sudo pg_ctlcluster 15 main start) or set FSDL_POSTGRES_URL.")  # fmt: skip
    conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (target.database,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target.database)))
                print(f"created database {target.database}")
    finally:
        conn.close()


def check_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        sys.exit(
            f"Redis at {url} does not answer ({exc}).\nStart it (redis-server --daemonize yes) or set FSDL_REDIS_URL."
        )


if __name__ == "__main__":
    ensure_database(sys.argv[1])
    check_redis(sys.argv[2])
