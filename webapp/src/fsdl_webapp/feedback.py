"""Predictions awaiting feedback, and the durable feedback log (SQLite, WAL).

Every prediction gets an id and a row; its upload waits under ``uploads/`` until feedback arrives
or it expires. Feedback writes the image atomically to ``<feedback>/<class>/<sha256>.<ext>`` first
and records it in the log second, so a crash in between leaves a file that the retry (the same id,
the same answer) finds in place: nothing is lost and nothing is written twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsdl_lib._atomic import atomic_write_bytes
from fsdl_webapp.errors import ApiError, ConflictError, GoneError, NotFoundError

log = logging.getLogger(__name__)

SCHEMA = """
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
    upload_state TEXT NOT NULL DEFAULT 'pending',   -- pending | used | expired
    feedback_correct INTEGER,
    feedback_label TEXT,
    feedback_at REAL,
    feedback_path TEXT
);
CREATE INDEX IF NOT EXISTS predictions_created ON predictions (created_at);
CREATE INDEX IF NOT EXISTS predictions_pending ON predictions (upload_state, expires_at);
"""


@dataclass(frozen=True)
class FeedbackResult:
    prediction_id: str
    label: str
    correct: bool
    path: str
    repeated: bool
    model_version: str


class FeedbackStore:
    def __init__(self, state_dir: Path, feedback_dir: Path, ttl_seconds: float) -> None:
        self.db_path = state_dir / "feedback.db"
        self.uploads = state_dir / "uploads"
        self.feedback_dir = feedback_dir
        self.ttl = ttl_seconds

    def init(self) -> None:
        self.uploads.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            yield db
        finally:
            db.close()

    def upload_path(self, prediction_id: str, ext: str) -> Path:
        return self.uploads / f"{prediction_id}.{ext}"

    def record_prediction(
        self,
        prediction_id: str,
        image: bytes,
        ext: str,
        *,
        model_name: str,
        model_version: str,
        label: str,
        probabilities: dict[str, float],
        latency_ms: float,
    ) -> None:
        """Keep the upload and log the prediction (the file first: a row always has its image)."""
        now = time.time()
        path = self.upload_path(prediction_id, ext)
        atomic_write_bytes(path, image)
        try:
            with self._connect() as db:
                db.execute(
                    "INSERT INTO predictions (id, created_at, expires_at, model_name, model_version, "
                    "predicted_label, probabilities, image_sha256, image_ext, latency_ms) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        prediction_id, now, now + self.ttl, model_name, model_version, label,
                        json.dumps(probabilities), hashlib.sha256(image).hexdigest(), ext, latency_ms,
                    ),
                )  # fmt: skip
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    def give_feedback(self, prediction_id: str, correct: bool, label: str) -> FeedbackResult:
        """Store the labelled image and log the answer; a retry of the same answer is a no-op."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM predictions WHERE id = ?", (prediction_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no prediction with id {prediction_id}")
        if row["feedback_label"] is not None:
            if (bool(row["feedback_correct"]), row["feedback_label"]) == (correct, label):
                return FeedbackResult(
                    prediction_id,
                    label,
                    correct,
                    row["feedback_path"],
                    repeated=True,
                    model_version=row["model_version"],
                )
            raise ConflictError(
                f"prediction {prediction_id} already has feedback "
                f"(correct={bool(row['feedback_correct'])}, label={row['feedback_label']})"
            )
        if row["upload_state"] != "pending" or row["expires_at"] < time.time():
            raise GoneError(f"prediction {prediction_id} has expired; classify the image again")
        if correct and label != row["predicted_label"]:
            raise ApiError(f"correct=true but label {label!r} differs from the prediction {row['predicted_label']!r}")
        if not correct and label == row["predicted_label"]:
            raise ApiError(f"correct=false but label {label!r} is what the model predicted")

        upload = self.upload_path(prediction_id, row["image_ext"])
        relative = f"{label}/{row['image_sha256']}.{row['image_ext']}"
        target = self.feedback_dir / relative
        created = False
        if not target.exists():
            try:
                data = upload.read_bytes()
            except FileNotFoundError:
                raise GoneError(f"the upload of prediction {prediction_id} is gone; classify it again") from None
            atomic_write_bytes(target, data)
            created = True
        try:
            with self._connect() as db:
                db.execute("BEGIN IMMEDIATE")
                current = db.execute(
                    "SELECT feedback_label, feedback_correct FROM predictions WHERE id = ?", (prediction_id,)
                ).fetchone()
                if current["feedback_label"] is not None:  # a concurrent retry won the race
                    db.execute("ROLLBACK")
                    return self.give_feedback(prediction_id, correct, label)
                db.execute(
                    "UPDATE predictions SET feedback_correct = ?, feedback_label = ?, feedback_at = ?, "
                    "feedback_path = ?, upload_state = 'used' WHERE id = ?",
                    (int(correct), label, time.time(), relative, prediction_id),
                )
                db.execute("COMMIT")
        except BaseException:
            if created:  # the log does not say so: the labelled file must not reach training either
                target.unlink(missing_ok=True)
            raise
        upload.unlink(missing_ok=True)
        log.info("feedback for %s: %s (%s)", prediction_id, label, "confirmed" if correct else "corrected")
        return FeedbackResult(
            prediction_id, label, correct, relative, repeated=False, model_version=row["model_version"]
        )

    def expire(self, now: float | None = None) -> int:
        """Remove uploads whose feedback never came; their log rows stay (marked expired)."""
        now = time.time() if now is None else now
        with self._connect() as db:
            rows = db.execute(
                "SELECT id, image_ext FROM predictions WHERE upload_state = 'pending' AND expires_at < ?", (now,)
            ).fetchall()
            for row in rows:
                self.upload_path(row["id"], row["image_ext"]).unlink(missing_ok=True)
                db.execute("UPDATE predictions SET upload_state = 'expired' WHERE id = ?", (row["id"],))
            pending = {r["id"] for r in db.execute("SELECT id FROM predictions WHERE upload_state = 'pending'")}
        orphans = 0
        for path in self.uploads.iterdir():
            # Left by a crash between writing an upload and logging it.
            if path.stem not in pending and path.stat().st_mtime < now - self.ttl:
                path.unlink(missing_ok=True)
                orphans += 1
        if rows or orphans:
            log.info("expired %d uploads that got no feedback, removed %d orphans", len(rows), orphans)
        return len(rows) + orphans

    def rows(self) -> list[dict[str, Any]]:
        with self._connect() as db:
            return [dict(r) for r in db.execute("SELECT * FROM predictions ORDER BY created_at")]
