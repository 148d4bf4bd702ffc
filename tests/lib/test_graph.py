"""The exported backbone graph: the same features as the eager torch extractor (the reference), and a
clear refusal of a file that is not the graph a model needs."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
from PIL import Image

from fsdl_lib.dataset import file_sha256
from fsdl_lib.exceptions import GraphUnavailableError, IncompatibleModelError
from fsdl_lib.graph import META_BACKBONE, GraphExtractor, export_graph, max_relative_difference
from fsdl_lib.images import load_image


@pytest.fixture(scope="module")
def photos(sample_dir):
    """Real photos of every class, plus odd ones: greyscale, not square, and with transparency."""
    real = [load_image(p) for folder in sorted(sample_dir.iterdir()) for p in sorted(folder.glob("*.jpg"))[:2]]
    odd = [real[0].convert("L"), real[1].resize((97, 150)), real[2].convert("RGBA")]
    return real + odd


@pytest.fixture(scope="module")
def exported(small_extractor, tmp_path_factory):
    path = tmp_path_factory.mktemp("graph") / "backbone.onnx"
    return path, export_graph(small_extractor, path)


def test_graph_features_match_the_eager_extractor(small_extractor, exported, photos):
    path, digest = exported
    graph = GraphExtractor(path, expected_id=small_extractor.id, batch_size=3)
    assert (graph.id, graph.image_size, graph.sha256) == (small_extractor.id, 64, digest)
    reference = small_extractor.extract(photos)
    features = graph.extract(photos)
    assert features.shape == reference.shape
    assert features.dtype == np.float32
    assert max_relative_difference(features, reference) <= 1e-4
    # batches of any size, the last one short, give the same rows
    np.testing.assert_allclose(GraphExtractor(path, batch_size=5).extract(photos), features, rtol=0, atol=1e-5)
    assert graph.extract([]).shape == (0, small_extractor.feature_dim)


def test_the_eager_extractor_and_its_exported_module_agree(small_extractor, photos):
    """The module that is exported is the eager extractor's own computation, not a copy of it."""
    import torch

    from fsdl_lib.preprocessing import pixel_batch

    with torch.inference_mode():
        from_pixels = small_extractor.pixels_module()(torch.from_numpy(pixel_batch(photos, 64))).numpy()
    np.testing.assert_array_equal(from_pixels, small_extractor.extract(photos))


def test_a_graph_of_another_backbone_is_refused(exported):
    path, _ = exported
    with pytest.raises(IncompatibleModelError, match=r"random-seed0:resize64.*resnet50:IMAGENET1K_V2:resize224"):
        GraphExtractor(path, expected_id="resnet50:IMAGENET1K_V2:resize224")


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: b"not an onnx graph at all", id="garbage"),
        pytest.param(lambda data: b"", id="empty"),
    ],
)
def test_a_corrupt_graph_is_refused(exported, tmp_path, damage):
    path, _ = exported
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(damage(path.read_bytes()))
    with pytest.raises(GraphUnavailableError, match="not a usable ONNX graph"):
        GraphExtractor(broken)


def test_a_missing_graph_is_refused(tmp_path):
    with pytest.raises(GraphUnavailableError, match="cannot be read"):
        GraphExtractor(tmp_path / "absent.onnx")


def test_an_onnx_file_without_a_backbone_id_is_refused(exported, tmp_path):
    path, _ = exported
    model = onnx.load(str(path))
    kept = [p for p in model.metadata_props if p.key != META_BACKBONE]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    anonymous = tmp_path / "anonymous.onnx"
    anonymous.write_bytes(model.SerializeToString())
    with pytest.raises(GraphUnavailableError, match=r"not a backbone graph.*fsdl\.backbone_id"):
        GraphExtractor(anonymous)


def test_export_leaves_nothing_when_it_fails(small_extractor, tmp_path, monkeypatch):
    import onnx.checker

    def refuse(model):
        raise onnx.checker.ValidationError("refused for the test")

    monkeypatch.setattr(onnx.checker, "check_model", refuse)
    with pytest.raises(onnx.checker.ValidationError):
        export_graph(small_extractor, tmp_path / "graph.onnx")
    assert list(tmp_path.iterdir()) == []


def test_running_a_graph_needs_no_torch(exported, sample_dir):
    """The extractor that serving uses imports neither torch nor torchvision."""
    path, digest = exported
    photo = next((sample_dir / "sea").glob("*.jpg"))
    code = (
        "import sys; from fsdl_lib.graph import GraphExtractor; from fsdl_lib.images import load_image; "
        f"g = GraphExtractor({str(path)!r}); f = g.extract([load_image({str(photo)!r})]); "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')); "
        "print(f.shape, g.sha256, bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"(1, 2048) {digest} []"


def test_different_inputs_give_different_features(exported):
    """The graph is not a constant: two different images give different features."""
    path, _ = exported
    graph = GraphExtractor(path)
    black, white = Image.new("RGB", (64, 64)), Image.new("RGB", (64, 64), (255, 255, 255))
    features = graph.extract([black, white])
    assert not np.allclose(features[0], features[1])
    assert file_sha256(path) == graph.sha256
