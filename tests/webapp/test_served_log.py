"""The served history (fsdl_webapp.served_log): which version served when, with its live figures, as
the model page shows it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from tests.conftest import SAMPLE_DIR
from tests.webapp.conftest import answer, make_app, predict


def test_the_model_page_lists_which_version_served_when_with_its_figures(tmp_path, extractor, registry):
    name = f"history-{uuid.uuid4().hex[:6]}"
    registry.register(name)
    app = make_app(tmp_path, name)
    client = app.test_client()
    photo = sorted((SAMPLE_DIR / "forest").glob("*.jpg"))[0].read_bytes()
    body = predict(client, photo)
    assert answer(client, body, body["label"]).status_code == 200
    registry.register(name, "knn_7")  # version 2 becomes production
    assert app.extensions["fsdl_model"].refresh() is True

    history = app.extensions["fsdl_records"].served.history()
    assert [h["model_version"] for h in history] == ["2", "1"]
    newest, older = history
    assert older["ended_at"] == newest["started_at"]
    assert newest["ended_at"] is None
    assert (older["predictions"], older["answers"], older["live_accuracy"]) == (1, 1, 1.0)
    assert (newest["predictions"], newest["answers"], newest["live_accuracy"]) == (0, 0, None)

    page = client.get("/model").get_data(as_text=True)
    table = page[page.index('id="served-history"') :]
    assert table.index("/versions/2") < table.index("/versions/1")  # newest first, linked into MLflow
    assert "knn_7" in table
    assert "logreg_c1" in table
    assert f'datetime="{_iso(newest["started_at"])}"' in table  # shown in the reader's time zone by the page


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
