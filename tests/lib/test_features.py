import numpy as np
import pytest
import torch

from fsdl_lib.exceptions import WeightsUnavailableError
from fsdl_lib.features import FEATURE_DIM, BackboneId, FeatureExtractor, weights_file
from fsdl_lib.images import load_image
from fsdl_lib.preprocessing import Preprocessor


@pytest.fixture(scope="module")
def photos(sample_dir):
    return [load_image(p) for p in sorted((sample_dir / "mountain").glob("*.jpg"))[:5]]


def test_features_shape_and_batching(small_extractor, photos):
    features = small_extractor.extract(photos)
    assert features.shape == (5, FEATURE_DIM)
    assert features.dtype == np.float32
    one_at_a_time = np.concatenate([small_extractor.extract([p]) for p in photos])
    np.testing.assert_allclose(features, one_at_a_time, rtol=1e-4, atol=1e-4)
    assert small_extractor.extract([]).shape == (0, FEATURE_DIM)


def test_random_weights_are_deterministic_and_leave_rng_alone(small_extractor, photos):
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    other = FeatureExtractor(offline_weights=True, image_size=64, batch_size=2, device="cpu")
    assert torch.equal(torch.rand(1), expected_next)
    np.testing.assert_allclose(other.extract(photos), small_extractor.extract(photos), rtol=1e-5, atol=1e-5)
    different_seed = FeatureExtractor(offline_weights=True, seed=1, image_size=64, device="cpu")
    assert different_seed.id != small_extractor.id
    assert not np.allclose(different_seed.extract(photos[:1]), small_extractor.extract(photos[:1]))


def test_id_names_architecture_weights_and_size(small_extractor):
    assert small_extractor.id == "resnet50:random-seed0:resize64"
    pretrained = BackboneId.of(offline_weights=False)
    assert str(pretrained) == "resnet50:IMAGENET1K_V2:resize224"
    assert BackboneId.parse(str(pretrained)) == pretrained
    assert BackboneId.parse(small_extractor.id).weights == "random-seed0"


def test_missing_weights_fail_with_a_fix(tmp_path):
    with pytest.raises(WeightsUnavailableError) as info:
        FeatureExtractor(offline_weights=False, torch_home=tmp_path, download=False, device="cpu")
    message = str(info.value)
    assert str(weights_file(tmp_path)) in message
    assert "FSDL_OFFLINE_WEIGHTS=1" in message
    assert "fsdl download-weights" in message


def test_unreadable_cached_weights_fail_clearly(tmp_path):
    path = weights_file(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsUnavailableError, match="cannot be read"):
        FeatureExtractor(offline_weights=False, torch_home=tmp_path, download=False, device="cpu")


def test_preprocessor_resizes_any_shape(photos):
    pre = Preprocessor(96)
    tensor = pre(photos[0].crop((0, 0, 150, 100)))
    assert tensor.shape == (3, 96, 96)
    assert tensor.dtype == torch.float32
    assert -3 < float(tensor.mean()) < 3
    with pytest.raises(ValueError, match="at least 32"):
        Preprocessor(8)
