"""Every file of the image corpus, uploaded: a prediction, or a 400 that says why and writes nothing."""

import io

import pytest

from tests.image_corpus import corpus
from tests.webapp.conftest import written_files


@pytest.mark.parametrize("sample", corpus(), ids=lambda s: s.name)
def test_upload_is_classified_or_refused_with_a_reason(sample, app, client, tmp_path):
    response = client.post(
        "/api/v1/predict", data={"image": (io.BytesIO(sample.data), sample.name)}, content_type="multipart/form-data"
    )
    if sample.accepted:
        assert response.status_code == 200, response.json
        body = response.json
        assert body["label"] in body["probabilities"]
        stored = written_files(tmp_path / "webapp")
        assert len(stored) == 1  # the upload, kept until feedback arrives
        assert stored[0].suffix == (".png" if sample.name.endswith(".png") else ".jpg")
    else:
        assert response.status_code == 400, response.json
        assert response.is_json
        assert sample.reason in response.json["error"]
        assert written_files(tmp_path / "webapp") == []
        assert written_files(tmp_path / "data") == []
