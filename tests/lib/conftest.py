import pytest

from fsdl_lib.features import FeatureExtractor


class CountingExtractor:
    """Wraps a real extractor and counts the images it was asked to extract."""

    def __init__(self, inner: FeatureExtractor) -> None:
        self.inner = inner
        self.id = inner.id
        self.batch_size = inner.batch_size
        self.images = 0

    def extract(self, images):
        self.images += len(images)
        return self.inner.extract(images)


@pytest.fixture(scope="session")
def small_extractor() -> FeatureExtractor:
    """The real ResNet50 (random weights) at a small input size, to keep tests quick."""
    return FeatureExtractor(offline_weights=True, image_size=64, batch_size=4, device="cpu")


@pytest.fixture
def counting(small_extractor) -> CountingExtractor:
    return CountingExtractor(small_extractor)
