"""Where the backbone graph is kept (fsdl_lib.graph_store): exported once per backbone id into the data,
never overwritten, published to a real MLflow server, fetched back only as the bytes a model recorded;
and the scene dataset extracted with it, as the DAGs do."""

from __future__ import annotations

import numpy as np
import pytest

from fsdl_lib import graph_store
from fsdl_lib.config import load_settings
from fsdl_lib.dataset import file_sha256
from fsdl_lib.exceptions import GraphUnavailableError, IncompatibleModelError
from fsdl_lib.feature_store import FeatureStore
from fsdl_lib.graph import max_relative_difference
from fsdl_lib.graph_store import GraphRef, fetch_graph, graph_location, prepare_graph, published_graph
from fsdl_lib.scenes import SceneDataset, create_dataset
from fsdl_lib.seeding import seed_scenes


@pytest.fixture
def settings(tmp_path, monkeypatch, mlflow_server):
    monkeypatch.setenv("FSDL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FSDL_OFFLINE_WEIGHTS", "1")
    monkeypatch.setenv("FSDL_IMAGE_SIZE", "64")
    return load_settings()


def test_the_graph_is_exported_once_per_backbone_and_published_once(settings, tmp_path, monkeypatch):
    first = prepare_graph(settings)
    stored = graph_location(settings, first.backbone_id)
    assert first.backbone_id == "resnet50:random-seed0:resize64"
    assert file_sha256(stored) == first.sha256
    exports: list[object] = []
    monkeypatch.setattr(graph_store, "_export", lambda s: exports.append(s) or b"")
    again = prepare_graph(settings)
    assert exports == []  # the stored file is used as it is
    assert again == first  # the same run: published once
    assert GraphRef.from_dict(first.as_dict()) == first  # what travels between tasks
    # MLflow holds the very same bytes, which serving fetches by the sha256 a version records.
    fetched = fetch_graph(*published_graph(first.tags), tmp_path / "cache")
    assert fetched.name == f"{first.sha256}.onnx"
    assert fetched.read_bytes() == stored.read_bytes()


def test_a_stored_file_that_is_not_the_backbones_graph_is_refused_and_left_alone(settings, monkeypatch):
    other = prepare_graph(settings)
    monkeypatch.setenv("FSDL_WEIGHTS_SEED", "3")
    mine = load_settings()
    location = graph_location(mine, "resnet50:random-seed3:resize64")
    location.write_bytes(graph_location(settings, other.backbone_id).read_bytes())
    with pytest.raises(GraphUnavailableError) as refused:
        prepare_graph(mine)
    assert str(refused.value) == (
        f"{location} should be the graph of backbone resnet50:random-seed3:resize64, but it is "
        "resnet50:random-seed0:resize64; delete it and the next run exports the graph again"
    )
    location.write_bytes(b"half a graph")
    with pytest.raises(GraphUnavailableError, match=r"but it is nothing usable \(not an ONNX graph"):
        prepare_graph(mine)
    assert location.read_bytes() == b"half a graph"  # never re-exported silently
    location.unlink()
    assert prepare_graph(mine).backbone_id == "resnet50:random-seed3:resize64"


def test_fetched_bytes_other_than_the_recorded_ones_are_refused_and_not_kept(settings, tmp_path):
    graph = prepare_graph(settings)
    cache = tmp_path / "cache"
    with pytest.raises(IncompatibleModelError, match=f"has sha256 {graph.sha256[:12]}, not 000000000000"):
        fetch_graph(graph.run_id, "0" * 64, cache)
    assert list(cache.iterdir()) == []
    with pytest.raises(GraphUnavailableError, match=r"cannot be fetched from MLflow \(the server log"):
        fetch_graph("0" * 32, graph.sha256, cache)
    # A damaged copy in the cache is fetched again.
    path = fetch_graph(graph.run_id, graph.sha256, cache)
    path.write_bytes(b"damaged")
    assert file_sha256(fetch_graph(graph.run_id, graph.sha256, cache)) == graph.sha256


def test_a_version_without_graph_tags_gets_the_newest_graph_of_its_backbone(settings):
    graph = prepare_graph(settings)
    assert published_graph({"backbone_id": graph.backbone_id}) == (graph.run_id, graph.sha256)
    with pytest.raises(GraphUnavailableError, match="no graph of its backbone resnet50:nothing:resize1 is published"):
        published_graph({"backbone_id": "resnet50:nothing:resize1"})


def test_the_dataset_extracted_with_the_graph_matches_torch_and_names_the_graph(settings, sample_dir, small_extractor):
    seed_scenes(sample_dir, settings.scenes_raw_dir)
    graph = prepare_graph(settings)
    dataset = create_dataset(settings, graph=graph)
    assert dataset.graph == graph
    assert SceneDataset.from_dict(dataset.as_dict()) == dataset
    train = dataset.load("train")
    reference = FeatureStore(settings.processed_dir / "eager.npz").update(
        settings.scenes_raw_dir / "train", small_extractor
    )[0]  # torch, the reference
    assert reference.records == train.records
    assert max_relative_difference(train.features, reference.features) <= 1e-4
    assert not np.array_equal(train.features, reference.features)  # another engine ran, not torch again
