import re
import subprocess
import sys
from pathlib import Path

import pytest

from fsdl_lib import config
from fsdl_lib.exceptions import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_without_environment():
    settings = config.load_settings({})
    assert settings.data_dir == Path("data")
    assert settings.offline_weights is False
    assert settings.image_size == 224
    assert settings.mlflow_tracking_uri == "http://127.0.0.1:5000"
    assert settings.scenes_raw_dir == Path("data/raw/intel_scenes")
    assert settings.scenes_feedback_dir == Path("data/feedback/intel_scenes")


def test_values_are_parsed_by_type():
    settings = config.load_settings(
        {
            "FSDL_OFFLINE_WEIGHTS": "yes",
            "FSDL_IMAGE_SIZE": " 150 ",
            "FSDL_DATA_DIR": "/srv/data",
            "MLFLOW_PORT": "5001",
        }
    )
    assert settings.offline_weights is True
    assert settings.image_size == 150
    assert settings.data_dir == Path("/srv/data")
    assert settings.mlflow_tracking_uri == "http://127.0.0.1:5001"


def test_explicit_tracking_uri_wins():
    settings = config.load_settings({"MLFLOW_TRACKING_URI": "http://mlflow:5000", "MLFLOW_PORT": "5001"})
    assert settings.mlflow_tracking_uri == "http://mlflow:5000"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("FSDL_OFFLINE_WEIGHTS", "maybe", "a boolean"),
        ("FSDL_IMAGE_SIZE", "big", "an integer"),
        ("FSDL_BATCH_SIZE", "-1", "a non-negative integer"),
        ("FSDL_DATA_DIR", "  ", "a path"),
    ],
)
def test_bad_values_name_the_variable(name, value, expected):
    with pytest.raises(ConfigError, match=re.escape(name)) as info:
        config.load_settings({name: value})
    assert expected in str(info.value)
    assert info.value.name == name


def test_import_has_no_side_effects(tmp_path):
    missing = tmp_path / "nowhere"
    code = (
        "import fsdl_lib, fsdl_lib.config, sys; fsdl_lib.config.load_settings(); "
        "print(sorted(m for m in sys.modules if m in {'torch', 'mlflow', 'sklearn'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"FSDL_DATA_DIR": str(missing), "FSDL_STORAGE_DIR": str(missing), "PATH": "/usr/bin"},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.strip() == "[]"
    assert not missing.exists()


def test_as_environment_round_trips():
    settings = config.load_settings({"FSDL_OFFLINE_WEIGHTS": "1", "FSDL_IMAGE_SIZE": "96"})
    again = config.load_settings(settings.as_environment())
    assert again.offline_weights is True
    assert again.image_size == 96
    assert again.data_dir == settings.data_dir.absolute()


def test_each_service_has_its_own_bind_address_and_clients_reach_it():
    settings = config.load_settings({"MLFLOW_BIND_HOST": "0.0.0.0", "WEBAPP_BIND_HOST": "10.1.2.3"})
    assert settings.airflow_bind_host == "127.0.0.1"  # opening one service opens no other
    assert settings.flower_bind_host == "127.0.0.1"
    assert settings.mlflow_tracking_uri == "http://127.0.0.1:5000"  # reached on loopback when bound to all
    assert settings.webapp_url == "http://10.1.2.3:8000"
