import shutil
import subprocess
import sys
import uuid

from fsdl_lib.dataset import FileRecord, dataset_version, file_sha256, manifest_csv, parse_manifest, scan_split
from tests.conftest import SAMPLE_DIR

VERSION_OF = (
    "import sys; from pathlib import Path; from fsdl_lib.dataset import scan_split, dataset_version; "
    "print(dataset_version(scan_split(Path(sys.argv[1]))))"
)


def version_in_new_process(split) -> str:
    command = [sys.executable, "-c", VERSION_OF, str(split)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_same_files_same_version_in_two_processes(scene_split):
    first, second = version_in_new_process(scene_split), version_in_new_process(scene_split)
    assert first == second == dataset_version(scan_split(scene_split))
    assert len(first) == 64


def test_one_changed_byte_gives_a_new_version(scene_split):
    before = dataset_version(scan_split(scene_split))
    photo = next((scene_split / "sea").iterdir())
    data = bytearray(photo.read_bytes())
    data[-3] ^= 0x01
    photo.write_bytes(bytes(data))
    assert dataset_version(scan_split(scene_split)) != before


def test_one_changed_label_gives_a_new_version(scene_split):
    before = dataset_version(scan_split(scene_split))
    photo = next((scene_split / "sea").iterdir())
    shutil.move(photo, scene_split / "glacier" / photo.name)
    assert dataset_version(scan_split(scene_split)) != before


def test_version_ignores_order_and_stray_files(scene_split):
    records = scan_split(scene_split)
    (scene_split / "sea" / "notes.txt").write_text("x")
    (scene_split / "sea" / ".hidden.jpg").write_bytes(b"x")
    (scene_split / "unknown_class").mkdir()
    (scene_split / "unknown_class" / "a.jpg").write_bytes(b"x")
    assert scan_split(scene_split) == records
    assert dataset_version(reversed(records)) == dataset_version(records)


def test_records_and_manifest(scene_split):
    records = scan_split(scene_split)
    assert len(records) == 24
    assert records[0].path.startswith("buildings/")
    assert {r.label for r in records} == {"buildings", "forest", "glacier", "mountain", "sea", "street"}
    assert parse_manifest(manifest_csv(records)) == records


def test_version_is_unambiguous_for_odd_names():
    a = [FileRecord("a,b/c.jpg", "sea", "0" * 64)]
    b = [FileRecord("a", "b/c.jpg,sea", "0" * 64)]
    assert dataset_version(a) != dataset_version(b)


def test_a_split_on_the_object_store_is_hashed_once_and_again_only_where_it_changed(object_store, monkeypatch):
    from fsdl_lib import dataset, storage

    split = object_store.bucket("data", "workers") / uuid.uuid4().hex / "train"
    photos = sorted(SAMPLE_DIR.glob("*/*.jpg"))[:12]
    for photo in photos:
        storage.write_bytes(split / photo.parent.name / photo.name, photo.read_bytes())
    read: list[str] = []
    hash_objects = storage.sha256s
    monkeypatch.setattr(storage, "sha256s", lambda root, paths: read.extend(paths) or hash_objects(root, paths))

    first = dataset.scan_split(split)
    assert len(read) == len(photos)
    read.clear()
    assert dataset.scan_split(split) == first  # the listing's ETags say nothing changed: no photo read
    assert read == []

    changed = photos[0]
    storage.write_bytes(split / changed.parent.name / changed.name, photos[1].read_bytes())
    third = dataset.scan_split(split)
    assert read == [f"{changed.parent.name}/{changed.name}"]
    assert dataset_version(third) != dataset_version(first)
    assert {r.path: r.sha256 for r in third}[f"{changed.parent.name}/{changed.name}"] == file_sha256(photos[1])
