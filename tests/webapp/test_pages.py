"""The HTML pages (fsdl_webapp.pages): the classify page and the served model's details."""


def test_pages_render(client, production_model):
    index = client.get("/").get_data(as_text=True)
    assert "Select an image to classify" in index
    assert "/bootstrap/static/" in index  # Bootstrap is served locally, never from a CDN
    assert "cdn" not in index.lower()
    assert client.get("/bootstrap/static/css/bootstrap.min.css").status_code == 200
    details = client.get("/model").get_data(as_text=True)
    assert production_model in details
    assert "Dataset version" in details
