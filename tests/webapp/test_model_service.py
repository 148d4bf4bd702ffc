"""The served model (fsdl_webapp.model_service) against a real registry: which versions it refuses
and why, the old version serving on, and promotions picked up while it runs."""

import uuid

import pytest
from mlflow import MlflowClient

from fsdl_tools.clients import wait_until
from tests.conftest import SAMPLE_DIR
from tests.webapp.conftest import make_app


def test_model_of_another_backbone_is_refused_with_a_clear_message(tmp_path, extractor, registry):
    name = f"other-backbone-{uuid.uuid4().hex[:6]}"
    registry.register(name, backbone="resnet50:IMAGENET1K_V2:resize224")
    app = make_app(tmp_path, extractor, name)
    service = app.extensions["fsdl_model"]
    assert service.current is None
    assert "trained on features of backbone 'resnet50:IMAGENET1K_V2:resize224'" in service.last_error
    assert extractor.id in service.last_error


def test_a_bad_new_version_keeps_the_old_one_serving(tmp_path, extractor, registry):
    name = f"keep-old-{uuid.uuid4().hex[:6]}"
    registry.register(name)
    app = make_app(tmp_path, extractor, name)
    service = app.extensions["fsdl_model"]
    assert service.current.version == "1"
    registry.register(name, backbone="resnet50:random-seed9:resize64")  # v2, production
    assert service.refresh() is False
    assert service.current.version == "1"
    assert "version 2" in service.last_error
    model = app.test_client().get("/api/v1/model").json
    assert model["version"] == "1"
    assert "version 2" in model["last_error"]


@pytest.mark.slow
def test_promotion_is_served_within_the_poll_interval_without_restart(tmp_path, extractor, registry):
    name = f"hot-reload-{uuid.uuid4().hex[:6]}"
    registry.register(name)
    app = make_app(tmp_path, extractor, name, start_polling=True, poll_seconds=1)
    client = app.test_client()
    try:
        wait_until(  # the first load runs in the background
            lambda: client.get("/api/v1/model").status_code == 200, 30, "the first version loaded", interval=0.1,
            describe=lambda: str(client.get("/readyz").json),
        )  # fmt: skip
        assert client.get("/api/v1/model").json["version"] == "1"
        registry.register(name, "knn_7", aliases=())
        MlflowClient().set_registered_model_alias(name, "production", "2")
        wait_until(  # the poll interval (1 s), and the load
            lambda: client.get("/api/v1/model").json["version"] == "2", 1 + 5, "version 2 served", interval=0.1
        )
        photo = (SAMPLE_DIR / "sea" / sorted(p.name for p in (SAMPLE_DIR / "sea").iterdir())[0]).read_bytes()
        import io

        body = client.post("/api/v1/predict", data={"image": (io.BytesIO(photo), "sea.jpg")}).json
        assert body["model"]["version"] == "2"
    finally:
        app.extensions["fsdl_model"].stop()


def test_the_model_page_lists_which_version_served_when_with_its_figures(tmp_path, extractor, registry):
    import io

    name = f"history-{uuid.uuid4().hex[:6]}"
    registry.register(name)
    app = make_app(tmp_path, extractor, name)
    client = app.test_client()
    photo = sorted((SAMPLE_DIR / "forest").glob("*.jpg"))[0].read_bytes()
    body = client.post("/api/v1/predict", data={"image": (io.BytesIO(photo), "f.jpg")}).json
    answer = {"prediction_id": body["prediction_id"], "correct": True, "label": body["label"]}
    assert client.post("/api/v1/feedback", json=answer).status_code == 200
    registry.register(name, "knn_7")  # version 2 becomes production
    assert app.extensions["fsdl_model"].refresh() is True

    history = app.extensions["fsdl_records"].served.history()
    assert [h["model_version"] for h in history] == ["2", "1"]
    newest, older = history
    assert older["ended_at"] == newest["started_at"]
    assert newest["ended_at"] is None
    assert (older["predictions"], older["answers"], older["live_accuracy"]) == (1, 1, 1.0)
    assert (newest["predictions"], newest["answers"], newest["live_accuracy"]) == (0, 0, None)

    page = client.get("/model").get_data(as_text=True)
    table = page[page.index('id="served-history"') :]
    assert table.index("/versions/2") < table.index("/versions/1")  # newest first, linked into MLflow
    assert "knn_7" in table
    assert "logreg_c1" in table
    assert f'datetime="{_iso(newest["started_at"])}"' in table  # shown in the reader's time zone by the page


def _iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
