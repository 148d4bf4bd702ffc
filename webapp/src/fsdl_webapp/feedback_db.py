"""The web app's one SQLite database (WAL), ``<state>/feedback.db``, and the errors of its records.

Three concerns keep their records in it, each in its own module: the prediction log
(:mod:`fsdl_webapp.prediction_log`), the review queue (:mod:`fsdl_webapp.review_queue`) and the
served history with the drift log (:mod:`fsdl_webapp.served_log`). They raise the domain errors
below; :mod:`fsdl_webapp.errors` alone says what each is over HTTP.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Final

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS predictions (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    predicted_label TEXT NOT NULL,
    probabilities TEXT NOT NULL,
    image_sha256 TEXT NOT NULL,
    image_ext TEXT NOT NULL,
    latency_ms REAL,
    upload_state TEXT NOT NULL DEFAULT 'pending',   -- pending | used | expired | unkept (the store failed)
    feedback_correct INTEGER,
    feedback_label TEXT,
    feedback_at REAL,
    feedback_path TEXT,
    review_state TEXT,              -- NULL (nothing to review) | pending | accepted | rejected | expired
    review_label TEXT,              -- the label that reaches training
    reviewed_by TEXT,
    reviewed_at REAL,
    exported_at REAL,               -- when the accepted label's file was written
    sampled INTEGER NOT NULL DEFAULT 0,  -- queued as a random sample of predictions
    teach REAL,                     -- how much the item would teach the model: 1 - p(claimed class)
    features BLOB,                  -- the image's backbone features, float16, for the drift checks
    client TEXT,                    -- pseudonym of the client that asked (fsdl_webapp.throttle.client_id)
    answer_client TEXT,             -- and of the one that answered
    shown_at REAL,                  -- when its image was first shown to a reviewer
    expired_reason TEXT             -- age | cap: why an answer waiting for review expired
);
CREATE INDEX IF NOT EXISTS predictions_created ON predictions (created_at);
CREATE INDEX IF NOT EXISTS predictions_pending ON predictions (upload_state, expires_at);
CREATE INDEX IF NOT EXISTS predictions_image ON predictions (image_sha256);
CREATE TABLE IF NOT EXISTS served (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at REAL NOT NULL,       -- when this server began to serve the version
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    alias TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS drift_checks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    checked_at REAL NOT NULL,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    window_start REAL NOT NULL,     -- the oldest prediction of the window
    window_end REAL NOT NULL,       -- the newest
    n_window INTEGER NOT NULL,
    p_value REAL NOT NULL,          -- of the MMD test on the features
    drift INTEGER NOT NULL,         -- p_value < alpha
    report TEXT NOT NULL            -- the whole fsdl_lib.drift.DriftReport, JSON
);
-- One check per window, however many workers check it.
CREATE UNIQUE INDEX IF NOT EXISTS drift_checks_window ON drift_checks (model_name, model_version, window_end);
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    prediction_id TEXT NOT NULL REFERENCES predictions (id),
    decided_at REAL NOT NULL,
    reviewer TEXT NOT NULL,
    action TEXT NOT NULL,           -- accept | reject | relabel
    label TEXT                      -- what reaches training; NULL when rejected
);
"""
INDEXES: Final = """
CREATE INDEX IF NOT EXISTS predictions_review ON predictions (review_state, teach);
CREATE INDEX IF NOT EXISTS predictions_answer_client ON predictions (answer_client, review_state);
"""
LATER_COLUMNS: Final = (
    ("features", "BLOB"),
    ("client", "TEXT"),
    ("answer_client", "TEXT"),
    ("shown_at", "REAL"),
    ("expired_reason", "TEXT"),
)
"""Columns added after the first release with the review queue (its database lacks them)."""


class StoreError(Exception):
    """A request the records refuse; ``message`` says why, in words for the client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownPredictionError(StoreError):
    """No prediction has that id."""


class PredictionGoneError(StoreError):
    """The prediction, or its upload, is no longer kept."""


class InvalidAnswerError(StoreError):
    """An answer or decision that contradicts itself or the prediction."""


class AnswerConflictError(StoreError):
    """The prediction already has another answer, or its review another decision."""


class TooManyWaitingError(StoreError):
    """The client already has its share of the review queue waiting."""

    retry_after = 3600


class UploadsUnavailableError(StoreError):
    """The store that keeps uploads does not answer: predictions go on, answers cannot be kept."""

    retry_after = 30


class FeedbackDatabase:
    def __init__(self, path: Path) -> None:
        self.path = path

    def init(self) -> None:
        """Create the tables, or add the columns later releases added; refuse a database written
        before the review queue existed (its answers were trusted without review: move it away)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            present = {row["name"] for row in db.execute("PRAGMA table_info(predictions)")}
            if present and "review_state" not in present:
                raise StoreError(
                    f"{self.path} was written before the review queue existed and cannot be used; move it "
                    "away (its answers' files are already in the feedback folder) and start again"
                )
            db.executescript(SCHEMA)
            for name, kind in LATER_COLUMNS:
                if present and name not in present:
                    db.execute(f"ALTER TABLE predictions ADD COLUMN {name} {kind}")
            db.executescript(INDEXES)

    @contextlib.contextmanager
    def connect(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """A connection; with ``durable=False`` its commits are not synced to disk (in WAL mode a
        crash of the machine may lose the last ones, never the database's consistency)."""
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        if not durable:
            db.execute("PRAGMA synchronous=NORMAL")
        try:
            yield db
        finally:
            db.close()
