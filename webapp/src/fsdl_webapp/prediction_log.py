"""The prediction log: every prediction the web app made, with its upload while it is kept.

Every prediction gets a row in the web app's database (:mod:`fsdl_webapp.feedback_db`); its upload
waits under ``uploads/`` until it is answered and decided (:mod:`fsdl_webapp.review_queue`), or
expires after ``WEBAPP_PREDICTION_TTL_SECONDS``. The row keeps the image's features (float16) for
the drift checks while they are recent, and a pseudonym of the client, never its address.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np

from fsdl_lib.atomic import atomic_write_bytes
from fsdl_webapp.feedback_db import FeedbackDatabase, PredictionGoneError, UnknownPredictionError

log = logging.getLogger(__name__)


class PredictionLog:
    def __init__(self, db: FeedbackDatabase, uploads: Path, ttl_seconds: float) -> None:
        self.db = db
        self.uploads = uploads
        self.ttl = ttl_seconds

    def init(self) -> None:
        self.uploads.mkdir(parents=True, exist_ok=True)

    def upload_path(self, prediction_id: str, ext: str) -> Path:
        return self.uploads / f"{prediction_id}.{ext}"

    def record(
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
        sampled: bool = False,
        features: np.ndarray | None = None,
        client: str | None = None,
    ) -> None:
        """Keep the upload and log the prediction (the file first: a row always has its image).

        ``sampled`` queues it for review without an answer (a prediction drawn at random). Its
        ``features`` are kept as float16 (4 KB for ResNet50) for the drift checks.
        Nothing is synced to disk on this, the request path, unless it is queued: most predictions
        are never answered. An answer makes its upload durable (:meth:`ReviewQueue.answer`).
        """
        now = time.time()
        path = self.upload_path(prediction_id, ext)
        atomic_write_bytes(path, image, durable=sampled)
        try:
            with self.db.connect(durable=sampled) as db:
                db.execute(
                    "INSERT INTO predictions (id, created_at, expires_at, model_name, model_version, "
                    "predicted_label, probabilities, image_sha256, image_ext, latency_ms, review_state, "
                    "sampled, teach, features, client) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        prediction_id, now, now + self.ttl, model_name, model_version, label,
                        json.dumps(probabilities), hashlib.sha256(image).hexdigest(), ext, latency_ms,
                        "pending" if sampled else None, int(sampled), 1.0 - probabilities.get(label, 0.0),
                        None if features is None else np.asarray(features, dtype=np.float16).tobytes(), client,
                    ),
                )  # fmt: skip
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    def row(self, prediction_id: str) -> sqlite3.Row:
        """Its row; :class:`UnknownPredictionError` when there is none."""
        with self.db.connect() as db:
            row = db.execute("SELECT * FROM predictions WHERE id = ?", (prediction_id,)).fetchone()
        if row is None:
            raise UnknownPredictionError(f"no prediction with id {prediction_id}")
        return row

    def upload_of(self, prediction_id: str, *, shown: bool = False) -> tuple[Path, str]:
        """The kept upload of a prediction and its extension (for the review page); ``shown`` notes
        that a reviewer is looking at it (only what was shown may be accepted)."""
        row = self.row(prediction_id)
        path = self.upload_path(prediction_id, row["image_ext"])
        if not path.exists():
            raise PredictionGoneError(f"the upload of prediction {prediction_id} is no longer kept")
        if shown and row["shown_at"] is None:
            with self.db.connect() as db:
                db.execute(
                    "UPDATE predictions SET shown_at = ? WHERE id = ? AND shown_at IS NULL",
                    (time.time(), prediction_id),
                )
        return path, row["image_ext"]

    def rows(self) -> list[dict[str, Any]]:
        """Every prediction, without its features (4 KB each: only the drift checks read them)."""
        with self.db.connect() as db:
            columns = [r["name"] for r in db.execute("PRAGMA table_info(predictions)") if r["name"] != "features"]
            return [dict(r) for r in db.execute(f"SELECT {', '.join(columns)} FROM predictions ORDER BY created_at")]

    def sampled_accuracy(self) -> dict[str, dict[str, int]]:
        """Per version, the randomly sampled predictions a reviewer decided, and how many were right."""
        with self.db.connect() as db:
            rows = db.execute(
                "SELECT model_version, COUNT(*) AS reviewed, SUM(review_label = predicted_label) AS correct, "
                "(SELECT COUNT(*) FROM predictions q WHERE q.sampled = 1 AND q.model_version = p.model_version) "
                "AS sampled FROM predictions p WHERE sampled = 1 AND review_state = 'accepted' GROUP BY model_version"
            ).fetchall()
        return {r["model_version"]: {"sampled": r["sampled"], "reviewed": r["reviewed"], "correct": r["correct"]}
                for r in rows}  # fmt: skip

    def features_window(self, model_name: str, model_version: str, limit: int) -> dict[str, Any]:
        """The newest ``limit`` predictions of a version that kept their features, oldest first."""
        with self.db.connect() as db:
            rows = db.execute(
                "SELECT created_at, predicted_label, probabilities, features FROM predictions "
                "WHERE model_name = ? AND model_version = ? AND features IS NOT NULL "
                "ORDER BY created_at DESC LIMIT ?",
                (model_name, model_version, limit),
            ).fetchall()[::-1]
        if not rows:
            return {
                "created_at": np.zeros(0),
                "features": np.zeros((0, 0), np.float16),
                "labels": [],
                "confidence": np.zeros(0),
            }
        return {
            "created_at": np.array([r["created_at"] for r in rows]),
            "features": np.stack([np.frombuffer(r["features"], dtype=np.float16) for r in rows]),
            "labels": [r["predicted_label"] for r in rows],
            "confidence": np.array([json.loads(r["probabilities"])[r["predicted_label"]] for r in rows]),
        }

    def prune_features(self, keep: int) -> int:
        """Drop the features of all but the newest ``keep`` predictions (4 KB each; only recent
        windows are checked); return how many were dropped."""
        with self.db.connect() as db:
            newest = db.execute(
                "SELECT created_at FROM predictions WHERE features IS NOT NULL ORDER BY created_at DESC "
                "LIMIT 1 OFFSET ?",
                (max(0, keep - 1),),
            ).fetchone()
            if newest is None:
                return 0
            return db.execute(
                "UPDATE predictions SET features = NULL WHERE features IS NOT NULL AND created_at < ?",
                (newest["created_at"],),
            ).rowcount

    def expire(self, now: float | None = None) -> int:
        """Remove uploads that got no answer in time (items waiting for review are kept)."""
        now = time.time() if now is None else now
        with self.db.connect() as db:
            rows = db.execute(
                "SELECT id, image_ext FROM predictions WHERE upload_state = 'pending' AND expires_at < ? "
                "AND review_state IS NULL",
                (now,),
            ).fetchall()
            for row in rows:
                self.upload_path(row["id"], row["image_ext"]).unlink(missing_ok=True)
                db.execute("UPDATE predictions SET upload_state = 'expired' WHERE id = ?", (row["id"],))
            kept = {r["id"] for r in db.execute("SELECT id FROM predictions WHERE upload_state = 'pending'")}
        orphans = 0
        for path in self.uploads.iterdir():
            # Left by a crash between writing an upload and logging it.
            if path.stem not in kept and path.stat().st_mtime < now - self.ttl:
                path.unlink(missing_ok=True)
                orphans += 1
        if rows or orphans:
            log.info("expired %d uploads that got no feedback, removed %d orphans", len(rows), orphans)
        return len(rows) + orphans
