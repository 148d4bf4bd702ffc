"""The container mode, checked without a Docker engine: schema, hadolint, and agreement with the
Procfile of the distributed mode (same commands, same environment variable names per role)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fsdl_lib.config import Settings
from fsdl_lib.services import AirflowLayout, airflow_environment, local_environment, mlflow_server_environment
from fsdl_tools.launcher import procfile
from fsdl_webapp.config import WebSettings
from tests.conftest import ROOT

BIN = Path(sys.executable).parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DOCKERFILES = sorted(ROOT.glob("*/Dockerfile"))
DECLARED = {name for name, _, _ in Settings.variables() + WebSettings.variables()}
IMAGE_ENV = {"MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK"}  # the container mode sets these in the images (ENV)
MLFLOW_CLIENT_LOGIN = {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"}  # MLflow's own client settings


def normalised(argv: list[str]) -> list[str]:
    """The program, its subcommands and option names; option values (literal or $VAR) are blanked."""
    out: list[str] = []
    for token in argv:
        out.append("<value>" if out and out[-1].startswith("--") and not token.startswith("--") else token)
    return out


def compose_argv(name: str) -> list[str]:
    service = SERVICES[name]
    command = service["command"]
    argv = shlex.split(command) if isinstance(command, str) else [str(t) for t in command]
    if service.get("image", "").startswith("fsdl-airflow"):
        argv = ["airflow", *argv]  # the Airflow image's entrypoint runs `airflow <command>`
    if service.get("image", "").startswith("prom/prometheus"):
        argv = ["prometheus", *argv]  # the image's entrypoint is the server
    return argv


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


def test_compose_file_matches_the_compose_specification():
    subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
        check=True,
    )


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint_passes(dockerfile):
    result = subprocess.run([str(BIN / "hadolint"), str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_every_process_of_the_distributed_mode_is_a_compose_service():
    processes = procfile(ROOT / "Procfile.distributed")
    assert set(processes) <= set(SERVICES)
    assert set(SERVICES) - set(processes) == {"postgres", "redis", "airflow-init"}


@pytest.mark.parametrize("role", sorted(procfile(ROOT / "Procfile.distributed")))
def test_same_command_in_both_modes(role):
    local = normalised(shlex.split(procfile(ROOT / "Procfile.distributed")[role]))
    assert normalised(compose_argv(role)) == local


def test_embedded_procfile_runs_the_same_commands_for_its_roles():
    embedded, distributed = procfile(ROOT / "Procfile"), procfile(ROOT / "Procfile.distributed")
    for role, command in embedded.items():
        assert distributed[role] == command


# What docker-compose.yml's containers share with the local modes' processes: the settings inside
# a container (data and state mounted under /opt/fsdl, every service listening on all interfaces at
# its default port, Postgres and Redis reached by service name) and the official image's paths.
CONTAINER_SETTINGS = {
    "FSDL_DATA_DIR": "/opt/fsdl/data",
    "FSDL_STORAGE_DIR": "/opt/fsdl/storage",
    "AIRFLOW_BIND_HOST": "0.0.0.0",
    "FLOWER_BIND_HOST": "0.0.0.0",
    "MLFLOW_BIND_HOST": "0.0.0.0",
    "WEBAPP_BIND_HOST": "0.0.0.0",
    "MLFLOW_TRACKING_URI": "http://mlflow:5000",
    "FSDL_POSTGRES_URL": "postgresql+psycopg2://airflow:{POSTGRES_PASSWORD}@postgres/airflow",
    "FSDL_REDIS_URL": "redis://:{REDIS_PASSWORD}@redis:6379/0",
    "FSDL_STATSD_HOST": "statsd-exporter",
}
AIRFLOW_HOME_IN_IMAGE = Path("/opt/airflow")


@pytest.fixture(scope="module")
def dotenv(tmp_path_factory) -> dict[str, str]:
    """A user's .env as `make secrets` writes it: every secret set, nothing else changed."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_secrets", ROOT / "scripts" / "make_secrets.py")
    make_secrets = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_secrets)
    secrets = {name: make() for name, make in {**make_secrets.SECRETS, **make_secrets.COMPOSE}.items()}
    return {name: str(value) for name, value in secrets.items()}


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


def container_settings(dotenv: dict[str, str]) -> Settings:
    inside = {name: value.format(**dotenv) for name, value in CONTAINER_SETTINGS.items()}
    return Settings.from_env({**dotenv, **inside})


@pytest.mark.parametrize(
    "role", ["airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker", "flower"]
)
def test_airflow_containers_get_the_derived_values(role, compose_config, dotenv):
    """Every AIRFLOW__ value in the compose file is the one fsdl_lib.services derives for the
    distributed topology, given the containers' settings: no literal written twice can drift."""
    settings = container_settings(dotenv)
    layout = AirflowLayout(
        home=AIRFLOW_HOME_IN_IMAGE,
        dags_folder=AIRFLOW_HOME_IN_IMAGE / "dags",
        passwords_file=AIRFLOW_HOME_IN_IMAGE / "auth" / "passwords.json",
        base_url=f"http://localhost:{settings.airflow_port}",  # the published port, as the browser sees it
        execution_api_url=f"http://airflow-apiserver:{settings.airflow_port}/execution/",
    )
    expected = airflow_environment(settings, "distributed", layout)
    env = compose_config["services"][role]["environment"]
    airflow = {name: value for name, value in env.items() if name.startswith("AIRFLOW__")}
    shared_secrets = {"AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"}
    assert set(airflow) == set(expected) | shared_secrets
    assert {name: airflow[name] for name in expected} == expected
    for name in shared_secrets:
        assert airflow[name] == dotenv[name]
    platform = {n for n in env if not n.startswith("AIRFLOW__")} - {"DUMB_INIT_SETSID"}
    assert platform <= DECLARED | MLFLOW_CLIENT_LOGIN
    declared = settings.as_environment()
    for name in platform & DECLARED:
        assert env[name] == declared[name], name


def test_local_distributed_mode_gets_the_same_airflow_variables(local_env, compose_config):
    compose = {n for n in compose_config["services"]["airflow-worker"]["environment"] if n.startswith("AIRFLOW__")}
    assert {n for n in local_env if n.startswith("AIRFLOW__")} == compose


def test_mlflow_container_gets_the_derived_values(compose_config, dotenv, local_env):
    settings = container_settings(dotenv)
    env = compose_config["services"]["mlflow"]["environment"]
    expected = mlflow_server_environment(settings)
    assert {name: env.get(name) for name in expected} == expected
    command = compose_config["services"]["mlflow"]["command"]
    allowed = command[command.index("--allowed-hosts") + 1]
    assert allowed == local_environment(settings, "distributed", root=ROOT, environ={})["MLFLOW_ALLOWED_HOSTS"]
    clients = DECLARED | IMAGE_ENV | MLFLOW_CLIENT_LOGIN
    local_server = {n for n in local_env if n.startswith("MLFLOW_") and n not in clients}
    assert set(expected) <= local_server
    assert local_server - {"MLFLOW_ALLOWED_HOSTS"} <= set(env)  # the container gets every one (as a flag for this)


def test_webapp_container_gets_declared_variables(compose_config, dotenv, local_env):
    env = compose_config["services"]["webapp"]["environment"]
    assert set(env) <= DECLARED
    web_defaults = {name: default for name, default, _ in WebSettings.variables()}
    for name in set(env) - set(local_env):  # passed through from .env; locally .env is read directly
        assert env[name] == web_defaults[name], f"{name}: the container's default differs from the app's"
    settings = container_settings(dotenv)
    declared = settings.as_environment()
    for name in set(env) & set(declared):
        assert env[name] == declared[name], name


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
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_secrets", ROOT / "scripts" / "make_secrets.py")
    make_secrets = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_secrets)
    text = (ROOT / "docker-compose.yml").read_text()
    secrets = set(make_secrets.SECRETS) | set(make_secrets.COMPOSE) - {"AIRFLOW_UID"}
    for name in secrets:
        uses = re.findall(rf"(?<!\$)\$\{{{name}(\W\W?)", text)  # $${...} is the container's shell, not compose
        assert uses or name in ("WEBAPP_SECRET_KEY",) or name.startswith("AIRFLOW__"), f"{name} is never used"
        assert all(use.startswith(":?") for use in uses), f"{name} has a fallback: {uses}"


def test_env_example_names_the_compose_variables():
    text = (ROOT / ".env.example").read_text()
    referenced = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", (ROOT / "docker-compose.yml").read_text()))
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))
    assert referenced <= listed, f"missing from .env.example: {sorted(referenced - listed)}"


def test_dockerfiles_build_without_a_registry_frontend_and_take_the_offline_arguments():
    for dockerfile in DOCKERFILES:
        text = dockerfile.read_text()
        assert "# syntax=" not in text, f"{dockerfile}: a syntax line makes BuildKit pull a frontend image"
        if "torch==" in text:
            for arg in ("TORCH_INDEX_URL", "FSDL_BAKE_WEIGHTS"):
                assert re.search(rf"^ARG {arg}=", text, flags=re.MULTILINE), f"{dockerfile} lacks ARG {arg}"
    for name, service in SERVICES.items():
        build = service.get("build")
        if build and "torch==" in (ROOT / build["dockerfile"]).read_text():
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
