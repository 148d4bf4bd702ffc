"""The monitoring page and its JSON APIs (fsdl_webapp.monitoring); the drift API is in test_drift.py."""

import pytest


@pytest.mark.parametrize("bucket", ["0", "59", "abc", "9999999", "-5"])
def test_stats_reject_bad_buckets(client, bucket):
    response = client.get(f"/api/v1/stats?bucket_seconds={bucket}")
    assert response.status_code == 400
    assert "bucket_seconds" in response.json["error"]


def test_monitoring_page_renders(client):
    page = client.get("/monitoring").get_data(as_text=True)
    assert 'id="timeline-chart"' in page
    assert "monitoring.js" in page
    assert client.get("/static/monitoring.js").status_code == 200
