"""Drift checks on real photos: the sample's features, shifted and not."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import ImageEnhance, ImageFilter

from fsdl_lib import drift
from fsdl_lib.classes import SCENE_CLASSES
from fsdl_lib.images import load_image
from tests.conftest import SAMPLE_DIR

ALPHA = 0.05
SPLITS = 40
MAX_FALSE_ALARMS = 6
"""At alpha 0.05, 40 unshifted splits flag 2 on average; more than 6 has probability 1.3 %."""


def _dusk(image):
    """Darker, hazier, blurred: the same scenes photographed in poor light."""
    image = ImageEnhance.Brightness(image).enhance(0.45)
    image = ImageEnhance.Contrast(image).enhance(0.6)
    return image.filter(ImageFilter.GaussianBlur(2))


@pytest.fixture(scope="module")
def photos(small_extractor):
    paths = sorted(SAMPLE_DIR.glob("*/*.jpg"))
    images = [load_image(p) for p in paths]
    labels = np.array([p.parent.name for p in paths])
    return {
        "labels": labels,
        "features": small_extractor.extract(images),
        "dusk": small_extractor.extract([_dusk(image) for image in images]),
    }


def halves(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stratified split in two halves: half of each class on each side."""
    rng = np.random.default_rng(seed)
    first, second = [], []
    for label in SCENE_CLASSES:
        rows = rng.permutation(np.flatnonzero(labels == label))
        first.extend(rows[: len(rows) // 2])
        second.extend(rows[len(rows) // 2 :])
    return np.array(first), np.array(second)


def test_unshifted_windows_raise_false_alarms_at_about_alpha(photos):
    p_values = []
    for seed in range(SPLITS):
        ref, window = halves(photos["labels"], seed)
        p_values.append(drift.mmd_test(photos["features"][ref], photos["features"][window], seed=seed).p_value)
    false_alarms = sum(p < ALPHA for p in p_values)
    assert false_alarms <= MAX_FALSE_ALARMS, sorted(p_values)
    assert np.median(p_values) > 0.2  # p-values spread over (0, 1], not piled up near the threshold


def test_photos_in_poor_light_are_flagged(photos):
    for seed in range(5):
        ref, window = halves(photos["labels"], seed)
        result = drift.mmd_test(photos["features"][ref], photos["dusk"][window], seed=seed)
        assert result.p_value < 0.01, (seed, result)
        unshifted = drift.mmd_test(photos["features"][ref], photos["features"][window], seed=seed)
        assert result.statistic > 5 * max(unshifted.statistic, 1e-9)


@pytest.mark.parametrize("label", SCENE_CLASSES)
def test_a_window_of_one_class_is_flagged_by_the_class_test(photos, label):
    # With the tests' random weights the embedding says little about the class, so ten photos of
    # one class are not always told apart by their features; what the model predicts for them is.
    labels = photos["labels"]
    ref, window = halves(labels, 0)
    reference = drift.Reference.build(photos["features"][ref], labels[ref], np.full(60, 0.9), size=60)
    one_class = window[labels[window] == label]
    report = drift.check_window(reference, photos["features"][one_class], list(labels[one_class]), np.full(10, 0.9))
    assert report.classes["p_value"] < 1e-4
    assert report.classes["counts"][label] == 10


def test_p_value_is_bounded_by_the_permutations(photos):
    ref, window = halves(photos["labels"], 1)
    result = drift.mmd_test(photos["features"][ref], photos["dusk"][window], permutations=99)
    assert result.p_value == pytest.approx(1 / 100)  # nothing beats the observed split: 1/(P+1), never 0


def test_reference_round_trips_and_refuses_pickles(photos, tmp_path):
    labels = photos["labels"]
    reference = drift.Reference.build(photos["features"], labels, np.full(10, 0.8), size=50)
    assert reference.features.shape == (50, photos["features"].shape[1])
    assert reference.features.dtype == np.float16
    assert reference.class_counts.tolist() == [int((labels == c).sum()) for c in SCENE_CLASSES]
    again = drift.Reference.from_bytes(reference.to_bytes())
    np.testing.assert_array_equal(again.features, reference.features)
    np.testing.assert_array_equal(again.class_counts, reference.class_counts)

    path = tmp_path / "pickled.npz"
    np.savez(path, features=np.array([object()], dtype=object), class_counts=np.zeros(6), confidence=np.zeros(1),
             classes=np.array(SCENE_CLASSES))  # fmt: skip
    with pytest.raises(drift.DriftInputError, match="not a drift reference"):
        drift.Reference.from_bytes(path.read_bytes())
    with pytest.raises(drift.DriftInputError):
        drift.Reference.from_bytes(b"not an npz")


def test_check_window_reports_all_three_checks(photos):
    labels = photos["labels"]
    ref, window = halves(labels, 2)
    reference = drift.Reference.build(photos["features"][ref], labels[ref], np.full(60, 0.9), size=60)
    # The window predicted "forest" for everything, with low confidence: both secondary tests fire.
    report = drift.check_window(reference, photos["dusk"][window], ["forest"] * len(window), np.full(len(window), 0.3))
    assert report.drift
    assert report.p_value < 0.01
    assert report.classes["p_value"] < 1e-6
    assert report.classes["total_variation"] == pytest.approx(5 / 6, abs=0.01)
    assert report.confidence["p_value"] < 1e-6
    assert sum(report.confidence["histogram"]) == len(window)
    calm = drift.check_window(reference, photos["features"][window], list(labels[window]), np.full(len(window), 0.9))
    assert not calm.drift
    assert calm.classes["p_value"] > 0.5


@pytest.mark.parametrize(
    ("reference", "window", "message"),
    [
        (np.zeros((5, 3)), np.zeros((5, 4)), "same width"),
        (np.zeros((1, 3)), np.zeros((5, 3)), "at least two"),
        (np.zeros((5, 3)), np.full((5, 3), np.nan), "NaN"),
    ],
)
def test_untestable_inputs_are_refused_with_a_reason(reference, window, message):
    with pytest.raises(drift.DriftInputError, match=message):
        drift.mmd_test(reference, window)


def test_statistic_matches_the_textbook_formula():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(7, 4)), rng.normal(0.5, 1.0, size=(9, 4))
    result = drift.mmd_test(x, y, permutations=10)
    gamma = 1.0 / result.bandwidth**2

    def k(a, b):
        return np.exp(-gamma * ((a - b) ** 2).sum())

    xx = sum(k(a, b) for i, a in enumerate(x) for j, b in enumerate(x) if i != j) / (7 * 6)
    yy = sum(k(a, b) for i, a in enumerate(y) for j, b in enumerate(y) if i != j) / (9 * 8)
    xy = sum(k(a, b) for a in x for b in y) / (7 * 9)
    assert result.statistic == pytest.approx(xx + yy - 2 * xy, rel=1e-9)


def status(*flags: bool, persistent: bool, version: str = "4") -> drift.DriftStatus:
    checks = [{"model_version": version, "p_value": 0.002 if f else 0.4, "n_window": 200, "drift": f} for f in flags]
    settings = drift.DriftSettings(interval_seconds=300, window=200, min_window=50, alpha=0.01, persist_checks=3)
    return drift.DriftStatus(settings, "checked", version, persistent, checks)


@pytest.mark.parametrize(
    ("given", "enabled", "retrain", "reason"),
    [
        (status(True, True, True, persistent=True), True, True, "drift persists for version 4 (p = 0.0020, 0.0020"),
        (status(True, True, True, persistent=True), False, False, "FSDL_RETRAIN_ON_DRIFT is off"),
        (status(False, True, persistent=False), True, False, "the newest check of version 4 has p"),
        (status(persistent=False), True, False, "no drift check of the served version yet"),
    ],
    ids=["persistent", "persistent-but-off", "one-flag-only", "no-check"],
)
def test_only_persistent_drift_retrains_and_only_when_enabled(given, enabled, retrain, reason):
    decision = drift.retrain_decision(given, enabled=enabled)
    assert decision.retrain is retrain
    assert reason in decision.reason
    assert decision.model_version == "4"


def test_a_status_goes_through_its_file_unchanged_and_a_bad_one_is_refused(tmp_path):
    given = status(True, False, persistent=False)
    path = tmp_path / "drift" / "scenes.json"
    drift.write_status(path, given)
    read = drift.read_status(path)
    assert read.written_at is not None
    assert dataclasses.replace(read, written_at=None) == given
    path.write_text('{"status": "checked"}')
    with pytest.raises(drift.DriftInputError, match="not a drift status the web app writes"):
        drift.read_status(path)
    with pytest.raises(drift.DriftInputError, match="no drift status at"):
        drift.read_status(tmp_path / "nowhere.json")
