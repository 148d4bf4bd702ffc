"""The backbone as one exported ONNX graph, and the extractor that runs it without torch.

:func:`export_graph` writes the eager :class:`~fsdl_lib.features.FeatureExtractor`'s network, with
its weights and the normalisation of :mod:`fsdl_lib.preprocessing`, as one ONNX file. Its input is
what :func:`~fsdl_lib.preprocessing.pixel_batch` makes of the images: (N, size, size, 3) RGB bytes.
The file carries its backbone id and input size in its metadata, so a graph is never run for a model
trained on another backbone's features: :class:`GraphExtractor` refuses it, as it refuses a file
that is not a graph. Exporting needs torch; running the graph needs only ONNX Runtime and numpy.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from fsdl_lib.exceptions import GraphUnavailableError, IncompatibleModelError
from fsdl_lib.preprocessing import in_batches, pixel_batch

if TYPE_CHECKING:
    from PIL import Image

    from fsdl_lib.features import FeatureExtractor

log = logging.getLogger(__name__)

INPUT: Final = "images"
OUTPUT: Final = "features"
OPSET: Final = 18
META_BACKBONE: Final = "fsdl.backbone_id"
META_IMAGE_SIZE: Final = "fsdl.image_size"
META_FEATURE_DIM: Final = "fsdl.feature_dim"
_BATCH: Final = 8


def export_graph_bytes(extractor: FeatureExtractor) -> bytes:
    """``extractor``'s network (normalisation included) as the bytes of one ONNX file.

    The batch dimension is dynamic; the image size is fixed, and recorded with the backbone id in the
    graph's metadata.
    """
    import onnx
    import torch

    module = extractor.pixels_module().cpu().eval()
    size = extractor.preprocessor.image_size
    example = torch.zeros((2, size, size, 3), dtype=torch.uint8)
    batch = torch.export.Dim("batch", min=1, max=4096)
    log.info("exporting backbone %s to ONNX (opset %d) ...", extractor.id, OPSET)
    program = torch.onnx.export(
        module,
        (example,),
        input_names=[INPUT],
        output_names=[OUTPUT],
        dynamic_shapes={"pixels": {0: batch}},
        opset_version=OPSET,
        dynamo=True,
        verbose=False,
    )
    model = program.model_proto
    onnx.helper.set_model_props(
        model,
        {META_BACKBONE: extractor.id, META_IMAGE_SIZE: str(size), META_FEATURE_DIM: str(extractor.feature_dim)},
    )
    onnx.checker.check_model(model)
    return model.SerializeToString()


def export_graph(extractor: FeatureExtractor, path: Path) -> str:
    """Export ``extractor``'s graph (:func:`export_graph_bytes`) to ``path``, whole or not at all;
    returns the file's sha256."""
    from fsdl_lib.atomic import atomic_write_bytes

    data = export_graph_bytes(extractor)
    digest = hashlib.sha256(data).hexdigest()
    atomic_write_bytes(path, data)
    log.info("backbone graph %s written to %s (%.1f MB, sha256 %s)", extractor.id, path, len(data) / 1e6, digest[:12])
    return digest


def graph_backbone(data: bytes) -> str:
    """The backbone id an exported graph's metadata records; :class:`GraphUnavailableError` if
    ``data`` is not a backbone graph. Reads the metadata only (no runtime session)."""
    import onnx

    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError
        raise GraphUnavailableError(f"not an ONNX graph ({type(exc).__name__})") from exc
    meta = {prop.key: prop.value for prop in model.metadata_props}
    if not meta.get(META_BACKBONE):
        raise GraphUnavailableError(f"an ONNX graph but not a backbone graph: its metadata lacks {META_BACKBONE}")
    return meta[META_BACKBONE]


def session_options(threads: int = 0) -> Any:
    """ONNX Runtime options for the backbone: every graph optimisation, ``threads`` (0: all cores the
    process may use, see :mod:`fsdl_lib.resources`) running one operator's work, and no spinning
    threads between calls (serving waits for requests, and a task shares the cores)."""
    import onnxruntime as ort

    from fsdl_lib.resources import current_limit

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or current_limit()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: its warnings go to stderr, not to our log
    return options


class GraphExtractor:
    """Features from an exported backbone graph: images in, (N, feature_dim) float32 out, like
    :class:`~fsdl_lib.features.FeatureExtractor`, with ONNX Runtime on the CPU.

    ``expected_id``, when given, is the backbone the caller's model was trained on; a graph of another
    backbone is refused with :class:`~fsdl_lib.exceptions.IncompatibleModelError`. A file that is
    missing, not a backbone graph, or not the bytes ``expected_sha256`` names raises
    :class:`~fsdl_lib.exceptions.GraphUnavailableError`. ``path`` may be on the data's object store.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        expected_id: str | None = None,
        expected_sha256: str | None = None,
        batch_size: int = 0,
        threads: int = 0,
    ) -> None:
        import onnxruntime as ort

        from fsdl_lib import storage
        from fsdl_lib.dataset import file_sha256

        self.path = path = storage.location(path) if isinstance(path, str) else path
        # A local file is hashed as it is read and handed to ONNX Runtime by its name: holding its bytes
        # here too would keep a second copy of the weights (about 85 MiB) for the life of the process.
        local = not storage.is_object_store(path)
        try:
            data: bytes | str = str(path) if local else storage.read_bytes(path)
            self.sha256 = file_sha256(path) if local else hashlib.sha256(data).hexdigest()  # type: ignore[arg-type]
        except OSError as exc:
            raise GraphUnavailableError(f"the backbone graph {path} cannot be read ({exc.strerror or exc})") from exc
        if expected_sha256 is not None and self.sha256 != expected_sha256:
            raise GraphUnavailableError(
                f"the backbone graph {path} has sha256 {self.sha256[:12]}, not {expected_sha256[:12]} as recorded; "
                "it was changed or damaged since it was exported"
            )
        try:
            self.session = ort.InferenceSession(data, session_options(threads), providers=["CPUExecutionProvider"])
        except Exception as exc:  # ONNX Runtime raises its own classes for a corrupt or foreign file
            raise GraphUnavailableError(
                f"{path} is not a usable ONNX graph ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                "export it again from the backbone (`fsdl export-graph`)"
            ) from exc
        meta = self.session.get_modelmeta().custom_metadata_map
        try:
            self.id = meta[META_BACKBONE]
            self.image_size = int(meta[META_IMAGE_SIZE])
            self.feature_dim = int(meta[META_FEATURE_DIM])
        except (KeyError, ValueError) as exc:
            raise GraphUnavailableError(
                f"{path} is an ONNX graph but not a backbone graph: its metadata lacks {exc}"
            ) from exc
        if expected_id is not None and self.id != expected_id:
            raise IncompatibleModelError(
                f"its backbone graph (sha256 {self.sha256[:12]}) computes features of backbone {self.id!r}, but the "
                f"model was trained on features of {expected_id!r}"
            )
        (graph_input,) = self.session.get_inputs()
        if graph_input.name != INPUT or graph_input.type != "tensor(uint8)":
            raise GraphUnavailableError(f"{path} takes {graph_input.name} ({graph_input.type}), not uint8 {INPUT}")
        self.batch_size = batch_size or _BATCH
        log.info("backbone graph %s ready (%s, sha256 %s)", self.id, path.name, self.sha256[:12])

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Run the graph on (N, size, size, 3) uint8 pixels."""
        (features,) = self.session.run([OUTPUT], {INPUT: batch})
        return features

    def extract(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Features of ``images`` in order, computed ``batch_size`` at a time."""
        return in_batches(
            images, self.batch_size, lambda chunk: self.forward(pixel_batch(chunk, self.image_size)), self.feature_dim
        )

    def __repr__(self) -> str:
        return f"GraphExtractor(id={self.id!r}, path={str(self.path)!r})"


def max_relative_difference(features: np.ndarray, reference: np.ndarray) -> float:
    """How far ``features`` are from ``reference``: per image, the largest absolute difference over the
    reference's largest magnitude; the worst image. (Element by element, features near zero make any
    ratio meaningless; a classifier sees the vector.)"""
    if features.shape != reference.shape:
        raise ValueError(f"shapes differ: {features.shape} and {reference.shape}")
    scale = np.maximum(np.abs(reference).max(axis=1), np.finfo(np.float32).tiny)
    return float((np.abs(features - reference).max(axis=1) / scale).max()) if len(reference) else 0.0
