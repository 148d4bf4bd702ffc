"""The web app's database: created whole, upgraded from the last release, refused from before the
review queue (fsdl_webapp.feedback_db)."""

from __future__ import annotations

import sqlite3

import pytest

from fsdl_webapp.feedback_db import LATER_COLUMNS, SCHEMA, FeedbackDatabase, StoreError


def columns(path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[1] for row in db.execute("PRAGMA table_info(predictions)")}


def test_a_new_database_has_every_table_and_column(tmp_path):
    db = FeedbackDatabase(tmp_path / "state" / "feedback.db")
    db.init()
    db.init()  # twice: nothing changes
    assert {name for name, _ in LATER_COLUMNS} <= columns(db.path)
    with db.connect() as conn:
        tables = {row["name"] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"predictions", "served", "drift_checks", "decisions"} <= tables


def test_a_database_of_the_last_release_gains_the_new_columns_and_keeps_its_rows(tmp_path):
    """The last release's table had the review columns but none of LATER_COLUMNS."""
    path = tmp_path / "feedback.db"
    old = SCHEMA
    for name, kind in LATER_COLUMNS:
        old = "\n".join(line for line in old.splitlines() if not line.strip().startswith(f"{name} {kind}"))
    old = old.replace("teach REAL,", "teach REAL", 1)  # its last column then
    with sqlite3.connect(path) as conn:
        conn.executescript(old)
        conn.execute(
            "INSERT INTO predictions (id, created_at, expires_at, model_name, model_version, predicted_label, "
            "probabilities, image_sha256, image_ext, review_state) VALUES ('a', 1, 2, 'm', '1', 'sea', '{}', 'x', "
            "'jpg', 'pending')"
        )
    assert not {name for name, _ in LATER_COLUMNS} & columns(path)
    FeedbackDatabase(path).init()
    assert {name for name, _ in LATER_COLUMNS} <= columns(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT id, review_state, client FROM predictions").fetchall() == [("a", "pending", None)]


def test_a_database_from_before_the_review_queue_is_refused_saying_what_to_do(tmp_path):
    path = tmp_path / "feedback.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE predictions (id TEXT PRIMARY KEY, feedback_label TEXT)")
    with pytest.raises(StoreError, match="before the review queue existed"):
        FeedbackDatabase(path).init()
