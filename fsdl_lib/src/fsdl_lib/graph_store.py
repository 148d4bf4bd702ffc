"""Where the backbone graph is kept, so that training and serving run the same file.

Training exports the graph of its backbone id once, into ``processed/backbones/`` of the data, with a
conditional create: the first export wins and nothing overwrites it, whichever host exported. A stored
file that is not a graph of that id is an error that names it, never re-exported silently. The same
bytes are logged once to MLflow, as the artifact of one run of :data:`GRAPH_EXPERIMENT` tagged with the
backbone id and the sha256, and every version trained on its features records that run and sha256
(:meth:`GraphRef.tags`). Serving, which cannot read the training data, fetches the graph from that
run into a local cache, named by its sha256, and checks the bytes before it runs them
(:func:`fetch_graph`).

Nothing here imports torch, except :func:`prepare_graph` when it has to export.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from fsdl_lib import storage
from fsdl_lib.exceptions import GraphUnavailableError, IncompatibleModelError
from fsdl_lib.tracking import TAG_BACKBONE_ID

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from fsdl_lib.config import Settings
    from fsdl_lib.features import FeatureExtractor

log = logging.getLogger(__name__)

GRAPH_EXPERIMENT: Final = "fsdl-backbone-graphs"
"""The MLflow experiment with one run per published graph."""
GRAPH_FOLDER: Final = "graph"
GRAPH_FILE: Final = "backbone.onnx"
TAG_GRAPH_SHA256: Final = "backbone_graph_sha256"
TAG_GRAPH_RUN: Final = "backbone_graph_run_id"


@dataclass(frozen=True)
class GraphRef:
    """One exported graph: its backbone, where the data keeps it, its bytes' sha256, and the MLflow
    run that holds the same bytes for serving. Small, so it travels between tasks as a dict."""

    backbone_id: str
    location: str
    sha256: str
    run_id: str

    @property
    def tags(self) -> dict[str, str]:
        """What a run or a version trained on this graph's features records."""
        return {TAG_GRAPH_SHA256: self.sha256, TAG_GRAPH_RUN: self.run_id}

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GraphRef:
        return cls(str(data["backbone_id"]), str(data["location"]), str(data["sha256"]), str(data["run_id"]))


def graph_location(settings: Settings, backbone_id: str) -> Path:
    """Where the data keeps the graph of ``backbone_id`` (one file per id, never overwritten)."""
    return settings.processed_dir / "backbones" / f"{backbone_id.replace(':', '_')}.onnx"


def prepare_graph(settings: Settings, *, client: MlflowClient | None = None) -> GraphRef:
    """The graph of the settings' backbone: the stored one, or exported and stored now if there is
    none yet; published to MLflow if it is not yet. Raises :class:`GraphUnavailableError` when the
    stored file is not that backbone's graph (it names the file to delete)."""
    from fsdl_lib.features import BackboneId
    from fsdl_lib.graph import graph_backbone

    backbone = str(BackboneId.of(
        offline_weights=settings.offline_weights, seed=settings.weights_seed, image_size=settings.image_size
    ))  # fmt: skip
    location = graph_location(settings, backbone)
    if storage.exists(location):
        data = storage.read_bytes(location)
    else:
        data = _export(settings)
        if storage.create(location, data):
            log.info("backbone graph %s stored at %s (%.1f MB)", backbone, storage.describe(location), len(data) / 1e6)
        else:  # another task stored its export first: everyone uses that one
            data = storage.read_bytes(location)
    try:
        found = graph_backbone(data)
    except GraphUnavailableError as exc:
        found = f"nothing usable ({exc})"
    if found != backbone:
        raise GraphUnavailableError(
            f"{storage.describe(location)} should be the graph of backbone {backbone}, but it is {found}; "
            "delete it and the next run exports the graph again"
        )
    digest = hashlib.sha256(data).hexdigest()
    run_id = publish_graph(data, backbone, digest, client=client)
    return GraphRef(backbone, str(location), digest, run_id)


def _export(settings: Settings) -> bytes:
    from fsdl_lib.features import FeatureExtractor
    from fsdl_lib.graph import export_graph_bytes

    return export_graph_bytes(FeatureExtractor.from_settings(settings))


def publish_extractor(extractor: FeatureExtractor, *, client: MlflowClient | None = None) -> GraphRef:
    """Export ``extractor``'s graph and publish it to MLflow only, not into the data (its
    :attr:`GraphRef.location` is empty): for a classifier trained outside the DAGs, whose versions
    then record :attr:`GraphRef.tags`."""
    from fsdl_lib.graph import export_graph_bytes

    data = export_graph_bytes(extractor)
    digest = hashlib.sha256(data).hexdigest()
    return GraphRef(extractor.id, "", digest, publish_graph(data, extractor.id, digest, client=client))


def publish_graph(data: bytes, backbone_id: str, sha256: str, *, client: MlflowClient | None = None) -> str:
    """The id of the MLflow run that holds ``data`` (the graph of ``backbone_id``), logged now if no
    finished run holds those bytes yet. Two tasks publishing at once leave two equal runs: harmless."""
    from fsdl_lib import tracking

    client = client or tracking.client()
    experiment = tracking.get_or_create_experiment(GRAPH_EXPERIMENT, client=client)
    found = client.search_runs(
        [experiment],
        filter_string=f"tags.{TAG_GRAPH_SHA256} = '{sha256}' and attributes.status = 'FINISHED'",
        max_results=1,
    )
    if found:
        return str(found[0].info.run_id)
    tags = {TAG_BACKBONE_ID: backbone_id, TAG_GRAPH_SHA256: sha256}
    run = client.create_run(experiment, tags=tags, run_name=f"graph {backbone_id}")
    run_id = str(run.info.run_id)
    try:
        with tempfile.TemporaryDirectory(prefix="fsdl-graph-") as tmp:
            path = Path(tmp) / GRAPH_FILE
            path.write_bytes(data)
            client.log_artifact(run_id, str(path), artifact_path=GRAPH_FOLDER)
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    log.info("backbone graph %s published to MLflow (run %s, sha256 %s)", backbone_id, run_id, sha256[:12])
    return run_id


def published_graph(tags: Mapping[str, str], *, client: MlflowClient | None = None) -> tuple[str, str]:
    """(run id, sha256) of the graph a version's ``tags`` name. A version trained before versions
    recorded their graph names only its backbone: the newest graph published for that backbone, which
    computes the same features. :class:`GraphUnavailableError` if there is none."""
    from fsdl_lib import tracking

    if tags.get(TAG_GRAPH_RUN) and tags.get(TAG_GRAPH_SHA256):
        return tags[TAG_GRAPH_RUN], tags[TAG_GRAPH_SHA256]
    backbone = tags.get(TAG_BACKBONE_ID)
    if not backbone:
        raise GraphUnavailableError("it records neither its backbone graph nor its backbone id")
    client = client or tracking.client()
    experiment = client.get_experiment_by_name(GRAPH_EXPERIMENT)
    runs = [] if experiment is None else client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.{TAG_BACKBONE_ID} = '{backbone}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )  # fmt: skip
    if not runs:
        raise GraphUnavailableError(
            f"no graph of its backbone {backbone} is published in MLflow; run a scene training DAG with the same "
            "backbone settings once (it publishes the graph)"
        )
    return str(runs[0].info.run_id), str(runs[0].data.tags[TAG_GRAPH_SHA256])


def fetch_graph(run_id: str, sha256: str, cache: Path) -> Path:
    """The graph with ``sha256``, from MLflow run ``run_id``, as a file in ``cache`` (named by its
    sha256; downloaded once). A download that fails raises :class:`GraphUnavailableError` (the details,
    which may name internal addresses, go to the log); bytes other than ``sha256`` raise
    :class:`IncompatibleModelError` and are not kept."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from fsdl_lib.dataset import file_sha256

    path = cache / f"{sha256}.onnx"
    if path.is_file():
        if file_sha256(path) == sha256:
            return path
        log.warning("cached graph %s is damaged; fetching it again", path)
        path.unlink()
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=cache) as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=f"{GRAPH_FOLDER}/{GRAPH_FILE}", dst_path=tmp
            ))  # fmt: skip
        except (MlflowException, OSError) as exc:
            log.error("the backbone graph of run %s cannot be fetched: %s", run_id, exc)
            raise GraphUnavailableError(
                f"its backbone graph (run {run_id}) cannot be fetched from MLflow (the server log has the details)"
            ) from exc
        digest = file_sha256(local)
        if digest != sha256:
            raise IncompatibleModelError(
                f"the backbone graph of run {run_id} has sha256 {digest[:12]}, not {sha256[:12]} as the model "
                "recorded; refused"
            )
        os.replace(local, path)  # same folder: whole or not at all
    log.info("backbone graph %s fetched from run %s", sha256[:12], run_id)
    return path
