"""The served scene classifier as an MLflow pyfunc, image bytes in, class out: what a user would
package for `mlflow models serve` instead of running the web app (bench_serving.py compares the two).

Logged as a model from code (``python_model=`` this file's path), so nothing is pickled; it loads
the registered classifier with the platform's safe skops loader and extracts features with the same
backbone graph as training and the web app (``GraphExtractor``, ONNX Runtime). Input: a DataFrame
with a column ``image`` of base64-encoded JPEG or PNG bytes. Output: the class of each.
"""

from __future__ import annotations

import base64

import mlflow
from mlflow.pyfunc import PythonModel


class SceneClassifier(PythonModel):
    def load_context(self, context):
        from fsdl_lib.graph import GraphExtractor
        from fsdl_lib.tracking import load_sklearn_model

        self.extractor = GraphExtractor(context.artifacts["graph"], batch_size=1)
        self.classifier = load_sklearn_model(context.artifacts["classifier"])

    def predict(self, context, model_input, params=None):
        from fsdl_lib.images import load_image

        images = [load_image(base64.b64decode(text)) for text in model_input["image"]]
        return [str(label) for label in self.classifier.predict(self.extractor.extract(images))]


mlflow.models.set_model(SceneClassifier())
