import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest

from fsdl_lib import storage
from fsdl_lib.atomic import atomic_writer
from fsdl_lib.dataset import dataset_version, scan_split
from fsdl_lib.exceptions import FeatureCacheError
from fsdl_lib.feature_store import FeatureStore
from tests.conftest import data_environment


@pytest.fixture
def placed(data_root, scene_split) -> tuple[Path, Path]:
    """The 24-photo split and its cache on a folder or on the object store: (split, cache)."""
    split = data_root / "raw" / "train"
    for photo in sorted(scene_split.glob("*/*.jpg")):
        storage.write_bytes(split / photo.parent.name / photo.name, photo.read_bytes())
    return split, data_root / "processed" / "train.npz"


def test_first_run_extracts_everything(placed, counting):
    split, cache = placed
    store = FeatureStore(cache)
    features, report = store.update(split, counting)
    assert counting.images == 24
    assert (report.total, report.extracted, report.reused, report.removed) == (24, 24, 0, 0)
    assert features.features.shape == (24, 2048)
    assert report.version == dataset_version(scan_split(split)) == features.version
    loaded = store.load()
    assert loaded.records == features.records
    np.testing.assert_array_equal(loaded.features, features.features)


def test_the_same_photos_give_the_same_features_and_version_on_a_folder_and_a_bucket(
    scene_split, tmp_path, object_store, counting
):
    on_folder, _ = FeatureStore(tmp_path / "train.npz").update(scene_split, counting)
    bucket = object_store.bucket("data", "workers") / uuid.uuid4().hex
    for photo in sorted(scene_split.glob("*/*.jpg")):
        storage.write_bytes(bucket / "train" / photo.parent.name / photo.name, photo.read_bytes())
    on_bucket, _ = FeatureStore(bucket / "train.npz").update(bucket / "train", counting)
    assert on_bucket.version == on_folder.version
    assert on_bucket.records == on_folder.records
    np.testing.assert_array_equal(on_bucket.features, on_folder.features)


def test_adding_one_image_extracts_exactly_one(placed, counting, sample_dir):
    split, cache = placed
    store = FeatureStore(cache)
    before, _ = store.update(split, counting)
    counting.images = 0
    new_photo = sorted((sample_dir / "sea").glob("*.jpg"))[-1]
    storage.write_bytes(split / "sea" / new_photo.name, new_photo.read_bytes())
    after, report = store.update(split, counting)
    assert counting.images == 1
    assert (report.extracted, report.reused, report.total) == (1, 24, 25)
    assert after.version != before.version
    # Rows of the unchanged images are the cached ones, untouched.
    old = dict(zip(before.records, before.features, strict=True))
    for record, row in zip(after.records, after.features, strict=True):
        if record in old:
            np.testing.assert_array_equal(row, old[record])


def test_nothing_new_extracts_nothing(scene_split, tmp_path, counting):
    store = FeatureStore(tmp_path / "train.npz")
    store.update(scene_split, counting)
    counting.images = 0
    _, report = store.update(scene_split, counting)
    assert counting.images == 0
    assert report.reused == 24


def test_removed_and_relabelled_files_drop_out(placed, counting, as_admin):
    split, cache = placed
    store = FeatureStore(cache)
    store.update(split, counting)
    gone = sorted(storage.files(split / "forest"))[0]
    storage.delete(as_admin(split / "forest" / gone))
    moved = sorted(storage.files(split / "sea"))[0]
    storage.write_bytes(split / "glacier" / moved, storage.read_bytes(split / "sea" / moved))
    storage.delete(as_admin(split / "sea" / moved))
    counting.images = 0
    features, report = store.update(split, counting)
    assert counting.images == 1  # the relabelled one, under its new label
    assert report.removed == 2
    paths = {r.path for r in features.records}
    assert f"forest/{gone}" not in paths
    assert f"sea/{moved}" not in paths
    assert f"glacier/{moved}" in paths
    assert len(features) == 23


def test_corrupt_image_is_skipped_and_the_rest_go_on(scene_split, tmp_path, counting):
    (scene_split / "street" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (scene_split / "street" / "text.jpg").write_text("hello")
    features, report = FeatureStore(tmp_path / "train.npz").update(scene_split, counting)
    assert len(features) == 24
    assert sorted(path for path, _ in report.skipped) == ["street/broken.jpg", "street/text.jpg"]
    assert all(reason for _, reason in report.skipped)


def test_cache_of_another_backbone_is_rebuilt(scene_split, tmp_path, counting, small_extractor):
    store = FeatureStore(tmp_path / "train.npz")
    store.update(scene_split, counting)

    class Other:
        id = "resnet50:other:resize64"
        batch_size = 8

        def extract(self, images):
            return small_extractor.extract(images)

    _, report = store.update(scene_split, Other())
    assert report.extracted == 24
    assert store.load().extractor_id == "resnet50:other:resize64"


def test_corrupt_cache_is_reported_and_rebuilt(scene_split, tmp_path, counting):
    path = tmp_path / "train.npz"
    path.write_bytes(b"garbage")
    with pytest.raises(FeatureCacheError, match="unreadable"):
        FeatureStore(path).load()
    _, report = FeatureStore(path).update(scene_split, counting)
    assert report.extracted == 24
    assert len(FeatureStore(path).load()) == 24


def test_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "cache.npz"
    path.write_bytes(b"old")

    def crash_mid_write():
        with atomic_writer(path) as handle:
            handle.write(b"partial new conte")
            raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        crash_mid_write()
    assert path.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [path]


KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    from fsdl_lib import storage
    from fsdl_lib.feature_store import FeatureStore
    from fsdl_lib.features import FeatureExtractor

    inner = FeatureExtractor(offline_weights=True, image_size=64, batch_size=4, device="cpu")

    class DiesOnThirdBatch:
        id, batch_size, calls = inner.id, 4, 0
        def extract(self, images):
            self.calls += 1
            if self.calls == 3:
                os.kill(os.getpid(), signal.SIGKILL)
            return inner.extract(images)

    split, cache = (storage.location(url) for url in sys.argv[1:3])
    FeatureStore(cache).update(split, DiesOnThirdBatch(), checkpoint_seconds=0)
    """
)


def test_killed_extraction_leaves_a_readable_cache_and_resumes(placed, counting, sample_dir, data_root):
    split, cache = placed
    store = FeatureStore(cache)
    before, _ = store.update(split, counting)
    for label in ("forest", "sea", "street"):  # 3 x 4 = 12 new images = 3 batches of 4
        for photo in sorted((sample_dir / label).glob("*.jpg"))[-4:]:
            storage.write_bytes(split / label / photo.name, photo.read_bytes())

    env = {**os.environ, **data_environment(data_root)}
    child = subprocess.run([sys.executable, "-c", KILLED_RUN, str(split), str(cache)], env=env, check=False)
    assert child.returncode == -9

    survived = store.load()  # readable, and holds the old images plus the checkpointed batches
    assert set(before.records) <= set(survived.records)
    assert len(survived) == 24 + 8
    assert list(storage.files(cache.parent)) == ["train.npz"]  # no partial file beside it

    counting.images = 0
    features, report = store.update(split, counting)
    assert counting.images == 4
    assert report.total == 36
    assert features.version == dataset_version(scan_split(split))


def test_missing_split_folder_is_an_error(tmp_path, counting):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        FeatureStore(tmp_path / "x.npz").update(Path(tmp_path / "absent"), counting)


def test_every_corpus_file_is_extracted_or_skipped_with_a_reason(scene_split, tmp_path, counting):
    """Unusual but legal files are extracted; broken and hostile ones are skipped and reported, and
    the split still gets its features (one bad upload never fails training)."""
    from tests.image_corpus import corpus

    samples = corpus()
    suffixes = {"jpg", "png", "gif", "webp"}
    for sample in samples:
        if sample.name.rsplit(".", 1)[1] in suffixes:
            (scene_split / "sea" / sample.name).write_bytes(sample.data)
    features, report = FeatureStore(tmp_path / "train.npz").update(scene_split, counting)
    listed = {f"sea/{s.name}" for s in samples if s.name.rsplit(".", 1)[1] in ("jpg", "png")}
    accepted = {f"sea/{s.name}" for s in samples if s.accepted}
    assert {path for path, _ in report.skipped} == listed - accepted
    assert all(reason for _, reason in report.skipped)
    paths = {record.path for record in features.records}
    assert accepted <= paths
    assert len(features) == 24 + len(accepted)
