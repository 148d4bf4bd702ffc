"""Budgets per client, and login throttling, with Flask-Limiter.

The web app faces the public, so every client gets a budget (settings in :mod:`fsdl_webapp.config`):
predictions, MiB uploaded, answers, and everything else; logins that fail are counted per client
and per account, and past either limit even the right password waits. A client over a budget gets
HTTP 429 with ``Retry-After``. Windows are fixed (``limits``' fixed-window strategy), and a refused
request counts too: a client that keeps pushing past its budget stays refused until the window ends.

A client is its address: an IPv4 address, or the /64 network of an IPv6 one (what one subscriber
is usually given). Behind a reverse proxy, ``WEBAPP_TRUSTED_PROXIES`` says how many proxies'
``X-Forwarded-For`` to believe. The counts live in a store the web app already runs: a SQLite file
in its state folder, shared by every gunicorn worker and kept across restarts
(:class:`SQLiteStorage`, a storage of the ``limits`` library); ``WEBAPP_RATE_LIMIT_STORAGE`` can
name any other store ``limits`` knows.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g, request
from flask_limiter import Limiter
from limits import parse_many
from limits.storage import Storage
from werkzeug.middleware.proxy_fix import ProxyFix

from fsdl_lib.exceptions import ConfigError
from fsdl_webapp.config import WebSettings

log = logging.getLogger(__name__)

MIB = 1024 * 1024


class SQLiteStorage(Storage):
    """Fixed-window counters for ``limits`` in one SQLite table: ``sqlite:///<path>``.

    One UPSERT per hit, on a connection of its own (WAL, not synced: a crash of the machine may
    forget the last seconds of counts, never corrupt them).
    """

    STORAGE_SCHEME = ["sqlite"]  # noqa: RUF012 - the limits library's own declaration

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **_: Any) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        path = (uri or "").split("://", 1)[-1]
        if not path:
            raise ValueError("sqlite:///<path> needs a path")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, value INTEGER NOT NULL, expires REAL NOT NULL)"
        )
        self._hits = 0

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return sqlite3.Error

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self._lock:
            self._hits += 1
            if self._hits % 1000 == 0:  # now and then, forget the windows that are over
                self._db.execute("DELETE FROM counters WHERE expires <= ?", (now,))
            row = self._db.execute(
                "INSERT INTO counters (key, value, expires) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE SET "
                "value = CASE WHEN expires <= ?4 THEN ?2 ELSE value + ?2 END, "
                "expires = CASE WHEN expires <= ?4 THEN ?3 ELSE expires END RETURNING value",
                (key, amount, now + expiry, now),
            ).fetchone()
        return int(row[0])

    def _row(self, key: str) -> tuple[int, float] | None:
        with self._lock:
            row = self._db.execute("SELECT value, expires FROM counters WHERE key = ?", (key,)).fetchone()
        return None if row is None or row[1] <= time.time() else (int(row[0]), float(row[1]))

    def get(self, key: str) -> int:
        row = self._row(key)
        return row[0] if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._row(key)
        return row[1] if row else time.time()

    def check(self) -> bool:
        try:
            with self._lock:
                self._db.execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def reset(self) -> int | None:
        with self._lock:
            return self._db.execute("DELETE FROM counters").rowcount

    def clear(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM counters WHERE key = ?", (key,))


def client_address() -> str:
    """The client as budgets count it: its IPv4 address, or its IPv6 /64 network."""
    raw = request.remote_addr or "unknown"
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return raw
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


def client_id() -> str:
    """A pseudonym of the client, stable while the secret key is (kept with predictions and answers
    instead of the address: the review page shows where answers came from without storing who)."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, client_address().encode(), hashlib.sha256).hexdigest()[:12]


def login_given() -> str:
    """The account name a request tries to log in as ("" without a login)."""
    auth = request.authorization
    return (auth.username or "") if auth else ""


def note_failed_login() -> None:
    """Called by a view that refused the login a request carried: counts against both budgets."""
    g.login_failed = True


def _login_failed(_response: Any) -> bool:
    return bool(g.get("login_failed"))


def _upload_cost() -> int:
    """MiB the request uploads, rounded up (the most the web app accepts when it does not say)."""
    length = request.content_length
    if length is None:
        return int(current_app.config["WEB_SETTINGS"].max_upload_mb)
    return max(1, math.ceil(length / MIB))


def _setting(name: str) -> Callable[[], str]:
    return lambda: getattr(current_app.config["WEB_SETTINGS"], name)


BUDGETS = ("rate_limit_predict", "upload_budget", "rate_limit_feedback", "rate_limit_default",
           "login_limit_client", "login_limit_account")  # fmt: skip
"""The settings that are budgets (``limits`` notation: ``20/minute;300/hour``)."""


def check_settings(web: WebSettings) -> None:
    """Refuse budgets the ``limits`` library cannot read, naming the variable."""
    import dataclasses

    variables = {f.name: f.metadata["env"] for f in dataclasses.fields(web)}
    for name in BUDGETS:
        value = getattr(web, name)
        try:
            parse_many(value)
        except ValueError:
            raise ConfigError(variables[name], value, "budgets such as 20/minute;300/hour") from None


def storage_uri(app: Flask) -> str:
    web: WebSettings = app.config["WEB_SETTINGS"]
    return web.rate_limit_storage or f"sqlite:///{Path(app.config['WEB_STATE_DIR']) / 'ratelimits.db'}"


def init_app(app: Flask, logins: list[str]) -> Limiter:
    """Install the budgets; ``logins`` are the endpoints behind a login (throttled on failures).

    The limits wrap this app's own view functions (``app.view_functions``), so that every app has
    its own limiter and store (the tests run many).
    """
    web: WebSettings = app.config["WEB_SETTINGS"]
    check_settings(web)
    if web.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=web.trusted_proxies)  # type: ignore[method-assign]
    limiter = Limiter(
        client_address,
        app=app,
        storage_uri=storage_uri(app),
        strategy="fixed-window",
        default_limits=[_setting("rate_limit_default")],
        default_limits_exempt_when=lambda: request.endpoint in EXEMPT,
        headers_enabled=True,
        swallow_errors=True,  # a store that fails must not take predictions down with it; the log says so
    )

    def wrap(endpoint: str, *decorators: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
        view = app.view_functions[endpoint]
        for decorator in decorators:
            view = decorator(view)
        app.view_functions[endpoint] = view

    wrap(
        "api.predict",
        limiter.limit(_setting("rate_limit_predict")),
        limiter.limit(_setting("upload_budget"), cost=_upload_cost, scope="upload-mib"),
    )
    wrap("api.feedback", limiter.limit(_setting("rate_limit_feedback")))
    for endpoint in logins:
        wrap(
            endpoint,
            limiter.shared_limit(_setting("login_limit_client"), scope="login-client", deduct_when=_login_failed),
            limiter.shared_limit(
                _setting("login_limit_account"),
                scope="login-account",
                key_func=lambda: f"account:{login_given()}",
                deduct_when=_login_failed,
            ),
        )
    app.extensions["fsdl_limiter"] = limiter
    return limiter


EXEMPT = frozenset({"health.healthz", "health.readyz", "metrics.metrics", "static", "bootstrap.static"})
"""Endpoints no budget counts: probes, Prometheus's scrape and static files."""
