"""MLflow helpers shared by the DAGs and the web app.

Serving always goes through an alias (``models:/<name>@production``), never a version number or a
stage. Registration is all or nothing: a version whose aliases cannot be set is deleted again and
the aliases go back to where they were.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from fsdl_lib import __version__
from fsdl_lib.config import load_settings
from fsdl_lib.dataset import FileRecord, dataset_version, manifest_csv
from fsdl_lib.drift import REFERENCE_ARTIFACT, DriftInputError, Reference
from fsdl_lib.exceptions import ModelNotFoundError, RegistrationError, UnsafeModelError

if TYPE_CHECKING:
    from mlflow import ActiveRun
    from mlflow.entities.model_registry import ModelVersion

log = logging.getLogger(__name__)

TAG_DATASET_VERSION: Final = "dataset_version"
TAG_BACKBONE_ID: Final = "backbone_id"
TAG_WEIGHTS_ID: Final = "weights_id"
TAG_CODE_VERSION: Final = "code_version"
TAG_DAG_RUN_ID: Final = "airflow_dag_run_id"
TAG_TASK_KEY: Final = "airflow_task_key"
TAG_CANDIDATE: Final = "candidate"
TAG_VAL_F1: Final = "val_f1"
TAG_TEST_F1: Final = "test_f1"
TAG_PROMOTION_DECISION: Final = "promotion_decision"
"""Why a version was, or was not, moved to production (the guarded promotion, a rollback)."""
ALIAS_CHALLENGER: Final = "challenger"
ALIAS_PRODUCTION: Final = "production"


def tracking_uri() -> str:
    """The tracking server every client of the platform talks to: ``MLFLOW_TRACKING_URI`` as the
    settings read it, derived from ``MLFLOW_BIND_HOST`` and ``MLFLOW_PORT`` when unset (never
    MLflow's own fallback, a local ``mlruns`` folder)."""
    return load_settings().mlflow_tracking_uri


def client() -> MlflowClient:
    """A client of :func:`tracking_uri` (its login: MLflow's own ``MLFLOW_TRACKING_USERNAME`` and
    ``MLFLOW_TRACKING_PASSWORD``)."""

    return MlflowClient(tracking_uri=tracking_uri())


def _client(given: MlflowClient | None) -> MlflowClient:
    return given if given is not None else client()


def get_or_create_experiment(name: str, *, client: MlflowClient | None = None) -> str:
    """Return the id of experiment ``name``, creating (or restoring) it if needed.

    Safe when several tasks race to create the same experiment: the loser of the race reads the
    winner's experiment instead of failing.
    """

    client = _client(client)
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return str(client.create_experiment(name))
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            experiment = client.get_experiment_by_name(name)
            if experiment is None:  # deleted between the two calls
                raise
    if experiment.lifecycle_stage == "deleted":
        log.warning("experiment %r was deleted; restoring it", name)
        client.restore_experiment(experiment.experiment_id)
    return str(experiment.experiment_id)


def lineage_tags(dataset_version: str, *, code: str, dag_run_id: str) -> dict[str, str]:
    """The tags that say where a run or a version came from: its data, its code, its DAG run."""
    return {
        TAG_DATASET_VERSION: dataset_version,
        TAG_CODE_VERSION: code_version(code),
        TAG_DAG_RUN_ID: dag_run_id,
    }


def code_version(configured: str = "") -> str:
    """``configured`` if set, else the git commit of this checkout, else the library version."""
    if configured:
        return configured

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"fsdl_lib-{__version__}"
    return f"git-{commit}" if commit else f"fsdl_lib-{__version__}"


@contextlib.contextmanager
def task_run(
    experiment_id: str,
    *,
    task_key: str,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    client: MlflowClient | None = None,
) -> Iterator[ActiveRun]:
    """An MLflow run owned by one task attempt; it always ends FINISHED or FAILED.

    ``mlflow.start_run`` already marks the run FAILED when the body raises (a task timeout or a
    termination included). A run left RUNNING by an attempt that was killed outright is closed
    as FAILED here, by its ``task_key`` tag, before the retry opens its own.
    """

    client = _client(client)
    stale = client.search_runs(
        [experiment_id],
        filter_string=f"tags.{TAG_TASK_KEY} = '{task_key}' and attributes.status = 'RUNNING'",
    )
    for run in stale:
        log.warning("closing run %s left RUNNING by an earlier attempt as FAILED", run.info.run_id)
        client.set_terminated(run.info.run_id, "FAILED")
    all_tags = {**(tags or {}), TAG_TASK_KEY: task_key}
    # The run goes where the client looked: MLflow's fluent API reads MLFLOW_TRACKING_URI, and where that
    # is unset, it is given the URI the settings derive (never MLflow's ./mlruns). Not set_tracking_uri:
    # that would pin every later client of this process to this server, whatever the environment says.
    os.environ.setdefault("MLFLOW_TRACKING_URI", client.tracking_uri)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=all_tags) as run:
        yield run


def log_dataset(records: Iterable[FileRecord], *, context: str, name: str) -> str:
    """Log a split with the active run: its version (tag and input) and its manifest (artifact).

    Returns the dataset version. ``context`` is the split's role, such as ``train`` or ``test``.
    """

    records = sorted(records)
    version = dataset_version(records)
    mlflow.set_tag(f"{TAG_DATASET_VERSION}.{context}", version)
    mlflow.log_text(manifest_csv(records), f"datasets/{context}_manifest.csv")
    frame = pd.DataFrame([(r.path, r.label, r.sha256) for r in records], columns=["path", "label", "sha256"])
    dataset = mlflow.data.from_pandas(frame, name=name, targets="label", digest=version[:32])
    mlflow.log_input(dataset, context=context)
    return version


@contextlib.contextmanager
def _quiet_model_io() -> Iterator[None]:
    # skops walks every loaded module while (de)serialising; inside Airflow each deprecated alias it
    # touches warns, flooding the task log with hundreds of irrelevant lines.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


SKOPS_FILE: Final = "model.skops"
"""The file of a scikit-learn model that MLflow logged in the skops format (its default)."""

TRUSTED_TYPES: Final[tuple[str, ...]] = ()
"""Types the platform trusts when loading a model, beyond skops's own safe defaults (scikit-learn
estimators, numpy arrays, builtins): none. The platform's models need nothing more (its KNN
candidates search by brute force, so they hold no KD-tree, whose arrays a crafted file could make
inconsistent enough to crash the process). Kept here, never read from a model's files: MLflow would
take the list, and the serialization format, from the model's own MLmodel file, which whoever
registers a version controls."""
SMOKE_TIMEOUT_SECONDS: Final = 120.0
"""How long a model may take to load and predict once in the child process that tries it."""
_smoked: dict[str, str] = {}
"""sha256 of skops files that passed the smoke test in a child of this process, and what it said."""


def log_sklearn_model(model: Any, example: Any) -> str:
    """Log a fitted scikit-learn model as ``model`` of the active run, with signature and example.

    The skops format, so that :func:`load_sklearn_model` can load it without running code. The
    requirements are pinned explicitly: the inferred ones would drag torch in and take longer.
    Returns the model URI.
    """
    import sklearn  # with skops: importing skops.io imports all of scikit-learn, and with it torch
    import skops

    with _quiet_model_io():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(example, model.predict(example)),
            input_example=example,
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"skops=={skops.__version__}"],
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
            skops_trusted_types=list(TRUSTED_TYPES),
        )
    return str(info.model_uri)


def log_drift_reference(reference: Reference) -> None:
    """Log the drift checks' reference sample with the active run (:data:`REFERENCE_ARTIFACT`)."""

    folder, name = REFERENCE_ARTIFACT.rsplit("/", 1)
    with tempfile.TemporaryDirectory(prefix="fsdl-reference-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(reference.to_bytes())
        mlflow.log_artifact(str(path), artifact_path=folder)


def load_drift_reference(run_id: str) -> Reference:
    """The reference sample that run ``run_id`` logged; :class:`DriftInputError` if it has none."""

    with tempfile.TemporaryDirectory(prefix="fsdl-reference-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=REFERENCE_ARTIFACT, dst_path=tmp)
        except (MlflowException, OSError) as exc:
            raise DriftInputError(
                f"run {run_id} has no drift reference ({REFERENCE_ARTIFACT}); versions trained before drift "
                "monitoring existed have none: retrain to monitor it"
            ) from exc
        return Reference.from_bytes(Path(local).read_bytes())


def load_sklearn_model(uri: str) -> Any:
    """Load the scikit-learn model at ``uri`` (``models:/``, ``runs:/`` or an artifact URI) safely.

    The one loader of registered models: only a skops file is read, only with the types skops
    trusts by default plus :data:`TRUSTED_TYPES`, and nothing is ever unpickled, whatever the
    model's MLmodel file claims. Anything else raises :class:`UnsafeModelError` saying why.
    """
    import skops.io  # imports all of scikit-learn (and torch, unless refused: fsdl_lib.lean_imports): only here

    with tempfile.TemporaryDirectory(prefix="fsdl-model-") as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        path = local / SKOPS_FILE
        if not path.is_file():
            found = sorted(p.name for p in local.iterdir()) if local.is_dir() else [local.name]
            raise UnsafeModelError(
                f"{uri} has no {SKOPS_FILE} (it holds {found}); only scikit-learn models in the skops "
                "format are loaded, because loading a pickle-based model can run arbitrary code"
            )
        try:
            untrusted = sorted(set(skops.io.get_untrusted_types(file=path)) - set(TRUSTED_TYPES))
        except (zipfile.BadZipFile, KeyError, ValueError, TypeError) as exc:
            raise UnsafeModelError(f"{uri}: {SKOPS_FILE} is not a valid skops file ({exc})") from None
        if untrusted:
            raise UnsafeModelError(
                f"{uri} refers to types this platform does not trust: {', '.join(untrusted)}; a model "
                "trained by the platform's DAGs never does"
            )
        smoke_test(path, uri)
        with _quiet_model_io():
            try:
                return skops.io.load(path, trusted=list(TRUSTED_TYPES))
            except Exception as exc:  # a malformed file of trusted types: refuse it, say why
                raise UnsafeModelError(f"{uri}: {SKOPS_FILE} could not be loaded ({exc})") from exc


def smoke_test(path: Path, uri: str = "", *, timeout: float | None = None) -> str:
    """Load the skops file at ``path`` and predict once, in a child process, before this process
    does: a model that crashes the interpreter (a native fault in a trusted type's code), hangs, or
    cannot predict raises :class:`UnsafeModelError` with its reason, and this process goes on.
    Returns what the child said; a file that passed once is not tried again in this process."""

    timeout = SMOKE_TIMEOUT_SECONDS if timeout is None else timeout
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest in _smoked:
        return _smoked[digest]
    name = uri or str(path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    try:
        result = subprocess.run(
            [sys.executable, "-m", "fsdl_lib._smoke", str(path), *TRUSTED_TYPES],
            capture_output=True, text=True, timeout=timeout, env=env, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise UnsafeModelError(f"{name}: trying one prediction took more than {timeout:.0f} s; refused") from None
    if result.returncode < 0:
        signame = signal.Signals(-result.returncode).name
        raise UnsafeModelError(f"{name}: one prediction crashed the process that tried it ({signame}); refused")
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no reason given"])[-1]
        raise UnsafeModelError(f"{name}: it could not predict ({reason}); refused")
    _smoked[digest] = result.stdout.strip()
    return _smoked[digest]


@dataclass(frozen=True)
class LoadedModel:
    """A model loaded from the registry with the version that answered."""

    model: Any
    version: ModelVersion

    @property
    def name(self) -> str:
        return str(self.version.name)

    @property
    def number(self) -> str:
        return str(self.version.version)


def resolve_alias(name: str, alias: str, *, client: MlflowClient | None = None) -> ModelVersion:
    """The version of ``name`` that ``alias`` points to; :class:`ModelNotFoundError` if none."""

    try:
        return _client(client).get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}:
            raise ModelNotFoundError(name, alias, exc.message) from None
        raise


def alias_version(name: str, alias: str, *, client: MlflowClient | None = None) -> ModelVersion | None:
    """The version of ``name`` that ``alias`` points to, or None when it points nowhere."""
    try:
        return resolve_alias(name, alias, client=client)
    except ModelNotFoundError:
        return None


def load_model(name: str, alias: str, *, client: MlflowClient | None = None) -> LoadedModel:
    """Resolve ``models:/<name>@<alias>`` and load that exact version with :func:`load_version`.

    The alias is resolved once and the version loaded by number, so the model and the version
    reported with it always agree even when the alias moves during the load.
    """
    return load_version(resolve_alias(name, alias, client=client))


def load_version(version: ModelVersion) -> LoadedModel:
    """Load one registered version (by number, with :func:`load_sklearn_model`)."""
    return LoadedModel(load_sklearn_model(f"models:/{version.name}/{version.version}"), version)


def version_summaries(name: str, versions: Iterable[str], *, client: MlflowClient | None = None) -> dict[str, dict]:
    """What each version recorded when it was registered (candidate, scores, time) and its last
    promotion decision; versions the registry cannot give now (it may be down) are left out."""
    client = _client(client)
    found: dict[str, dict] = {}
    for version in dict.fromkeys(versions):
        try:
            registered = client.get_model_version(name, version)
        except Exception as exc:
            log.warning("version %s of %s not read from the registry: %s", version, name, exc)
            continue
        found[version] = {
            "candidate": registered.tags.get(TAG_CANDIDATE),
            "val_f1": registered.tags.get(TAG_VAL_F1),
            "test_f1": registered.tags.get(TAG_TEST_F1),
            "decision": registered.tags.get(TAG_PROMOTION_DECISION),
            "registered_at": registered.creation_timestamp / 1000 if registered.creation_timestamp else None,
        }
    return found


def register_version(
    model_uri: str,
    name: str,
    *,
    aliases: Iterable[str] = (),
    tags: Mapping[str, str] | None = None,
    run_id: str | None = None,
    await_seconds: int = 300,
    client: MlflowClient | None = None,
) -> ModelVersion:
    """Register ``model_uri`` as a new version of ``name`` with ``tags`` and point ``aliases`` at it.

    All or nothing: if the version does not become READY or an alias cannot be set, the version is
    deleted, aliases already moved go back to their previous versions, and
    :class:`RegistrationError` says what failed. With ``run_id``, a retry is idempotent: a READY
    version already registered from that run is reused instead of registering a second one.
    """

    client = _client(client)
    aliases = list(aliases)
    if run_id is not None:
        for existing in client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'"):
            if existing.status == "READY":
                log.info("run %s is already version %s of %s; reusing it", run_id, existing.version, name)
                for alias in aliases:
                    client.set_registered_model_alias(name, alias, existing.version)
                return client.get_model_version(name, existing.version)
    version = mlflow.register_model(model_uri, name, await_registration_for=await_seconds, tags=dict(tags or {}))
    previous: dict[str, str | None] = {}
    try:
        if version.status != "READY":
            raise RegistrationError(f"version {version.version} of {name!r} is {version.status}, not READY")
        for alias in aliases:
            held = alias_version(name, alias, client=client)
            previous[alias] = None if held is None else str(held.version)
            client.set_registered_model_alias(name, alias, version.version)
    except Exception as exc:
        _roll_back(client, name, version.version, previous)
        if isinstance(exc, RegistrationError):
            raise
        raise RegistrationError(f"registering {model_uri} as {name!r} failed and was undone: {exc}") from exc
    log.info("registered %s version %s with aliases %s", name, version.version, aliases or "none")
    return client.get_model_version(name, version.version)


def _roll_back(client: MlflowClient, name: str, number: str, previous: Mapping[str, str | None]) -> None:
    for alias, old in previous.items():
        try:
            if old is None:
                client.delete_registered_model_alias(name, alias)
            else:
                client.set_registered_model_alias(name, alias, old)
        except Exception:
            log.exception("could not restore alias %r of %s", alias, name)
    try:
        client.delete_model_version(name, number)
    except Exception:
        log.exception("could not delete half-registered version %s of %s", number, name)
