#!/usr/bin/env python3
"""Extraction through Celery workers on other hosts: one worker host of one CPU against two, in one run.

The first host runs docker-compose.yml with docker-compose.primary.yml, its own worker on the default
queue only, the compute tasks on the queue ``compute``. Worker hosts are projects of
docker-compose.worker.yml (each in a network of its own, reaching the first host's published ports,
as in the live compose test), limited with compose's ``cpus: 1`` to one task at a time
(benchmarks/compose.one-cpu.yml). The first ``--per-class`` photos of each class of ``--photos`` go
into the store's training split (read by path, never copied into the repository). Then, for one and
for two worker hosts: the feature store is emptied, ``intel_scenes_sequential`` is triggered, and its
extraction is timed from the Airflow API's task instances, from the first shard queued to the last one
done; the run is stopped once ``create_dataset`` has the shards. Printed: the speed-up, each shard's
wait in the broker and its seconds per image, and projections for a larger set, labelled as such.

    .venv/bin/python benchmarks/bench_worker_hosts.py --photos ../shared/data/intel_scenes_train_8k
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from fsdl_lib import storage
from fsdl_lib.classes import SCENE_CLASSES
from fsdl_tools.clients import AirflowClient, free_port, wait_until
from fsdl_tools.compose import ComposeProject, offline_settings

DAG = "intel_scenes_sequential"
QUEUE = "compute"


def cpu_seconds(projects: list[ComposeProject]) -> dict[str, float]:
    """CPU time each project's containers have used so far, from their cgroups (v1 cpuacct or v2 cpu.stat)."""
    used: dict[str, float] = {}
    for project in projects:
        ids = subprocess.run(
            ["docker", "ps", "-q", "--no-trunc", "--filter", f"label=com.docker.compose.project={project.name}"],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        total = 0.0
        for cid in ids:
            v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage")
            v2 = Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat")
            if v1.exists():
                total += int(v1.read_text()) / 1e9
            elif v2.exists():
                total += int(v2.read_text().split("usage_usec")[1].split()[0]) / 1e6
        used[project.name] = total
    return used


def seconds(start: str | None, end: str | None) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() if start and end else 0.0


def seed(project: ComposeProject, photos: Path, per_class: int) -> int:
    train = project.store_location("s3://fsdl-data/raw/intel_scenes/train")
    count = 0
    for label in SCENE_CLASSES:
        for photo in sorted((photos / label).iterdir())[:per_class]:
            storage.write_bytes(train / label / f"bench-{photo.name}", photo.read_bytes(), durable=False)
            count += 1
    return count


def empty_feature_store(project: ComposeProject) -> int:
    processed = project.store_location("s3://fsdl-data/processed")
    names = list(storage.files(processed))
    for name in names:
        storage.delete(processed / name)
    return len(names)


def extraction(airflow: AirflowClient, timeout: float) -> dict[str, Any]:
    """Trigger the DAG; once create_dataset is done, stop the run and return its extraction's figures."""
    run_id = airflow.trigger(DAG)

    def dataset_done() -> list[dict[str, Any]] | None:
        instances = airflow.task_instances(DAG, run_id)
        done = [ti for ti in instances if ti["task_id"] == "create_dataset" and ti["state"] in ("success", "failed")]
        return instances if done else None

    instances = wait_until(dataset_done, timeout, "the dataset", interval=3)
    airflow.request("PATCH", f"/dags/{DAG}/dagRuns/{run_id}", json={"state": "failed"})  # no training
    shards = [ti for ti in instances if ti["task_id"] == "extract_features" and ti["state"] == "success"]
    (dataset,) = [ti for ti in instances if ti["task_id"] == "create_dataset"]
    assert dataset["state"] == "success", dataset
    images = [int(ti["rendered_map_index"].split("(")[1].split()[0]) for ti in shards]
    return {
        "images": sum(images),
        "shards": len(shards),
        "wall": seconds(min(ti["queued_when"] for ti in shards), max(ti["end_date"] for ti in shards)),
        "waits": [seconds(ti["queued_when"], ti["start_date"]) for ti in shards],
        "per_image": [seconds(ti["start_date"], ti["end_date"]) / n for ti, n in zip(shards, images, strict=True)],
        "busy": sum(seconds(ti["start_date"], ti["end_date"]) for ti in shards),
        "hosts": sorted({ti["hostname"] for ti in shards}),
        "dataset": seconds(dataset["start_date"], dataset["end_date"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, required=True, help="a folder of class folders of photos")
    parser.add_argument("--per-class", type=int, default=333, help="photos of each class (333: 1,998 in all)")
    parser.add_argument("--shard-size", type=int, default=256, help="FSDL_EXTRACT_SHARD_SIZE")
    parser.add_argument("--project", type=int, nargs="*", default=[14_034], help="photos to project times for")
    args = parser.parse_args()
    settings = {
        **offline_settings(),
        "FSDL_IMAGE_SIZE": "224",
        "FSDL_EXTRACT_SHARD_SIZE": str(args.shard_size),
        "FSDL_COMPUTE_QUEUE": QUEUE,
        "FSDL_WORKER_QUEUES": "default",  # the first host's own worker takes no compute task
        "WORKERS_BIND_HOST": ComposeProject.bridge_gateway(),
        "REDIS_PORT": str(free_port()),
        "POSTGRES_PORT": str(free_port()),
    }
    results: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="fsdl-bench-workers-") as tmp_name:
        tmp = Path(tmp_name)
        files = ("docker-compose.yml", "docker-compose.primary.yml")
        primary = ComposeProject(tmp / "fsdl", settings, name="fsdlbenchhosts", files=files).create()
        hosts: list[ComposeProject] = []
        try:
            print("starting the first host ...", flush=True)
            primary.compose("up", "--detach", "--build", "--wait", "--wait-timeout", "900", timeout=3600)
            print(f"seeded {seed(primary, args.photos, args.per_class)} photos into the training split", flush=True)
            airflow = AirflowClient(primary.url("AIRFLOW_PORT"), "admin", primary.env["AIRFLOW_ADMIN_PASSWORD"])
            airflow.login()
            airflow.wait_for_dags({DAG}, 300)
            for count in (1, 2):
                while len(hosts) < count:
                    host = primary.worker_host(tmp / f"host{len(hosts) + 1}", settings["WORKERS_BIND_HOST"],
                                               f"benchhost{len(hosts) + 1}", overrides=("benchmarks/compose.one-cpu.yml",))  # fmt: skip
                    with (host.dir / ".env").open("a") as env:
                        env.write(f"FSDL_WORKER_QUEUES={QUEUE}\n")
                    host.compose("up", "--detach", "--no-build", "--wait", "--wait-timeout", "300", timeout=400)
                    hosts.append(host)
                removed = empty_feature_store(primary)
                print(f"{count} worker host(s): feature store emptied ({removed} objects); extracting ...", flush=True)
                before = cpu_seconds([primary, *hosts])
                results[count] = extraction(airflow, 3600)
                after = cpu_seconds([primary, *hosts])
                results[count]["cpu"] = {name: after[name] - before.get(name, 0.0) for name in after}
                print(f"  {results[count]['images']} images in {results[count]['shards']} shards on "
                      f"{results[count]['hosts']}: {results[count]['wall']:.1f} s", flush=True)  # fmt: skip
                time.sleep(10)  # the stopped run's last task ends
        finally:
            for host in hosts:
                host.destroy()
            primary.destroy()

    one, two = results[1], results[2]
    print("\nextraction through Celery, the broker and the object store (compose, cpus: 1 per worker host):")
    for count, r in results.items():
        print(f"  {count} worker host(s): {r['images']} images, {r['shards']} shards, {r['wall']:7.1f} s, "
              f"{r['images'] / r['wall']:5.1f} img/s; per image in a shard {statistics.mean(r['per_image']) * 1000:.0f} ms "
              f"(min {min(r['per_image']) * 1000:.0f}, max {max(r['per_image']) * 1000:.0f}); "
              f"a shard's wait for a worker: median {statistics.median(r['waits']):.1f} s; "
              f"create_dataset {r['dataset']:.1f} s")  # fmt: skip
    for count, r in results.items():
        spent = ", ".join(f"{name} {cpu:.0f} s" for name, cpu in r["cpu"].items())
        print(f"  CPU time used from the trigger to the dataset, {count} worker host(s): {spent}")
    between = (one["wall"] - one["busy"]) / one["images"]
    print(
        f"  one worker host: {one['busy']:.1f} s inside the shards (reading photos from the store, extracting, "
        f"writing features), {one['wall'] - one['busy']:.1f} s between them (broker, scheduler, task start): "
        f"{between * 1000:.1f} ms per image on top of {one['busy'] / one['images'] * 1000:.0f} ms"
    )
    speedup = (two["images"] / two["wall"]) / (one["images"] / one["wall"])
    print(f"  two worker hosts against one: {speedup:.2f}x (goal >= 1.8x)")
    per_image = one["wall"] / one["images"]  # one worker, everything included
    efficiency = speedup / 2
    print("\nprojection (not measured): extraction of N photos from the one-host rate, "
          f"{per_image * 1000:.0f} ms per image, and the measured two-host efficiency {efficiency:.2f} per host:")  # fmt: skip
    for total in args.project:
        row = ", ".join(
            f"{n} host(s) {total * per_image / (n * (efficiency if n > 1 else 1.0)) / 60:.1f} min" for n in (1, 2, 4)
        )
        print(f"  {total:,} photos: {row}")


if __name__ == "__main__":
    main()
