"""Which version served when, and the drift checks of what it served.

Both are logs of this server in the web app's database (:mod:`fsdl_webapp.feedback_db`): the model
service notes each swap (:class:`ServedHistory`), the drift monitor each check (:class:`DriftLog`).
"""

from __future__ import annotations

import json
import time
from typing import Any

from fsdl_webapp.feedback_db import FeedbackDatabase


class ServedHistory:
    def __init__(self, db: FeedbackDatabase) -> None:
        self.db = db

    def record(self, model_name: str, model_version: str, alias: str, at: float | None = None) -> None:
        """Note that the server began to serve a version (the model service calls it at each swap)."""
        with self.db.connect() as db:
            db.execute(
                "INSERT INTO served (started_at, model_name, model_version, alias) VALUES (?, ?, ?, ?)",
                (time.time() if at is None else at, model_name, model_version, alias),
            )

    def history(self, limit: int = 20) -> list[dict[str, Any]]:
        """Each time a version began to serve, newest first, with its live figures from the log:
        predictions, answers, the share of answers that confirmed it, and review outcomes."""
        with self.db.connect() as db:
            rows = db.execute(
                "SELECT s.started_at, s.model_name, s.model_version, s.alias, "
                "LEAD(s.started_at) OVER (ORDER BY s.id) AS ended_at, "
                "(SELECT COUNT(*) FROM predictions p WHERE p.model_version = s.model_version "
                " AND p.model_name = s.model_name) AS predictions, "
                "(SELECT COUNT(*) FROM predictions p WHERE p.model_version = s.model_version "
                " AND p.model_name = s.model_name AND p.feedback_label IS NOT NULL) AS answers, "
                "(SELECT COUNT(*) FROM predictions p WHERE p.model_version = s.model_version "
                " AND p.model_name = s.model_name AND p.feedback_correct = 1) AS confirmed "
                "FROM served s ORDER BY s.id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        history = []
        for row in rows:
            item = dict(row)
            item["live_accuracy"] = item["confirmed"] / item["answers"] if item["answers"] else None
            history.append(item)
        return history

    def previous_versions(self, current: str) -> list[str]:
        """Versions this server served before ``current``, the most recent first (where a rollback may go)."""
        seen: list[str] = []
        for item in self.history(limit=200):
            version = item["model_version"]
            if version != current and version not in seen:
                seen.append(version)
        return seen

    def previous(self, current: str) -> str | None:
        """The version served before ``current``, if any."""
        return next(iter(self.previous_versions(current)), None)


class DriftLog:
    def __init__(self, db: FeedbackDatabase) -> None:
        self.db = db

    def record(self, model_name: str, model_version: str, window: dict[str, Any], report: dict[str, Any]) -> None:
        with self.db.connect() as db:
            db.execute(
                "INSERT OR IGNORE INTO drift_checks (checked_at, model_name, model_version, window_start, window_end, "
                "n_window, p_value, drift, report) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    time.time(), model_name, model_version, float(window["created_at"][0]),
                    float(window["created_at"][-1]), report["n_window"], report["p_value"], int(report["drift"]),
                    json.dumps(report),
                ),
            )  # fmt: skip

    def checks(self, limit: int = 200) -> list[dict[str, Any]]:
        """The newest checks, oldest first, each with its report."""
        with self.db.connect() as db:
            rows = db.execute("SELECT * FROM drift_checks ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [{**dict(row), "drift": bool(row["drift"]), "report": json.loads(row["report"])} for row in rows[::-1]]
