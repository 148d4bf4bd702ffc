#!/usr/bin/env python3
"""The platform under `docker compose`, measured in one run: build time cold and warm, image sizes,
seconds from `up` to every service healthy, memory per container at rest and during training, and
the flywheel turnaround through the containers next to the same turnaround on `make
up-distributed`'s processes with the same data.

Needs a running Docker engine with Compose v2 and the base images (official, or the stand-ins from
tests/compose/images/build.sh), Postgres and Redis on 127.0.0.1 for the distributed run. `--cold`
first removes the project's images and the build cache (the base images stay).

    .venv/bin/python benchmarks/bench_compose.py [--cold] [--train-images 90] [--skip-distributed]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

from bench_flywheel import photos, prepare_scenes, say, turn_distributed, turnaround

from fsdl_lib import storage
from fsdl_tools.clients import AirflowClient, WebappClient
from fsdl_tools.compose import ComposeProject, docker, offline_settings
from fsdl_tools.flywheel import Flywheel

IMAGES = ("fsdl-airflow:3.3.2", "fsdl-webapp:0.1.0", "fsdl-mlflow:3.17.2")


def peak_memory(project: ComposeProject, stop: threading.Event, peak: dict[str, float]) -> None:
    while not stop.wait(3):
        for service, mib in project.memory().items():
            peak[service] = max(peak.get(service, 0.0), mib)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", action="store_true", help="remove the project's images and the build cache first")
    parser.add_argument("--train-images", type=int, default=90, help="training images (90: the seeded sample)")
    parser.add_argument("--skip-distributed", action="store_true")
    args = parser.parse_args()
    settings = offline_settings()
    results: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="fsdl-bench-compose-") as tmp_name:
        tmp = Path(tmp_name)
        project = ComposeProject(tmp / "fsdl", settings, name="fsdlbench").create()
        try:
            if args.cold:
                docker("image", "rm", "--force", *IMAGES, check=False)
                docker("builder", "prune", "--all", "--force", timeout=600)
                results["build, cold"] = f"{project.timed('build', timeout=3600):.0f} s"
            else:
                project.timed("build", timeout=3600)  # whatever is cached
            results["build, nothing changed"] = f"{project.timed('build'):.1f} s"
            (project.dir / "fsdl_lib" / "src" / "fsdl_lib" / "classes.py").open("a").write("\n")
            results["build, one library file changed"] = f"{project.timed('build'):.0f} s"
            for image in IMAGES:
                size = int(docker("image", "inspect", "-f", "{{.Size}}", image).stdout) / 2**30
                results[f"image {image}"] = f"{size:.2f} GiB"

            scenes = tmp / "intel_scenes"
            n_train = prepare_scenes(scenes, args.train_images)
            results["up until every service healthy"] = (
                f"{project.timed('up', '--detach', '--wait', '--wait-timeout', '900'):.0f} s"
            )
            # airflow-init seeded the sample photos into the store; add what prepare_scenes grew.
            bucket = project.store_location("s3://fsdl-data/raw/intel_scenes")
            present = storage.files(bucket)
            for photo in scenes.rglob("*.jpg"):
                name = photo.relative_to(scenes).as_posix()
                if name not in present:
                    storage.write_bytes(bucket / name, photo.read_bytes())
            time.sleep(20)
            at_rest = project.memory()

            os.environ.update(
                MLFLOW_TRACKING_URI=project.url("MLFLOW_PORT"),
                MLFLOW_TRACKING_USERNAME="admin",
                MLFLOW_TRACKING_PASSWORD=project.env["MLFLOW_AUTH_ADMIN_PASSWORD"],
            )
            airflow = AirflowClient(project.url("AIRFLOW_PORT"), "admin", project.env["AIRFLOW_ADMIN_PASSWORD"])
            airflow.login()
            airflow.wait_for_dags({"intel_scenes_parallel", "feedback_sync"}, 180)
            webapp = WebappClient(
                project.url("WEBAPP_PORT"), reviewer=("reviewer", project.env["WEBAPP_REVIEWER_PASSWORD"])
            )
            wheel = Flywheel(airflow, webapp, "intel-scenes", say=say, timeout=3600)
            print(f"{n_train} training images, 224x224, docker compose:", flush=True)
            stop, peak = threading.Event(), {}
            sampler = threading.Thread(target=peak_memory, args=(project, stop, peak), daemon=True)
            sampler.start()
            compose_report = wheel.turn(photos())
            stop.set()
            sampler.join()
        finally:
            project.destroy()
        distributed = None
        if not args.skip_distributed:
            (tmp / "distributed").mkdir()
            distributed = turn_distributed(tmp / "distributed", args.train_images, 224)

    print("\n| what | measured |\n|---|---|")
    for what, value in results.items():
        print(f"| {what} | {value} |")
    print("\n| container | at rest (MiB) | training, peak (MiB) |\n|---|---|---|")
    for service in sorted(set(at_rest) | set(peak)):
        print(f"| {service} | {at_rest.get(service, 0):.0f} | {peak.get(service, 0):.0f} |")
    print(f"| all | {sum(at_rest.values()):.0f} | {sum(peak.values()):.0f} (sum of peaks) |")
    print("\n| step | docker compose (s) | make up-distributed (s) | ratio |\n|---|---|---|---|")
    steps = [*compose_report.timings, "feedback POSTs -> new version served"]
    for step in steps:
        ours = turnaround(compose_report) if step.startswith("feedback POSTs") else compose_report.timings[step]
        if distributed is None:
            print(f"| {step} | {ours:.1f} | | |")
            continue
        theirs = turnaround(distributed) if step.startswith("feedback POSTs") else distributed.timings[step]
        print(f"| {step} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f}x |")


if __name__ == "__main__":
    main()
