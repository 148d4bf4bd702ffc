"""The served model (fsdl_webapp.model_service) against a real registry: which versions it refuses
and why, the old version serving on, promotions picked up while it runs, and a registry that is down
when the web app starts.

A version whose loading could run code is refused: nothing runs, the old version keeps serving. Those
hostile versions are registered through MLflow's REST API alone, as anyone who can reach the tracking
server could; the library's loader (which the DAGs and the promotion guard use) refuses them the same
way.
"""

from __future__ import annotations

import os
import pickle
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
import skops.io
import yaml
from mlflow import MlflowClient
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from fsdl_lib import tracking
from fsdl_lib.dataset import file_sha256
from fsdl_lib.exceptions import UnsafeModelError
from fsdl_lib.tracking import load_sklearn_model
from fsdl_tools.clients import wait_until
from fsdl_webapp import model_service
from tests.conftest import (
    KDTREE_TYPES,
    SAMPLE_DIR,
    WebappServer,
    crashing_knn,
    free_port,
    mlflow_admin,
    start_mlflow_server,
    stop_process_group,
    wait_for_http,
)
from tests.webapp.conftest import make_app, predict

SEA = (SAMPLE_DIR / "sea" / "10344.jpg").read_bytes()


def test_model_of_another_backbone_is_refused_with_a_clear_message(tmp_path, registry):
    name = f"other-backbone-{uuid.uuid4().hex[:6]}"
    registry.register(name, backbone="resnet50:IMAGENET1K_V2:resize224")  # but the graph it records is another's
    app = make_app(tmp_path, name)
    service = app.extensions["fsdl_model"]
    assert service.current is None
    assert "trained on features of 'resnet50:IMAGENET1K_V2:resize224'" in service.last_error
    assert f"computes features of backbone {registry.backbone_id!r}" in service.last_error


def test_the_served_graph_is_the_one_the_version_recorded(tmp_path, registry, production_model):
    """Serving runs the graph training published, fetched once into the state folder by its sha256;
    a damaged copy there is fetched again at the next start."""
    app = make_app(tmp_path, production_model, graph_dir="")  # the default: graphs/ of the state folder
    served = app.extensions["fsdl_model"].current
    assert served.extractor.sha256 == registry.graph.sha256
    assert served.extractor.id == registry.backbone_id
    cached = tmp_path / "webapp" / "graphs" / f"{registry.graph.sha256}.onnx"
    assert file_sha256(cached) == registry.graph.sha256
    cached.write_bytes(b"damaged")
    again = make_app(tmp_path, production_model, graph_dir="")  # a restart on the same state folder
    assert again.extensions["fsdl_model"].current.extractor.sha256 == registry.graph.sha256
    assert file_sha256(cached) == registry.graph.sha256
    assert again.test_client().get("/api/v1/model").json["graph_sha256"] == registry.graph.sha256
    assert predict(again.test_client(), SEA)["label"]


def test_a_version_whose_graph_is_not_the_one_it_recorded_is_refused_and_the_old_one_serves(tmp_path, registry):
    name = f"wrong-graph-{uuid.uuid4().hex[:6]}"
    registry.register(name)
    app = make_app(tmp_path, name, graph_dir="")
    service = app.extensions["fsdl_model"]
    assert service.current.version == "1"
    registry.register(name, graph_tags={**registry.graph.tags, "backbone_graph_sha256": "0" * 64})  # v2
    assert service.refresh() is False
    assert service.current.version == "1"
    assert "version 2" in service.last_error
    assert f"has sha256 {registry.graph.sha256[:12]}, not 000000000000 as the model recorded" in service.last_error
    assert [p.name for p in (tmp_path / "webapp" / "graphs").iterdir()] == [f"{registry.graph.sha256}.onnx"]
    assert service.refresh() is False  # refused for good: not fetched again at every check
    assert predict(app.test_client(), SEA)["model"]["version"] == "1"


def test_a_version_trained_before_graphs_were_recorded_serves_with_its_backbones_graph(tmp_path, registry):
    name = f"no-graph-tags-{uuid.uuid4().hex[:6]}"
    registry.register(name, graph_tags={})
    service = make_app(tmp_path, name).extensions["fsdl_model"]
    assert service.current.version == "1"
    assert service.current.extractor.id == registry.backbone_id


def test_a_version_whose_backbone_has_no_published_graph_says_so_and_is_tried_again(tmp_path, registry, monkeypatch):
    published = model_service.published_graph
    name = f"unpublished-{uuid.uuid4().hex[:6]}"
    backbone = f"resnet50:random-seed{uuid.uuid4().int % 10**6}:resize64"
    registry.register(name, backbone=backbone, graph_tags={})
    service = make_app(tmp_path, name).extensions["fsdl_model"]
    assert service.current is None
    assert f"no graph of its backbone {backbone} is published in MLflow" in service.last_error
    # A DAG run may publish it: tried again, but not at every check (a fetch moves about 100 MB).
    looked: list[str] = []
    monkeypatch.setattr(model_service, "published_graph", lambda tags: looked.append(tags) or published(tags))
    assert service.refresh() is False
    assert looked == []
    monkeypatch.setattr(model_service, "GRAPH_RETRY_SECONDS", 0.0)
    service._waiting = None  # the wait is over
    assert service.refresh() is False
    assert len(looked) == 1
    assert f"no graph of its backbone {backbone} is published in MLflow" in service.last_error


def test_a_bad_new_version_keeps_the_old_one_serving(tmp_path, extractor, registry):
    name = f"keep-old-{uuid.uuid4().hex[:6]}"
    registry.register(name)
    app = make_app(tmp_path, name)
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
    app = make_app(tmp_path, name, start_polling=True, poll_seconds=1)
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
        assert predict(client, SEA)["model"]["version"] == "2"
    finally:
        app.extensions["fsdl_model"].stop()


@pytest.mark.slow
def test_starts_and_answers_health_checks_while_mlflow_is_down_then_serves_when_it_returns(
    tmp_path, production_model, mlflow_server
):
    """The registry is unreachable at start: /healthz answers at once, /readyz says why it is not
    ready, and the model is served once an MLflow server (on the same store) comes up."""
    port = free_port()
    server = WebappServer(tmp_path, production_model, MLFLOW_TRACKING_URI=f"http://127.0.0.1:{port}")
    server.launch()
    mlflow = None
    try:
        started = time.monotonic()
        wait_for_http(f"{server.url}/healthz", 120, server.proc)
        print(f"healthz answered {time.monotonic() - started:.1f} s after start with MLflow down")
        ready = requests.get(f"{server.url}/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.json()["status"] == "not ready"
        assert "127.0.0.1" not in ready.text  # no internal address for anonymous clients
        assert requests.get(f"{server.url}/api/v1/model", timeout=10).status_code == 503

        mlflow = start_mlflow_server(Path(os.environ["FSDL_TEST_MLFLOW_HOME"]), port, tmp_path / "mlflow.log")
        wait_for_http(f"{server.url}/readyz", 180, server.proc)
        assert requests.get(f"{server.url}/api/v1/model", timeout=10).json()["version"] == "1"
    finally:
        server.stop()
        if mlflow is not None:
            stop_process_group(mlflow)


# --- versions whose loading could run code ---------------------------------------------------------


class WritesMarker:
    """Unpickling this object creates ``path`` (a stand-in for any code an attacker would run)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def rest(tracking_uri: str, method: str, path: str, **body: Any) -> dict[str, Any]:
    url = f"{tracking_uri}/api/2.0/mlflow/{path}"
    response = requests.request(method, url, json=body or None, auth=mlflow_admin(), timeout=30)
    assert response.status_code == 200, response.text
    return dict(response.json())


def register_files(tracking_uri: str, name: str, files: dict[str, bytes], backbone: str) -> str:
    """Upload ``files`` as a run's model and register them as a version of ``name``; return its number."""
    created = requests.post(
        f"{tracking_uri}/api/2.0/mlflow/registered-models/create", json={"name": name}, auth=mlflow_admin(), timeout=30
    )
    assert created.status_code == 200 or "RESOURCE_ALREADY_EXISTS" in created.text, created.text
    experiment = rest(tracking_uri, "POST", "experiments/create", name=f"hostile-{uuid.uuid4().hex[:8]}")
    run = rest(tracking_uri, "POST", "runs/create", experiment_id=experiment["experiment_id"])["run"]["info"]
    artifacts = run["artifact_uri"].removeprefix("mlflow-artifacts:/")
    for filename, data in files.items():
        url = f"{tracking_uri}/api/2.0/mlflow-artifacts/artifacts/{artifacts}/model/{filename}"
        assert requests.put(url, data=data, auth=mlflow_admin(), timeout=30).status_code == 200
    version = rest(
        tracking_uri, "POST", "model-versions/create",
        name=name, source=f"{run['artifact_uri']}/model", run_id=run["run_id"],
        tags=[{"key": "backbone_id", "value": backbone}],
    )  # fmt: skip
    return str(version["model_version"]["version"])


def mlmodel(flavor: dict[str, Any]) -> bytes:
    pyfunc = {"loader_module": "mlflow.sklearn", "model_path": flavor["pickled_model"], "python_version": "3.11"}
    flavors = {"sklearn": flavor, "python_function": pyfunc}
    return yaml.safe_dump({"artifact_path": "model", "flavors": flavors}).encode()


def pickle_model(marker: Path) -> dict[str, bytes]:
    flavor = {"pickled_model": "model.pkl", "serialization_format": "pickle", "sklearn_version": "1.7.0"}
    return {"MLmodel": mlmodel(flavor), "model.pkl": pickle.dumps(WritesMarker(marker))}


def untrusted_skops_model() -> dict[str, bytes]:
    """A skops file holding a reference to os.system, whose MLmodel declares that type trusted."""
    model = Pipeline([("run", FunctionTransformer(os.system))])
    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    flavor = {
        "pickled_model": "model.skops",
        "serialization_format": "skops",
        "sklearn_version": "1.7.0",
        "skops_trusted_types": untrusted,
    }
    return {"MLmodel": mlmodel(flavor), "model.skops": skops.io.dumps(model)}


def served(server: WebappServer) -> dict[str, Any]:
    return dict(requests.get(f"{server.url}/api/v1/model", timeout=10).json())


def wait_for_refusal(server: WebappServer, version: str, timeout: float = 30) -> str:
    def refused() -> str | None:
        error = served(server).get("last_error") or ""
        return error if f"version {version} " in error else None

    return wait_until(refused, timeout, f"version {version} refused", describe=lambda: str(served(server)))


@pytest.mark.slow
def test_pickle_and_untrusted_skops_versions_are_refused_and_the_old_version_serves(tmp_path, registry, mlflow_server):
    name = f"guarded-{uuid.uuid4().hex[:6]}"
    registry.register(name)  # version 1: a real model trained by the platform's code
    server = WebappServer(tmp_path, name).start()
    marker = tmp_path / "code-ran"
    try:
        assert served(server)["version"] == "1"

        pickled = register_files(mlflow_server, name, pickle_model(marker), registry.backbone_id)
        rest(mlflow_server, "POST", "registered-models/alias", name=name, alias="production", version=pickled)
        error = wait_for_refusal(server, pickled)
        assert "model.skops" in error
        assert "pickle" in error
        assert not marker.exists(), "loading the pickle-format version ran its code"
        assert served(server)["version"] == "1"
        answer = requests.post(f"{server.url}/api/v1/predict", files={"image": ("sea.jpg", SEA)}, timeout=60)
        assert answer.status_code == 200
        assert answer.json()["model"]["version"] == "1"

        hostile = register_files(mlflow_server, name, untrusted_skops_model(), registry.backbone_id)
        rest(mlflow_server, "POST", "registered-models/alias", name=name, alias="production", version=hostile)
        error = wait_for_refusal(server, hostile)
        assert "does not trust" in error
        assert "system" in error
        assert served(server)["version"] == "1"
        page = requests.get(f"{server.url}/model", timeout=10).text
        assert "does not trust" in page

        # A real version promoted afterwards is served as usual.
        good = registry.register(name, "knn_7", aliases=("production",))
        wait_until(
            lambda: served(server)["version"] == good,
            30,
            f"version {good} served",
            describe=lambda: str(served(server)),
        )
        assert not marker.exists()
    finally:
        server.stop()


def test_the_library_loader_refuses_them_too(tmp_path, registry, mlflow_server):
    """Auto-promotion and the DAGs load models through the same function."""
    name = f"guarded-{uuid.uuid4().hex[:6]}"
    marker = tmp_path / "code-ran"
    pickled = register_files(mlflow_server, name, pickle_model(marker), registry.backbone_id)
    hostile = register_files(mlflow_server, name, untrusted_skops_model(), registry.backbone_id)
    with pytest.raises(UnsafeModelError, match="pickle"):
        load_sklearn_model(f"models:/{name}/{pickled}")
    with pytest.raises(UnsafeModelError, match="does not trust"):
        load_sklearn_model(f"models:/{name}/{hostile}")
    assert not marker.exists()
    good = registry.register(name)
    assert hasattr(load_sklearn_model(f"models:/{name}/{good}"), "predict_proba")


def skops_model(model: Any) -> dict[str, bytes]:
    """``model`` as MLflow logs it in the skops format (trusting exactly the types it holds)."""
    data = skops.io.dumps(model)
    flavor = {
        "pickled_model": "model.skops",
        "serialization_format": "skops",
        "sklearn_version": "1.7.0",
        "skops_trusted_types": skops.io.get_untrusted_types(data=data),
    }
    return {"MLmodel": mlmodel(flavor), "model.skops": data}


@pytest.mark.slow
def test_an_inconsistent_kdtree_is_refused_before_anything_loads_it(tmp_path, registry, mlflow_server):
    """Before: a KD-tree was a trusted type; this file passed the audit and its first prediction
    killed the serving process with SIGSEGV."""
    name = f"guarded-{uuid.uuid4().hex[:6]}"
    registry.register(name)
    server = WebappServer(tmp_path, name).start()
    try:
        crash = crashing_knn(registry.train.features, registry.train.labels)
        version = register_files(mlflow_server, name, skops_model(crash), registry.backbone_id)
        rest(mlflow_server, "POST", "registered-models/alias", name=name, alias="production", version=version)
        error = wait_for_refusal(server, version)
        assert "does not trust" in error
        assert "KDTree" in error
        answer = requests.post(f"{server.url}/api/v1/predict", files={"image": ("sea.jpg", SEA)}, timeout=60)
        assert answer.status_code == 200
        assert answer.json()["model"]["version"] == "1"
        assert server.proc.poll() is None
    finally:
        server.stop()


def test_a_model_that_crashes_the_process_trying_it_is_refused_and_the_old_one_serves(
    tmp_path, extractor, registry, mlflow_server, monkeypatch
):
    """Were a trusted type ever to crash (as the KD-tree did), the one prediction tried in a child
    process finds it: the version is refused with the reason, and this process serves on."""
    monkeypatch.setattr(tracking, "TRUSTED_TYPES", KDTREE_TYPES)
    name = f"guarded-{uuid.uuid4().hex[:6]}"
    registry.register(name)
    app = make_app(tmp_path, name)
    service = app.extensions["fsdl_model"]
    assert service.current.version == "1"
    crash = crashing_knn(registry.train.features, registry.train.labels)
    version = register_files(mlflow_server, name, skops_model(crash), registry.backbone_id)
    rest(mlflow_server, "POST", "registered-models/alias", name=name, alias="production", version=version)

    assert service.refresh() is False
    assert f"version {version} of {name} was not loaded" in service.last_error
    assert "crashed the process that tried it (SIGSEGV)" in service.last_error
    assert service.current.version == "1"
    assert predict(app.test_client(), SEA)["model"]["version"] == "1"
    assert "SIGSEGV" in app.test_client().get("/api/v1/model").json["last_error"]

    # The library's loader, which the DAGs and the promotion guard use, refuses it the same way.
    with pytest.raises(UnsafeModelError, match="SIGSEGV"):
        load_sklearn_model(f"models:/{name}/{version}")


def test_a_model_that_hangs_is_refused_after_the_timeout(tmp_path, registry, mlflow_server, monkeypatch):
    name = f"guarded-{uuid.uuid4().hex[:6]}"
    version = registry.register(name)
    monkeypatch.setattr(tracking, "SMOKE_TIMEOUT_SECONDS", 0.05)  # no model loads and predicts that fast
    monkeypatch.setattr(tracking, "_smoked", {})
    with pytest.raises(UnsafeModelError, match="took more than"):
        load_sklearn_model(f"models:/{name}/{version}")
