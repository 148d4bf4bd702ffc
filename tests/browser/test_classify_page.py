"""Headless Chromium (Debian's, driven by Playwright) clicks through the page like a user."""

from __future__ import annotations

import sqlite3

import pytest
from playwright.sync_api import Page, expect

from fsdl_tools.clients import wait_until
from tests.conftest import REVIEWER, SAMPLE_DIR

pytestmark = pytest.mark.slow


def csp_violations(page: Page) -> list[str]:
    """What the page's Content-Security-Policy blocks from now on (the list fills as it happens):
    the pages must work under it, with nothing refused."""
    found: list[str] = []

    def note(message) -> None:
        if "Content Security Policy" in message.text:
            found.append(message.text)

    page.on("console", note)
    return found


def test_classify_correct_and_send_feedback(browser, webapp_server, tmp_path):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    refused = csp_violations(page)
    page.goto(webapp_server.url)
    photo = sorted((SAMPLE_DIR / "mountain").glob("*.jpg"))[0]
    page.set_input_files("#image-input", str(photo))
    page.wait_for_selector("#preview:not(.d-none)")
    page.click("#classify-button")
    page.wait_for_selector("#result-card:not(.d-none)")
    predicted = page.inner_text("#result-label")
    assert page.locator("#probabilities .progress").count() == 6
    assert "version 1" in page.inner_text("#result-model")

    page.check("#correct-no")
    assert page.is_visible("#label-choice")
    assert page.locator("#label-choice input:checked").count() == 0  # nothing pre-selected
    assert page.is_disabled("#feedback-button")
    page.check(f"#label-{predicted}")
    assert page.is_disabled("#feedback-button"), "the predicted class cannot be a correction"
    correction = next(c for c in ("forest", "mountain", "glacier") if c != predicted)
    page.check(f"#label-{correction}")
    page.click("#feedback-button")
    page.wait_for_selector("#message.alert-success")
    assert correction in page.inner_text("#message")
    assert "once a reviewer has checked it" in page.inner_text("#message")
    page.screenshot(path=str(tmp_path / "feedback.png"), full_page=True)

    assert not list((webapp_server.data_dir / "feedback").rglob("*.jpg")), "an unreviewed answer reached training"
    with sqlite3.connect(webapp_server.state_dir / "feedback.db") as db:
        row = db.execute(
            "SELECT predicted_label, feedback_label, feedback_correct, review_state FROM predictions"
        ).fetchone()
    assert row == (predicted, correction, 0, "pending")

    page.click("text=Monitoring")
    page.wait_for_selector("#timeline-chart svg rect")
    page.wait_for_selector("#corrections-table tbody")
    cell = page.locator("#corrections-table tbody tr", has_text=predicted).first
    assert "1" in cell.inner_text()
    assert page.locator("#versions-table tbody tr").count() == 1
    page.screenshot(path=str(tmp_path / "monitoring.png"), full_page=True)

    page.click("text=Model")
    page.wait_for_selector("#served-history")
    loaded = page.locator("#model-details time")
    assert "+00:00" in loaded.get_attribute("datetime")
    assert "+00:00" not in loaded.inner_text()  # shown in the reader's time zone, not as ISO text
    assert page.locator("#served-history tbody tr").count() == 1
    assert refused == []
    page.close()


def test_a_bad_file_shows_its_error_in_the_page(browser, webapp_server, tmp_path):
    page = browser.new_page(viewport={"width": 375, "height": 740})  # a phone
    page.goto(webapp_server.url)
    fake = tmp_path / "holiday.jpg"
    fake.write_text("this is not a photo")
    page.set_input_files("#image-input", str(fake))
    page.click("#classify-button")
    page.wait_for_selector("#message.alert-danger")
    assert "Could not classify: not a usable image" in page.inner_text("#message")
    page.screenshot(path=str(tmp_path / "phone-error.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375, "the page scrolls sideways on a phone"
    assert not list(webapp_server.data_dir.rglob("*.jpg"))
    assert not list((webapp_server.state_dir / "uploads").iterdir())
    page.close()


def answered(webapp_server, photos) -> list[dict]:
    """Classify ``photos`` and correct each to another class through the API; returns the answers."""
    import requests

    answers = []
    for photo in photos:
        with photo.open("rb") as handle:
            response = requests.post(f"{webapp_server.url}/api/v1/predict", files={"image": handle}, timeout=60)
        prediction = response.json()
        claim = next(c for c in ("buildings", "street") if c != prediction["label"])
        body = {"prediction_id": prediction["prediction_id"], "correct": False, "label": claim}
        assert requests.post(f"{webapp_server.url}/api/v1/feedback", json=body, timeout=60).status_code == 200
        answers.append({**prediction, "claim": claim})
    return answers


def test_review_page_keyboard_bulk_and_relabel(browser, webapp_server, tmp_path):
    photos = sorted((SAMPLE_DIR / "glacier").glob("*.jpg"))[:5]
    answers = answered(webapp_server, photos)
    anonymous = browser.new_context()
    assert anonymous.request.get(f"{webapp_server.url}/review").status == 401  # no login, no page
    anonymous.close()

    context = browser.new_context(http_credentials={"username": REVIEWER[0], "password": REVIEWER[1]})
    page = context.new_page()
    refused = csp_violations(page)
    page.goto(f"{webapp_server.url}/review")
    page.wait_for_selector("#queue .review-item")
    assert page.locator("#queue .review-item").count() == 5
    assert "5 waiting for review" in page.inner_text("#queue-summary")
    first = page.locator("#queue .review-item").first
    # The upload is shown (images load as they scroll into view; wait for this one's to decode).
    assert first.locator("img").evaluate("img => img.decode().then(() => img.naturalWidth)") > 0
    assert "Claimed:" in first.inner_text()
    assert "sure" in first.inner_text()  # the model's class and confidence

    def decide_by_key(key: str, remaining: int) -> str:
        focused = page.locator("#queue .review-item.active-item").get_attribute("data-id")
        page.keyboard.press(key)
        expect(page.locator("#queue .review-item")).to_have_count(remaining)
        return focused

    accepted = decide_by_key("a", 4)
    rejected = decide_by_key("r", 3)
    relabelled = decide_by_key("3", 2)  # the third class: glacier
    page.screenshot(path=str(tmp_path / "review.png"), full_page=True)
    page.click("#select-all")
    page.click("#accept-selected")
    page.wait_for_selector("#queue-summary:has-text('Nothing waits for review')")
    expect(page.locator("#decision-log tbody tr")).to_have_count(5)
    assert refused == []
    log = page.inner_text("#decision-log")
    assert log.count(REVIEWER[0]) == 5
    assert "relabel" in log
    assert "reject" in log

    with sqlite3.connect(webapp_server.state_dir / "feedback.db") as db:
        states = dict(db.execute("SELECT id, review_state || ':' || COALESCE(review_label, '') FROM predictions"))
    claims = {a["prediction_id"]: a["claim"] for a in answers}
    assert states[accepted] == f"accepted:{claims[accepted]}"
    assert states[rejected] == "rejected:"
    assert states[relabelled] == "accepted:glacier"
    assert sum(1 for state in states.values() if state.startswith("accepted")) == 4
    feedback = webapp_server.data_dir / "feedback" / "intel_scenes"
    assert len(list(feedback.rglob("*.jpg"))) == 4  # everything but the rejected answer
    assert len(list((feedback / "glacier").glob("*.jpg"))) == 1
    context.close()


def test_monitoring_page_charts_drift_checks_with_their_threshold(browser, tmp_path, production_model, mlflow_server):
    import requests

    from tests.conftest import WebappServer

    server = WebappServer(tmp_path, production_model, WEBAPP_DRIFT_INTERVAL_SECONDS="1", WEBAPP_DRIFT_WINDOW="8",
                          WEBAPP_DRIFT_MIN_WINDOW="8").start()  # fmt: skip
    try:
        for photo in sorted(SAMPLE_DIR.glob("*/*.jpg"))[::15]:
            with photo.open("rb") as f:
                assert requests.post(f"{server.url}/api/v1/predict", files={"image": f}, timeout=60).ok
        wait_until(
            lambda: requests.get(f"{server.url}/api/v1/drift", timeout=10).json()["checks"],
            60, "a drift check", describe=lambda: server.log.read_text()[-3000:],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(f"{server.url}/monitoring")
        page.wait_for_selector("#drift-chart svg rect")
        assert page.locator("#drift-chart line.threshold").count() == 1
        assert page.locator("#classes-chart svg rect").count() >= 6
        assert "Newest check" in page.inner_text("#drift-status")
        page.screenshot(path=str(tmp_path / "drift.png"), full_page=True)
        page.close()
    finally:
        server.stop()


def test_a_person_rolls_production_back_from_the_model_page(browser, tmp_path, registry, mlflow_server):
    import uuid

    import mlflow
    import requests

    from tests.conftest import WebappServer, mlflow_admin

    name = f"scenes-page-rollback-{uuid.uuid4().hex[:8]}"
    registry.register(name)
    server = WebappServer(tmp_path, name).start()
    try:
        registry.register(name)  # version 2 becomes production; the server swaps within a second or two
        wait_until(
            lambda: requests.get(f"{server.url}/api/v1/model", timeout=10).json()["version"] == "2",
            60,
            "version 2 served",
        )
        context = browser.new_context(
            viewport={"width": 1200, "height": 900},
            http_credentials={"username": REVIEWER[0], "password": REVIEWER[1]},  # the web app's login
        )
        page = context.new_page()
        refused = csp_violations(page)
        page.goto(f"{server.url}/model")
        assert page.inner_text("#rollback-target") == "1"
        page.click("#rollback-link")
        page.wait_for_selector("#rollback-form")
        page.fill("#rollback-user", "admin")
        page.fill("#rollback-password", "wrong")
        page.click("#rollback-button")
        page.wait_for_selector("#message.alert-danger")
        assert "MLflow refused this login" in page.inner_text("#message")
        page.fill("#rollback-password", mlflow_admin()[1])
        page.click("#rollback-button")
        page.wait_for_selector("#message.alert-success")
        assert "Version 1 is production again" in page.inner_text("#message")
        page.wait_for_load_state("load")
        page.wait_for_selector("#served-history tbody tr:nth-child(3)")  # the page reloads: 1, 2, then 1 again
        assert page.locator("#model-details tr").nth(1).inner_text().split() == ["Version", "1"]
        assert "rolled back from version 2 by admin" in page.locator("#served-history tbody tr").first.inner_text()
        page.screenshot(path=str(tmp_path / "rollback.png"), full_page=True)
        assert refused == []
        context.close()
        assert mlflow.MlflowClient().get_model_version_by_alias(name, "production").version == "1"
    finally:
        server.stop()
