"""The prediction log: every prediction the web app made, with its upload while it is kept.

Every prediction gets a row in the web app's database (:mod:`fsdl_webapp.feedback_db`); its upload
waits in the uploads place (``WEBAPP_UPLOADS_URL``: a folder, or a prefix of the object store's
uploads bucket) until it is answered and decided (:mod:`fsdl_webapp.review_queue`), or expires after
``WEBAPP_PREDICTION_TTL_SECONDS``. The row keeps the image's features (float16) for the drift checks
while they are recent, and a pseudonym of the client, never its address.

A store that does not answer does not stop predictions: the prediction is made and logged with its
upload *unkept*, an answer about it is refused (:class:`UploadsUnavailableError`, a 503), and for
:data:`STORE_RETRY_SECONDS` the next uploads do not wait for the store either.
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

from fsdl_lib import storage
from fsdl_lib.exceptions import StorageError
from fsdl_webapp.feedback_db import (
    FeedbackDatabase,
    PredictionGoneError,
    UnknownPredictionError,
    UploadsUnavailableError,
)

log = logging.getLogger(__name__)

STORE_RETRY_SECONDS = 15.0
"""After the store failed an upload, how long the next ones are not even tried (each would wait
for the store's timeouts on the request path)."""


class PredictionLog:
    def __init__(self, db: FeedbackDatabase, uploads: Path, ttl_seconds: float) -> None:
        self.db = db
        self.uploads = uploads
        self.ttl = ttl_seconds
        self._store_down_until = 0.0

    def init(self) -> None:
        storage.makedirs(self.uploads)

    def upload_path(self, prediction_id: str, ext: str) -> Path:
        return self.uploads / f"{prediction_id}.{ext}"

    def store_unavailable(self, exc: StorageError) -> UploadsUnavailableError:
        """Note that the store failed (the details go to the log) and say so to the client."""
        self._store_down_until = time.monotonic() + STORE_RETRY_SECONDS
        log.error("uploads cannot be kept: %s", exc)
        return UploadsUnavailableError(
            "uploads cannot be kept right now: the object store that keeps them does not answer (its operator "
            "checks FSDL_S3_ENDPOINT_URL; the details are in the web app's log); try again later"
        )

    def _keep(self, path: Path, image: bytes, *, durable: bool) -> bool:
        """Write the upload; False when the store does not answer (or failed moments ago)."""
        if time.monotonic() < self._store_down_until:
            return False
        try:
            storage.write_bytes(path, image, durable=durable)
        except StorageError as exc:
            self.store_unavailable(exc)
            return False
        return True

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
    ) -> bool:
        """Keep the upload and log the prediction (the file first: a row always has its image, or
        says it has none); return whether the upload is kept.

        ``sampled`` queues it for review without an answer (a prediction drawn at random). Its
        ``features`` are kept as float16 (4 KB for ResNet50) for the drift checks.
        Nothing is synced to disk on this, the request path, unless it is queued: most predictions
        are never answered. An answer makes its upload durable (:meth:`ReviewQueue.answer`). A store
        that does not answer leaves the upload unkept (and the prediction out of review).
        """
        now = time.time()
        path = self.upload_path(prediction_id, ext)
        kept = self._keep(path, image, durable=sampled)
        sampled = sampled and kept
        try:
            with self.db.connect(durable=sampled) as db:
                db.execute(
                    "INSERT INTO predictions (id, created_at, expires_at, model_name, model_version, "
                    "predicted_label, probabilities, image_sha256, image_ext, latency_ms, review_state, "
                    "sampled, teach, features, client, upload_state) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        prediction_id, now, now + self.ttl, model_name, model_version, label,
                        json.dumps(probabilities), hashlib.sha256(image).hexdigest(), ext, latency_ms,
                        "pending" if sampled else None, int(sampled), 1.0 - probabilities.get(label, 0.0),
                        None if features is None else np.asarray(features, dtype=np.float16).tobytes(), client,
                        "pending" if kept else "unkept",
                    ),
                )  # fmt: skip
        except BaseException:
            if kept:
                self.remove_upload(path)
            raise
        return kept

    def remove_upload(self, path: Path) -> None:
        """Remove an upload; a store that fails is logged (what is left the orphan sweep removes)."""
        try:
            storage.delete(path)
        except StorageError as exc:
            log.warning("an upload could not be removed now: %s", exc)

    def row(self, prediction_id: str) -> sqlite3.Row:
        """Its row; :class:`UnknownPredictionError` when there is none."""
        with self.db.connect() as db:
            row = db.execute("SELECT * FROM predictions WHERE id = ?", (prediction_id,)).fetchone()
        if row is None:
            raise UnknownPredictionError(f"no prediction with id {prediction_id}")
        return row

    def upload_of(self, prediction_id: str, *, shown: bool = False) -> tuple[bytes, str]:
        """The kept upload of a prediction and its extension (for the review page); ``shown`` notes
        that a reviewer is looking at it (only what was shown may be accepted)."""
        row = self.row(prediction_id)
        try:
            image = storage.read_bytes(self.upload_path(prediction_id, row["image_ext"]))
        except FileNotFoundError:
            raise PredictionGoneError(f"the upload of prediction {prediction_id} is no longer kept") from None
        except StorageError as exc:
            raise self.store_unavailable(exc) from None
        if shown and row["shown_at"] is None:
            with self.db.connect() as db:
                db.execute(
                    "UPDATE predictions SET shown_at = ? WHERE id = ? AND shown_at IS NULL",
                    (time.time(), prediction_id),
                )
        return image, row["image_ext"]

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
                self.remove_upload(self.upload_path(row["id"], row["image_ext"]))
                db.execute("UPDATE predictions SET upload_state = 'expired' WHERE id = ?", (row["id"],))
            kept = {r["id"] for r in db.execute("SELECT id FROM predictions WHERE upload_state = 'pending'")}
        orphans = 0
        try:
            listing = storage.files(self.uploads)
        except StorageError as exc:
            log.warning("the uploads could not be listed for expired ones: %s", exc)
            listing = {}
        for name, stored in listing.items():
            # Left by a crash between writing an upload and logging it, or a removal the store failed.
            if "/" not in name and name.split(".")[0] not in kept and stored.modified < now - self.ttl:
                self.remove_upload(self.uploads / name)
                orphans += 1
        if rows or orphans:
            log.info("expired %d uploads that got no feedback, removed %d orphans", len(rows), orphans)
        return len(rows) + orphans
