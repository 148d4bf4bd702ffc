"""Headless Chromium (Debian's, driven by Playwright) clicks through the page like a user."""

from __future__ import annotations

import sqlite3

import pytest

from tests.conftest import SAMPLE_DIR

pytestmark = pytest.mark.slow


def test_classify_correct_and_send_feedback(browser, webapp_server, tmp_path):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
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
    page.screenshot(path=str(tmp_path / "feedback.png"), full_page=True)

    stored = list((webapp_server.data_dir / "feedback" / "intel_scenes" / correction).glob("*.jpg"))
    assert [p.read_bytes() for p in stored] == [photo.read_bytes()]
    with sqlite3.connect(webapp_server.state_dir / "feedback.db") as db:
        row = db.execute("SELECT predicted_label, feedback_label, feedback_correct FROM predictions").fetchone()
    assert row == (predicted, correction, 0)

    page.click("text=Monitoring")
    page.wait_for_selector("#timeline-chart svg rect")
    page.wait_for_selector("#corrections-table tbody")
    cell = page.locator("#corrections-table tbody tr", has_text=predicted).first
    assert "1" in cell.inner_text()
    assert page.locator("#versions-table tbody tr").count() == 1
    page.screenshot(path=str(tmp_path / "monitoring.png"), full_page=True)
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
