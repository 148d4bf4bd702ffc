"""Live quality from the prediction log: predictions and answers over time, and two accuracies per
version (of the answers people chose to give, and of the predictions sampled at random for review)."""

from __future__ import annotations

from typing import Any

from fsdl_lib.classes import SCENE_CLASSES


def wilson_interval(correct: int, total: int, z: float = 1.96) -> tuple[float, float] | None:
    """The 95 % Wilson score interval of a proportion (sensible for small counts and 0 or 1)."""
    if total == 0:
        return None
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * ((p * (1 - p) / total + z * z / (4 * total * total)) ** 0.5) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def summarise(
    rows: list[dict[str, Any]], now: float, bucket_seconds: int, sampled: dict[str, dict[str, int]] | None = None
) -> dict[str, Any]:
    """Predictions and feedback over time, live accuracy per model version, corrections matrix.

    Two accuracies per version: of the answers users chose to give (biased: people answer more
    often when the model is wrong, or when asked because it was unsure) and of the predictions
    drawn at random for review (``sampled``: unbiased, with its 95 % interval, once reviewed).
    """
    sampled = sampled or {}
    buckets: dict[int, dict[str, int]] = {}
    versions: dict[str, dict[str, int]] = {}
    corrections = {p: dict.fromkeys(SCENE_CLASSES, 0) for p in SCENE_CLASSES}
    for row in rows:
        start = int(row["created_at"] // bucket_seconds * bucket_seconds)
        bucket = buckets.setdefault(start, {"predictions": 0, "feedback": 0})
        bucket["predictions"] += 1
        version = versions.setdefault(row["model_version"], {"predictions": 0, "feedback": 0, "correct": 0})
        version["predictions"] += 1
        if row["feedback_label"] is not None:
            bucket["feedback"] += 1
            version["feedback"] += 1
            version["correct"] += int(bool(row["feedback_correct"]))
            if not row["feedback_correct"]:
                corrections[row["predicted_label"]][row["feedback_label"]] += 1
    return {
        "generated_at": now,
        "bucket_seconds": bucket_seconds,
        "timeline": [{"start": start, **counts} for start, counts in sorted(buckets.items())],
        "versions": [
            {
                "model_version": version,
                **counts,
                "accuracy": counts["correct"] / counts["feedback"] if counts["feedback"] else None,
                **sampled_estimate(sampled.get(version)),
            }
            for version, counts in sorted(versions.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else 0)
        ],
        "corrections": [
            {"predicted": predicted, "corrected": corrected, "count": count}
            for predicted, row in corrections.items()
            for corrected, count in row.items()
            if count
        ],
    }


def sampled_estimate(counts: dict[str, int] | None) -> dict[str, Any]:
    counts = counts or {"sampled": 0, "reviewed": 0, "correct": 0}
    interval = wilson_interval(counts["correct"], counts["reviewed"])
    return {
        "sampled": counts["sampled"],
        "sampled_reviewed": counts["reviewed"],
        "sampled_correct": counts["correct"],
        "sampled_accuracy": counts["correct"] / counts["reviewed"] if counts["reviewed"] else None,
        "sampled_accuracy_interval": list(interval) if interval else None,
    }
