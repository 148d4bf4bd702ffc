"""The drift monitor of the web app: real predictions, a real registry, real photos."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageEnhance, ImageFilter
from prometheus_client.parser import text_string_to_metric_families

from tests.webapp.conftest import make_app


def dusk(data: bytes) -> bytes:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    image = ImageEnhance.Brightness(image).enhance(0.45)
    image = ImageEnhance.Contrast(image).enhance(0.6).filter(ImageFilter.GaussianBlur(2))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture
def held_out(registry) -> list[bytes]:
    """The sample's test split: photos the served model and its reference never saw."""
    return [p.read_bytes() for p in sorted((registry.root / "test").glob("*/*.jpg"))]


def predict_all(client, photos):
    for photo in photos:
        assert client.post("/api/v1/predict", data={"image": (io.BytesIO(photo), "p.jpg")}).status_code == 200


def gauges(client) -> dict:
    text = client.get("/metrics").get_data(as_text=True)
    return {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples}


def test_unshifted_window_passes_and_photos_in_poor_light_are_flagged(tmp_path, extractor, production_model, held_out):
    window = len(held_out)
    app = make_app(tmp_path, production_model, drift_window=window, drift_min_window=window,
                   drift_persist_checks=2)  # fmt: skip
    client, monitor = app.test_client(), app.extensions["fsdl_drift"]
    predict_all(client, held_out[:10])
    assert monitor.check() is None
    assert f"the check needs {window}" in client.get("/api/v1/drift").json["status"]
    assert "fsdl_drift_p_value" not in gauges(client)

    predict_all(client, held_out[10:])
    calm = monitor.check()
    assert calm["n_window"] == window
    assert not calm["drift"], calm
    assert monitor.check() is None  # the same window is not checked twice
    records = app.extensions["fsdl_records"]
    window_now = records.predictions.features_window(production_model, "1", window)
    records.drift.record(production_model, "1", window_now, calm)  # a second worker checked it too
    assert len(records.drift.checks()) == 1
    assert client.get("/api/v1/drift").json["status"] == "no new predictions since the last check"

    predict_all(client, [dusk(photo) for photo in held_out])
    shifted = monitor.check()
    assert shifted["drift"], shifted
    assert shifted["p_value"] < calm["p_value"]

    body = client.get("/api/v1/drift").json
    assert [c["drift"] for c in body["checks"]] == [False, True]
    assert body["persistent"] is False  # two checks must flag in a row
    assert body["settings"]["alpha"] == 0.01
    values = gauges(client)
    assert values["fsdl_drift_detected"] == 1
    assert values["fsdl_drift_p_value"] == pytest.approx(shifted["p_value"])
    assert values["fsdl_drift_window_predictions"] == window
    assert values["fsdl_model_served"] == 1


def test_a_version_without_reference_says_why(tmp_path, extractor, registry, mlflow_server):
    import uuid

    import mlflow

    from fsdl_lib.candidates import CANDIDATES, build_pipeline, fit
    from fsdl_lib.tracking import log_sklearn_model, register_version

    name = f"scenes-noref-{uuid.uuid4().hex[:8]}"
    model = build_pipeline(CANDIDATES["logreg_c1"])
    fit(model, registry.train.features, registry.train.labels)
    with mlflow.start_run() as run:  # trained before drift monitoring existed: no reference logged
        log_sklearn_model(model, registry.train.features[:2])
    register_version(f"runs:/{run.info.run_id}/model", name, aliases=["production"],
                     tags={"backbone_id": registry.backbone_id})  # fmt: skip
    app = make_app(tmp_path, name)
    assert app.extensions["fsdl_drift"].check() is None
    assert "has no drift reference" in app.test_client().get("/api/v1/drift").json["status"]


def test_only_the_newest_features_are_kept(tmp_path, extractor, production_model, held_out):
    app = make_app(tmp_path, production_model)
    client, predictions = app.test_client(), app.extensions["fsdl_records"].predictions
    predict_all(client, held_out[:12])
    assert predictions.prune_features(keep=5) == 7
    assert predictions.prune_features(keep=5) == 0
    window = predictions.features_window(app.extensions["fsdl_model"].current.name, "1", limit=100)
    assert len(window["labels"]) == 5
    assert window["features"].shape == (5, 2048)
    assert len(predictions.rows()) == 12  # the predictions themselves stay
