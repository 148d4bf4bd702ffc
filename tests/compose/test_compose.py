"""The container mode, checked without a Docker engine: schema, hadolint, Compose's own reading of the
generated environments with a `make secrets` .env, secrets, ports and images. (That the generated
parts are current is tests/deploy/test_generated.py.)"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fsdl_deploy import secrets
from fsdl_deploy.compose import PER_SERVICE
from fsdl_deploy.environment import CONTAINER_SETTINGS, AirflowLayout, airflow_environment
from fsdl_deploy.objectstore import GATEWAY_TLS, IDENTITIES, credential_variables, identity_config
from fsdl_lib.config import Settings
from fsdl_webapp.config import WebSettings
from tests.conftest import ROOT

BIN = Path(sys.executable).parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DOCKERFILES = sorted(ROOT.glob("*/Dockerfile"))
DECLARED = {name for name, _, _ in Settings.variables() + WebSettings.variables()}
IMAGE_ENV = {"MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK"}  # the container mode sets these in the images (ENV)
MLFLOW_CLIENT_LOGIN = {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"}  # MLflow's own client settings


@pytest.fixture(scope="module")
def local_env(tmp_path_factory) -> dict[str, str]:
    """The environment scripts/local-env.sh builds for the distributed mode."""
    tmp = tmp_path_factory.mktemp("local-env")
    clean = {"PATH": os.environ["PATH"], "HOME": str(tmp), "FSDL_MODE": "distributed", "FSDL_STORAGE_DIR": str(tmp)}
    out = subprocess.run(
        ["bash", "-c", f". {ROOT / 'scripts' / 'local-env.sh'} && env -0"],
        env=clean, capture_output=True, check=True,
    )  # fmt: skip
    pairs = [item.split(b"=", 1) for item in out.stdout.split(b"\0") if b"=" in item]
    return {k.decode(): v.decode() for k, v in pairs}


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.primary.yml", "docker-compose.worker.yml"])
def test_compose_files_match_the_compose_specification(name):
    subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(ROOT / name)], check=True
    )


def test_the_first_host_opens_to_worker_hosts_only_on_one_address_it_must_name():
    primary = yaml.safe_load((ROOT / "docker-compose.primary.yml").read_text())["services"]
    assert set(primary) == {"redis", "postgres", "airflow-apiserver", "mlflow", "objectstore-gateway"}
    for name, service in primary.items():
        (port,) = service["ports"]
        assert re.match(r"\$\{WORKERS_BIND_HOST:\?[^}]+\}:\$\{[A-Z]+_PORT:-\d+\}:\d+$", port), f"{name}: {port}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint_passes(dockerfile):
    result = subprocess.run([str(BIN / "hadolint"), str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.fixture(scope="module")
def dotenv(tmp_path_factory) -> dict[str, str]:
    """A user's .env as `make secrets` writes it, and two settings of their own."""
    generated = {name: str(make()) for name, make in {**secrets.SECRETS, **secrets.COMPOSE}.items()}
    return {**generated, **CHOSEN}


@pytest.fixture(scope="module")
def compose_config(dotenv, tmp_path_factory) -> dict:
    """docker-compose.yml as Compose itself interpolates it with that .env (no engine needed)."""
    env_file = tmp_path_factory.mktemp("compose") / ".env"
    env_file.write_text("".join(f"{name}={shlex.quote(value)}\n" for name, value in dotenv.items()))
    out = subprocess.run(
        ["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(env_file),
         "config", "--format", "json", "--no-path-resolution"],
        capture_output=True, text=True, check=True, env={"PATH": os.environ["PATH"]},
    )  # fmt: skip
    return json.loads(out.stdout)


CHOSEN = {"FSDL_IMAGE_SIZE": "96", "WEBAPP_RATE_LIMIT_PREDICT": "7/minute", "FSDL_CELERY_CONCURRENCY": "1"}


@pytest.mark.parametrize(
    "role", ["airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker", "flower"]
)
def test_airflow_containers_get_the_derived_values_with_the_secrets_of_env(role, compose_config, dotenv):
    """As Compose reads the file: every AIRFLOW__ value is the one derived for the distributed
    topology from the containers' settings with this .env's secrets, and .env's own settings arrive."""

    def resolved(value: str) -> str:  # a secret's reference, as Compose fills it in from .env
        return re.sub(r"\$\{(\w+):\?[^}]*\}", lambda found: dotenv[found.group(1)], value)

    settings = Settings.from_env({**dotenv, **{name: resolved(value) for name, value in CONTAINER_SETTINGS.items()}})
    layout = dataclasses.replace(AirflowLayout.container(), base_url="http://localhost:8080")
    expected = airflow_environment(settings, "distributed", layout)
    env = compose_config["services"][role]["environment"]
    # Celery's results are in their own database, with a role that reaches nothing else (worker hosts hold it).
    results = f"db+postgresql://celery:{dotenv['CELERY_RESULTS_PASSWORD']}@postgres:5432/celery_results"
    expected["AIRFLOW__CELERY__RESULT_BACKEND"] = results
    assert {name: env[name] for name in expected} == expected
    for name in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
        assert env[name] == dotenv[name]
    assert env["FSDL_IMAGE_SIZE"] == "96"
    assert env["MLFLOW_TRACKING_PASSWORD"] == dotenv["MLFLOW_PIPELINES_PASSWORD"]
    # The data, the answers and the task logs on the store, with the workers' identity (no other).
    assert (env["FSDL_DATA_URL"], env["FSDL_TASK_LOGS_URL"]) == ("s3://fsdl-data", "s3://fsdl-logs/airflow")
    assert env["AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS"] == "fsdl_deploy.task_logs.LOGGING_CONFIG"
    key, secret = credential_variables("workers")
    assert (env["FSDL_S3_ACCESS_KEY_ID"], env["FSDL_S3_SECRET_ACCESS_KEY"]) == (dotenv[key], dotenv[secret])
    assert not any(name.startswith(("WEBAPP_S3_", "OBJECTSTORE_")) for name in env)
    mounts = [volume["target"] for volume in compose_config["services"][role]["volumes"]]
    assert "/opt/fsdl/data" not in mounts


def test_the_store_gateway_holds_every_identity_and_only_airflow_init_the_admin(compose_config, dotenv):
    services = compose_config["services"]
    gateway = services["objectstore-gateway"]["environment"]
    credentials = {identity: tuple(dotenv[name] for name in credential_variables(identity)) for identity in IDENTITIES}
    assert json.loads(gateway["OBJECTSTORE_IDENTITIES"]) == json.loads(identity_config(credentials))
    assert gateway[GATEWAY_TLS] == dotenv[GATEWAY_TLS]
    admin_key = dotenv[credential_variables("admin")[0]]
    holders = {name for name, service in services.items() if admin_key in json.dumps(service.get("environment", {}))}
    assert holders == {"objectstore-gateway", "airflow-init"}
    # The servers that keep the data are on the store's network alone; only the gateway joins them.
    assert set(services["objectstore"]["networks"]) == {"store"}
    assert "ports" not in services["objectstore"]
    on_store = {name for name, service in services.items() if "store" in service.get("networks", {})}
    assert on_store == {"objectstore", "objectstore-gateway"}


def test_every_web_app_setting_in_env_reaches_its_container(compose_config, dotenv):
    env = compose_config["services"]["webapp"]["environment"]
    assert env["WEBAPP_RATE_LIMIT_PREDICT"] == "7/minute"
    assert env["FSDL_IMAGE_SIZE"] == "96"
    assert env["WEBAPP_REVIEWER_PASSWORD"] == dotenv["WEBAPP_REVIEWER_PASSWORD"]
    assert "WEBAPP_STATE_DIR" not in env  # its one state folder is the mounted one
    declared = {name for name, _, _ in WebSettings.variables()} - {"WEBAPP_STATE_DIR"} - PER_SERVICE
    assert declared <= set(env)
    # Its uploads and answers are on the store's uploads bucket, reached with its own identity only.
    assert {name: env[name] for name in PER_SERVICE & set(env)} == {
        "FSDL_FEEDBACK_URL": "s3://fsdl-uploads/feedback",
        "WEBAPP_UPLOADS_URL": "s3://fsdl-uploads/pending",
        "FSDL_S3_ENDPOINT_URL": "http://objectstore-gateway:8333",
        "WEBAPP_S3_ACCESS_KEY_ID": dotenv["OBJECTSTORE_WEBAPP_ACCESS_KEY"],
        "WEBAPP_S3_SECRET_ACCESS_KEY": dotenv["OBJECTSTORE_WEBAPP_SECRET_KEY"],
    }
    assert not any(name.startswith("OBJECTSTORE_") for name in env)
    assert not any(
        name.startswith(("AIRFLOW", "POSTGRES", "REDIS", "FLOWER")) for name in env
    )  # nothing of the control plane


def test_one_secret_set_and_localhost_ports():
    common = COMPOSE["x-airflow-common"]["environment"]
    for name in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY"):
        assert common[name].startswith(f"${{{name}:?")
    assert common["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            bind = re.match(r"\$\{([A-Z]+_BIND_HOST):-127\.0\.0\.1\}:\$\{[A-Z]+_PORT:-\d+\}:\d+$", port)
            assert bind, f"{name} publishes {port}: not on loopback by default, or not configurably"
            assert bind.group(1) in DECLARED
        if name != "airflow-init":
            assert "healthcheck" in service, f"{name} has no healthcheck"
    assert int(common["AIRFLOW__CELERY__WORKER_CONCURRENCY"].split(":-")[1].rstrip("}")) <= 4


def test_compose_refuses_to_start_without_each_secret():
    """Every secret `make secrets` writes is required (`${NAME:?...}`), never given a default."""
    text = (ROOT / "docker-compose.yml").read_text()
    for name in set(secrets.SECRETS) | set(secrets.COMPOSE) - {"AIRFLOW_UID"}:
        uses = re.findall(rf"(?<!\$)\$\{{{name}(\W\W?)", text)  # $${...} is the container's shell, not compose
        assert uses or name in ("WEBAPP_SECRET_KEY",) or name.startswith("AIRFLOW__"), f"{name} is never used"
        assert all(use.startswith(":?") for use in uses), f"{name} has a fallback: {uses}"


def test_dockerfiles_build_without_a_registry_frontend_and_take_the_offline_arguments():
    for dockerfile in DOCKERFILES:
        text = dockerfile.read_text()
        assert "# syntax=" not in text, f"{dockerfile}: a syntax line makes BuildKit pull a frontend image"
        if "requirements/torch.txt" in text:
            for arg in ("TORCH_INDEX_URL", "FSDL_BAKE_WEIGHTS"):
                assert re.search(rf"^ARG {arg}=", text, flags=re.MULTILINE), f"{dockerfile} lacks ARG {arg}"
    for name, service in SERVICES.items():
        build = service.get("build")
        if build and "requirements/torch.txt" in (ROOT / build["dockerfile"]).read_text():
            assert set(build.get("args", [])) == {"TORCH_INDEX_URL", "FSDL_BAKE_WEIGHTS"}, name


def test_every_base_image_has_a_local_stand_in():
    """tests/compose/images/build.sh builds each image the Dockerfiles and compose file start from,
    and each stand-in's Dockerfile says how it differs from the official image."""
    from fsdl_tools.compose import base_images

    script = (ROOT / "tests" / "compose" / "images" / "build.sh").read_text()
    built = dict(re.findall(r"^build (\S+) (\S+\.Dockerfile)", script, flags=re.MULTILINE))
    assert base_images() == set(built)
    for dockerfile in built.values():
        text = (ROOT / "tests" / "compose" / "images" / dockerfile).read_text()
        assert "Differs from the official image" in text, dockerfile


def test_local_modes_send_no_usage_telemetry(local_env):
    """MLflow's telemetry is off for every process the local modes start (its own check says so)."""
    probe = "from mlflow.telemetry.utils import is_telemetry_disabled; print(is_telemetry_disabled())"
    out = subprocess.run([sys.executable, "-c", probe], env=local_env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
    assert local_env["DO_NOT_TRACK"] == "true"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_images_send_no_usage_telemetry(dockerfile):
    env = " ".join(re.findall(r"^ENV (.*?)(?<!\\)$", dockerfile.read_text(), flags=re.MULTILINE | re.DOTALL))
    assert "MLFLOW_DISABLE_TELEMETRY=true" in env
    assert "DO_NOT_TRACK=true" in env


def test_the_local_modes_keep_base64_secrets_whole(local_env):
    """scripts/local-env.sh reads the generated secrets back whole, '=' padding included (a shell's
    `IFS='=' read` drops a value's one trailing '=', which broke the Fernet key)."""
    import base64

    assert len(base64.urlsafe_b64decode(local_env["AIRFLOW__CORE__FERNET_KEY"])) == 32
    assert b"PRIVATE KEY" in base64.b64decode(local_env["OBJECTSTORE_GATEWAY_TLS"], validate=True)
