"""Bounded work in flight (fsdl_webapp.admission): past the latency budget, a prediction gets 503 at once."""

from __future__ import annotations

import io
import threading

import pytest

from fsdl_webapp.admission import Admission, OverloadedError
from tests.webapp.conftest import PHOTO, make_app, predict


def test_depth_is_what_fits_in_the_budget():
    assert Admission(budget_seconds=2.0, service_seconds=0.25).depth == 8
    assert Admission(budget_seconds=2.0, service_seconds=0.3).depth == 6
    assert Admission(budget_seconds=0.1, service_seconds=0.5).depth == 1  # always room for one
    assert Admission(budget_seconds=2.0, service_seconds=0.25, max_depth=3).depth == 3
    with pytest.raises(ValueError, match="positive"):
        Admission(budget_seconds=0, service_seconds=0.25)


def test_measured_inferences_move_the_service_time_and_the_depth():
    admission = Admission(budget_seconds=2.0, service_seconds=0.25)
    for _ in range(40):
        admission.observe(0.5)
    assert admission.service_seconds == pytest.approx(0.5, rel=1e-3)
    assert admission.depth == 4
    admission.observe(0.0)  # a clock that did not move says nothing
    assert admission.service_seconds == pytest.approx(0.5, rel=1e-3)


def test_places_are_refused_past_the_depth_and_given_back_on_failure():
    admission = Admission(budget_seconds=1.0, service_seconds=0.5)  # depth 2
    with admission.admitted(), admission.admitted():
        assert admission.in_flight == 2
        with pytest.raises(OverloadedError) as refused, admission.admitted():
            pass
        assert refused.value.retry_after == 1
        assert refused.value.in_flight == 2
    with pytest.raises(RuntimeError), admission.admitted():
        raise RuntimeError("the model failed")
    assert admission.in_flight == 0


class Gate:
    """Holds the served model's real backbone graph at its first call until the test opens the gate."""

    def __init__(self, app, monkeypatch) -> None:
        extractor = app.extensions["fsdl_model"].current.extractor
        self._extract = extractor.extract
        self.entered = threading.Event()
        self.gate = threading.Event()
        monkeypatch.setattr(extractor, "extract", self.extract)

    def extract(self, images):
        self.entered.set()
        assert self.gate.wait(60), "the test never opened the gate"
        return self._extract(images)


def test_a_prediction_past_the_budget_gets_503_with_retry_after(tmp_path, production_model, monkeypatch):
    # One inference is assumed to take 3 s and the budget is 4 s: one prediction in flight at a time.
    app = make_app(tmp_path, production_model, latency_budget_seconds=4.0, service_seconds=3.0)
    gated = Gate(app, monkeypatch)
    first: dict = {}
    holder = threading.Thread(target=lambda: first.update(predict(app.test_client())))
    holder.start()
    try:
        assert gated.entered.wait(60)
        refused = app.test_client().post("/api/v1/predict", data={"image": (io.BytesIO(PHOTO), "photo.jpg")})
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "3"
        assert refused.json == {"error": "the server is busy; try again in 3 s"}
        scraped = app.test_client().get("/metrics").text
        assert "fsdl_webapp_in_flight 1.0" in scraped
        assert "fsdl_webapp_admission_depth 1.0" in scraped
    finally:
        gated.gate.set()
        holder.join(60)
    assert first["label"]  # the admitted one was answered
    assert "fsdl_webapp_requests_shed_total 1.0" in app.test_client().get("/metrics").text
    predict(app.test_client())  # its place is free again


def test_a_refusal_comes_before_the_budgets_and_the_upload(tmp_path, production_model, monkeypatch):
    """A shed request costs the server next to nothing: it is refused before the client's budgets are
    counted (so it spends none of them) and before the upload is read (a body that is not even an
    image gets 503, not 400)."""
    app = make_app(
        tmp_path, production_model, latency_budget_seconds=4.0, service_seconds=3.0, rate_limit_predict="2/minute"
    )
    gated = Gate(app, monkeypatch)
    holder = threading.Thread(target=lambda: predict(app.test_client()))
    holder.start()
    try:
        assert gated.entered.wait(60)
        for _ in range(5):
            refused = app.test_client().post("/api/v1/predict", data=b"not a form", content_type="text/plain")
            assert refused.status_code == 503
            assert refused.headers["Retry-After"] == "3"
    finally:
        gated.gate.set()
        holder.join(60)
    predict(app.test_client())  # the second of two a minute: the five refusals spent nothing
    over = app.test_client().post("/api/v1/predict", data={"image": (io.BytesIO(PHOTO), "photo.jpg")})
    assert over.status_code == 429
