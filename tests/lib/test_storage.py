"""The storage seam (fsdl_lib.storage) on both back-ends: a folder, and a real SeaweedFS bucket.

Each test that takes ``data_root`` runs twice, once on each; the object store's own tests (its
identities, and its faults) run against the store alone.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
import uuid

import pytest

from fsdl_lib import storage
from fsdl_lib.dataset import dataset_version, manifest_csv, scan_split
from fsdl_lib.exceptions import FsdlError, StorageError
from fsdl_lib.storage import ObjectStore, location
from fsdl_tools.clients import free_port
from tests.conftest import SAMPLE_DIR


def sizes(listing: dict[str, storage.StoredFile]) -> dict[str, int]:
    return {key: file.size for key, file in listing.items()}


def test_a_write_is_read_back_whole_and_replaced_whole(data_root):
    path = data_root / "processed" / "shard-0.npz"
    storage.write_bytes(path, b"first" * 1000)
    storage.write_bytes(path, b"second")
    assert storage.read_bytes(path) == b"second"
    assert sizes(storage.files(data_root)) == {"processed/shard-0.npz": 6}


def test_files_lists_every_file_with_its_size_and_leaves_hidden_ones_out(data_root):
    files = {"a/1.jpg": b"1", "a/b/2.png": b"22", "c/.partial": b"333", ".cache/4.jpg": b"4444", "3.txt": b""}
    for key, data in files.items():
        storage.write_bytes(data_root / key, data)
    assert sizes(storage.files(data_root)) == {"a/1.jpg": 1, "a/b/2.png": 2, "3.txt": 0}
    assert sizes(storage.files(data_root / "a" / "b")) == {"2.png": 2}
    assert storage.files(data_root / "nothing-here") == {}
    # A store's listing carries each object's ETag, which changes with its content.
    before = storage.files(data_root)["a/1.jpg"].etag
    storage.write_bytes(data_root / "a" / "1.jpg", b"2")
    after = storage.files(data_root)["a/1.jpg"].etag
    if storage.is_object_store(data_root):
        assert before != after
    else:
        assert before is after is None


def test_create_writes_only_where_nothing_is_and_one_of_racing_writers_wins(data_root):
    path = data_root / "feedback" / "sea" / "abc.jpg"
    assert storage.create(path, b"original") is True
    assert storage.create(path, b"other") is False
    assert storage.read_bytes(path) == b"original"

    racing = data_root / "race"
    results: list[bool] = []
    start = threading.Barrier(8)

    def write(i: int) -> None:
        start.wait()
        results.append(storage.create(racing, f"writer {i}".encode()))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
    assert storage.read_bytes(racing).startswith(b"writer ")
    assert sorted(storage.files(data_root)) == ["feedback/sea/abc.jpg", "race"]  # no temporary file left


def test_deleting_is_idempotent(uploads_root):
    path = uploads_root / "pending" / "x.jpg"
    storage.write_bytes(path, b"x")
    storage.delete(path)
    storage.delete(path)
    assert storage.files(uploads_root) == {}


def test_the_same_photos_have_the_same_dataset_version_in_a_folder_and_in_a_bucket(tmp_path, object_store):
    photos = sorted(SAMPLE_DIR.glob("*/*.jpg"))[::4]
    folder = tmp_path / "train"
    bucket = object_store.bucket("data", "workers") / uuid.uuid4().hex / "train"
    for photo in photos:
        (folder / photo.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(photo, folder / photo.parent.name / photo.name)
        storage.write_bytes(bucket / photo.parent.name / photo.name, photo.read_bytes())
    storage.write_bytes(bucket / "sea" / ".upload-in-progress.jpg", b"half")  # ignored, as in a folder
    storage.write_bytes(bucket / "notes.txt", b"not an image")

    from_folder, from_bucket = scan_split(folder), scan_split(bucket)
    assert len(from_bucket) == len(photos) > 20
    assert from_bucket == from_folder
    assert dataset_version(from_bucket) == dataset_version(from_folder)
    assert manifest_csv(from_bucket) == manifest_csv(from_folder)


# --- the object store's identities and faults ---------------------------------------------------------


def test_the_web_apps_credentials_are_refused_on_the_training_data(object_store):
    key = f"{uuid.uuid4().hex}/train/sea/1.jpg"
    storage.write_bytes(object_store.bucket("data", "workers") / key, b"a training photo")
    webapp_data = object_store.bucket("data", "webapp")
    for attempt in (
        lambda: storage.read_bytes(webapp_data / key),
        lambda: storage.files(webapp_data),
        lambda: storage.write_bytes(webapp_data / key, b"poisoned"),
    ):
        with pytest.raises(StorageError, match=r"refused this service's credentials.*FSDL_S3_ACCESS_KEY_ID"):
            attempt()
    assert storage.read_bytes(object_store.bucket("data", "workers") / key) == b"a training photo"
    # Its own bucket it may use, and the workers may read what it keeps there.
    upload = f"{uuid.uuid4().hex}.jpg"
    storage.write_bytes(object_store.bucket("uploads", "webapp") / upload, b"an upload")
    assert storage.read_bytes(object_store.bucket("uploads", "workers") / upload) == b"an upload"


def test_only_the_admin_deletes_training_data_and_logs(object_store):
    """A worker (or the web app) taken over cannot destroy what training stands on: the bucket
    policies refuse their deletes in the data and log buckets; a lock's lease they may remove."""
    key = f"{uuid.uuid4().hex}/raw/intel_scenes/train/sea/1.jpg"
    storage.write_bytes(object_store.bucket("data", "workers") / key, b"a training photo")
    storage.write_bytes(object_store.bucket("logs", "workers") / key, b"a task log")
    for role in ("data", "logs"):
        with pytest.raises(StorageError, match="refused this service's credentials"):
            storage.delete(object_store.bucket(role, "workers") / key)
        assert storage.exists(object_store.bucket(role, "admin") / key)
    storage.delete(object_store.bucket("data", "admin") / key)
    assert not storage.exists(object_store.bucket("data", "admin") / key)
    lease = storage.lease_path(object_store.bucket("data", "workers") / key)
    storage.write_bytes(lease, b"{}")
    storage.delete(lease)
    assert not storage.exists(lease)


def test_wrong_credentials_a_missing_bucket_and_a_store_that_is_down_are_said_plainly(object_store):
    wrong = ObjectStore(object_store.endpoint, object_store.credentials["workers"][0], "not-the-secret")
    with pytest.raises(StorageError, match="refused this service's credentials"):
        storage.files(location("s3://fsdl-data/x", wrong))

    missing = location("s3://no-such-bucket/train", object_store.store("admin"))
    with pytest.raises(StorageError, match="the bucket 'no-such-bucket' does not exist"):
        storage.read_bytes(missing / "sea" / "1.jpg")

    down = location("s3://fsdl-data/train", ObjectStore(f"http://127.0.0.1:{free_port()}", "k", "s"))
    started = time.monotonic()
    with pytest.raises(StorageError, match=r"127\.0\.0\.1.*FSDL_S3_ENDPOINT_URL"):
        storage.write_bytes(down / "sea" / "1.jpg", b"x")
    assert time.monotonic() - started < 30  # said in seconds, not after minutes of retries


def test_an_unknown_protocol_is_refused_naming_what_to_use():
    with pytest.raises(StorageError, match="unknown storage protocol 'gs'"):
        location("gs://bucket/data")
    assert location("file:///srv/data") == location("/srv/data")


def test_a_lock_has_one_holder_and_the_next_waits_for_its_release(data_root):
    name = data_root / "merges" / ".lock"
    order: list[str] = []

    def second() -> None:
        with storage.locked(name):
            order.append("second")

    with storage.locked(name) as held:
        waiter = threading.Thread(target=second)
        waiter.start()
        time.sleep(1.5)  # the waiter polls twice a second: it has had three tries
        order.append("first done")
        held.renew(every=0)
    waiter.join(timeout=20)
    assert order == ["first done", "second"]


def test_a_lock_whose_holder_is_gone_is_taken_and_a_live_one_is_waited_for(object_store):
    import json
    import socket

    name = object_store.bucket("data", "workers") / uuid.uuid4().hex / ".lock"
    lease = storage.lease_path(name)
    assert str(lease).startswith("s3://fsdl-data/locks/")  # where the workers may delete
    # A worker of this host killed while holding it: its process is gone, so the lease is taken at once.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_lease = {"owner": f"{socket.gethostname()}:{dead.stdout.strip()}:x", "expires": time.time() + 3600}
    storage.write_bytes(lease, json.dumps(dead_lease).encode())
    started = time.monotonic()
    with storage.locked(name, timeout=5):
        assert time.monotonic() - started < 3
    assert not storage.exists(lease)  # released by its holder

    # Another host's lease: waited for while it runs, taken over once it has run out.
    storage.write_bytes(lease, json.dumps({"owner": "other-host:1:y", "expires": time.time() + 3600}).encode())
    with pytest.raises(FsdlError, match="held by other-host:1:y"), storage.locked(name, timeout=1):
        pass
    storage.write_bytes(lease, json.dumps({"owner": "other-host:1:y", "expires": time.time() - 1}).encode())
    with storage.locked(name, timeout=5) as lock:
        assert json.loads(storage.read_bytes(lease))["owner"] == lock.owner


@pytest.fixture
def blocking_s3():
    """``s3://`` served by botocore's blocking client (as in the web app's gevent workers), for one test."""
    import fsspec
    import s3fs

    from fsdl_lib.blocking_s3 import PROTOCOLS, use_blocking_s3

    use_blocking_s3()
    yield
    for protocol in PROTOCOLS:
        fsspec.register_implementation(protocol, s3fs.S3FileSystem, clobber=True)


def test_the_blocking_client_keeps_every_promise_of_the_seam(object_store, blocking_s3):
    from fsdl_lib.blocking_s3 import BlockingS3FileSystem

    uploads = object_store.bucket("uploads", "webapp") / uuid.uuid4().hex
    assert isinstance(uploads.fs, BlockingS3FileSystem)
    storage.write_bytes(uploads / "pending" / "a.jpg", b"first")
    storage.write_bytes(uploads / "pending" / "a.jpg", b"second")
    assert storage.read_bytes(uploads / "pending" / "a.jpg") == b"second"
    assert storage.create(uploads / "feedback" / "sea" / "x.jpg", b"one") is True
    assert storage.create(uploads / "feedback" / "sea" / "x.jpg", b"two") is False
    assert storage.read_bytes(uploads / "feedback" / "sea" / "x.jpg") == b"one"
    assert sizes(storage.files(uploads)) == {"pending/a.jpg": 6, "feedback/sea/x.jpg": 3}
    assert storage.files(uploads)["pending/a.jpg"].modified > time.time() - 600
    assert storage.exists(uploads / "pending" / "a.jpg")
    assert not storage.exists(uploads / "pending" / "b.jpg")
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(uploads / "pending" / "b.jpg")
    storage.delete(uploads / "pending" / "a.jpg")
    storage.delete(uploads / "pending" / "a.jpg")
    assert sorted(storage.files(uploads)) == ["feedback/sea/x.jpg"]
    assert storage.read_many(uploads, ["feedback/sea/x.jpg"]) == {"feedback/sea/x.jpg": b"one"}
    # The faults read as they do through s3fs.
    with pytest.raises(StorageError, match="refused this service's credentials"):
        storage.read_bytes(object_store.bucket("data", "webapp") / "raw" / "x.jpg")
    missing = location("s3://no-such-bucket/x", object_store.store("admin"))
    with pytest.raises(StorageError, match="the bucket 'no-such-bucket' does not exist"):
        storage.read_bytes(missing / "y.jpg")
    down = location("s3://fsdl-uploads/p", ObjectStore(f"http://127.0.0.1:{free_port()}", "k", "s"))
    with pytest.raises(StorageError, match="FSDL_S3_ENDPOINT_URL"):
        storage.write_bytes(down / "a.jpg", b"x")
