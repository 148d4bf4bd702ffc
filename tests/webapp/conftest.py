"""The web app layer: a real MLflow registry holding a real small scene classifier."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fsdl_lib.config import Settings
from fsdl_webapp import create_app
from fsdl_webapp.config import WebSettings
from fsdl_webapp.throttle import BUDGETS
from tests.conftest import IMAGE_SIZE, REVIEWER, SAMPLE_DIR

UNLIMITED = dict.fromkeys(BUDGETS, "100000/minute")
"""Budgets no test of something else reaches (those tests send bursts from one client); the tests of
the budgets themselves use the defaults."""


def make_app(tmp_path: Path, extractor, model_name: str, *, start_polling: bool = False, **web):
    settings = dataclasses.replace(
        Settings.from_env(),
        data_dir=tmp_path / "data",
        scenes_model_name=model_name,
        offline_weights=True,
        image_size=IMAGE_SIZE,
    )
    web = {"reviewer_password": REVIEWER[1], "review_sample_rate": 0.0, **UNLIMITED, **web}
    web_settings = dataclasses.replace(WebSettings(), state_dir=str(tmp_path / "webapp"), **web)
    return create_app(
        {
            "TESTING": True,
            "FSDL_SETTINGS": settings,
            "WEB_SETTINGS": web_settings,
            "EXTRACTOR": extractor,
            "START_POLLING": start_polling,
        }
    )


@pytest.fixture
def app(tmp_path, extractor, production_model):
    return make_app(tmp_path, extractor, production_model)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def photo() -> bytes:
    return (SAMPLE_DIR / "forest" / "10078.jpg").read_bytes()


def written_files(root: Path) -> list[Path]:
    """Every file under ``root`` except the SQLite databases and their journals."""
    if not root.exists():
        return []
    databases = ("feedback.db", "ratelimits.db")
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(databases))
