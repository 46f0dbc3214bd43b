"""ONNX export of any detector ``build_detector`` makes, and an ONNX Runtime session to run it.

The graph takes ``images``: float32 ``[B, 3, R, R]`` RGB in [0, 1] at the spec's resolution ``R`` (the
backbone's mean/std normalisation is inside the graph), with a dynamic batch axis. Outputs:

- raw (default): ``class_logits [B, N, C]`` and ``box_regression [B, N, 4]`` (``(ty, tx, th, tw)`` codes),
  flattened over levels and anchors in ``scalesearch.training.detection`` order;
- ``nms=True``: ``boxes [B, D, 4]`` xyxy input pixels, ``scores [B, D]``, ``labels [B, D]`` (int64) and
  ``num_detections [B]``, D = ``max_detections``, rows sorted by score and padded (box 0, score 0, label -1)
  past ``num_detections``: what ``scalesearch.training.detection.postprocess`` gives, with anchors as constants and
  ONNX's ``NonMaxSuppression`` (see ``scalesearch.measure.export_graph``).

Uses torch's TorchScript-based exporter (``dynamo=False``): it needs neither ``onnxscript`` nor a
``torch.export`` trace (seconds, not tens of seconds, per model) and lets the NMS be one ONNX operator;
torch is pinned, so its deprecation is a known quantity.
"""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scalesearch.errors import UserError

if TYPE_CHECKING:
    from torch import Tensor, nn

    from scalesearch.spec import DetectorSpec

MIN_OPSET = 11  # NonMaxSuppression with a batch axis, ScatterND, TopK with a k input
MAX_OPSET = 20  # the newest opset torch's TorchScript exporter writes
RAW_OUTPUTS = ("class_logits", "box_regression")
NMS_OUTPUTS = ("boxes", "scores", "labels", "num_detections")
INSTALL = "pip install 'scalesearch[export]'"


def check_opset(opset: Any, name: str = "opset") -> int:
    """``opset`` if it is an integer in MIN_OPSET..MAX_OPSET, else a one-line ``UserError`` naming ``name``."""
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise UserError(f"{name}: must be an integer in {MIN_OPSET}..{MAX_OPSET}, but got {opset!r}")
    return opset


def postprocess_defaults() -> dict[str, Any]:
    """``pre_nms_top_k``, ``score_threshold`` and ``iou_threshold`` of the torch path (``detection.postprocess``)."""
    from scalesearch.training import detection
    params = inspect.signature(detection.postprocess).parameters
    return {k: params[k].default for k in ("pre_nms_top_k", "score_threshold", "iou_threshold")}


def export_onnx(model: nn.Module, spec: DetectorSpec, path: str | Path, *, opset: int = 17, nms: bool = False,
                max_detections: int = 100, score_threshold: float | None = None,
                iou_threshold: float | None = None) -> Path:
    """Write ``model`` (built from ``spec``) as an ONNX graph at ``path``; returns the path.

    ``score_threshold`` / ``iou_threshold`` (with ``nms``): None takes the torch path's defaults
    (``postprocess_defaults()``), so that the graph's detections equal ``train.detector_predictor``'s.
    The model's training mode is restored afterwards.
    """
    import torch

    from scalesearch.measure.export_graph import NmsGraph, RawGraph
    from scalesearch.model import input_normalization

    check_opset(opset)
    if isinstance(max_detections, bool) or not isinstance(max_detections, int) or max_detections < 1:
        raise UserError(f"max_detections: must be a positive integer, but got {max_detections!r}")
    graph = RawGraph(model, spec, input_normalization(spec))
    if nms:
        settings = postprocess_defaults()
        settings.update({k: v for k, v in (("score_threshold", score_threshold),
                                           ("iou_threshold", iou_threshold)) if v is not None})
        graph = NmsGraph(graph, spec, max_detections=max_detections, **settings)
    device = next(model.parameters()).device
    # Batch 2: no size in the trace is 1 by accident (the batch axis must stay symbolic). Own generator:
    # exporting leaves the caller's random state alone.
    images = torch.rand(2, 3, spec.resolution, spec.resolution, generator=torch.Generator().manual_seed(0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = NMS_OUTPUTS if nms else RAW_OUTPUTS
    modes = {module: module.training for module in model.modules()}  # e.g. frozen BatchNorm in a training model
    try:
        _trace(graph.to(device).eval(), images.to(device), path, opset, names)
    finally:
        for module, training in modes.items():
            module.training = training
    _name_dims(path, _output_shapes(spec, nms, max_detections))
    return path


def _output_shapes(spec: DetectorSpec, nms: bool, max_detections: int) -> dict[str, list[int | str]]:
    if nms:
        d = max_detections
        return {"boxes": ["batch", d, 4], "scores": ["batch", d], "labels": ["batch", d], "num_detections": ["batch"]}
    from scalesearch.spec import level_size

    anchors = spec.num_anchors * sum(level_size(spec.resolution, lvl) ** 2
                                     for lvl in range(spec.min_level, spec.max_level + 1))
    return {"class_logits": ["batch", anchors, spec.num_classes], "box_regression": ["batch", anchors, 4]}


def _name_dims(path: Path, shapes: dict[str, list[int | str]]) -> None:
    """Write the outputs' shapes into the file: the tracer leaves fixed sizes it could not infer (the
    detections axis) as made-up symbols, and a runtime plans better with the numbers."""
    onnx = _import("onnx")
    proto = onnx.load(str(path))
    for value in proto.graph.output:
        dims = value.type.tensor_type.shape.dim
        if len(dims) != len(shapes[value.name]):
            raise RuntimeError(f"ONNX output {value.name}: rank {len(dims)} != expected {shapes[value.name]}")
        for dim, size in zip(dims, shapes[value.name]):
            if isinstance(size, str):
                dim.dim_param = size
            else:
                dim.dim_value = size
    onnx.save(proto, str(path))


def _trace(graph: nn.Module, images: Tensor, path: Path, opset: int, names: tuple[str, ...]) -> None:
    import torch

    axes = {name: {0: "batch"} for name in ("images", *names)}
    with warnings.catch_warnings(), torch.no_grad():
        # The legacy exporter's deprecation notice, and tracer notes on loops whose length is fixed per
        # architecture (fusion inputs, levels), say nothing about this graph.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*advanced indexing.*negative values.*")  # never negative here
        torch.onnx.export(graph, (images,), str(path), dynamo=False, opset_version=opset, input_names=["images"],
                          output_names=list(names), dynamic_axes=axes, do_constant_folding=True)


def export_checkpoint(checkpoint: str | Path, path: str | Path, **options: Any) -> Path:
    """Load a ``scalesearch train --save`` checkpoint (``UserError`` naming the file if it is not one) and
    export it with ``export_onnx(..., **options)``."""
    from scalesearch.training.checkpoint import load_checkpoint

    model, spec, _ = load_checkpoint(checkpoint, "cpu")
    return export_onnx(model, spec, path, **options)


def onnx_session(path: str | Path, threads: int = 1) -> Any:
    """An ``onnxruntime.InferenceSession`` on CPU: ``threads`` intra-op threads, one inter-op thread,
    sequential execution, all graph optimisations (what a latency measurement should run)."""
    ort = _import("onnxruntime")
    path = Path(path)
    if not path.is_file():
        raise UserError(f"ONNX model {path}: must be an existing file, but it was not found")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise UserError(f"threads: must be a positive integer, but got {threads!r}")
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own types, with multi-line messages
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"ONNX model {path}: must be a valid ONNX file, but ONNX Runtime says: {first}") from exc


def graph_signature(path: str | Path) -> dict[str, dict[str, list[int | str]]]:
    """``{"inputs": {name: shape}, "outputs": {name: shape}}`` of an ONNX file (dynamic axes by name)."""
    onnx = _import("onnx")
    graph = onnx.load(str(path), load_external_data=False).graph

    def shapes(values) -> dict[str, list[int | str]]:
        return {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}

    return {"inputs": shapes(graph.input), "outputs": shapes(graph.output)}


def export_input(image: Tensor, spec: DetectorSpec) -> tuple[Tensor, float]:
    """A uint8 ``[3, H, W]`` image as the graph's input: ``(Tensor[3, R, R] in [0, 1], scale)``.

    Resized and padded as ``scalesearch.training.inference.detect_image`` does (long side to R, image top-left); the
    padding is the normalisation mean, which the graph maps to 0 -- the padding training saw. Divide the
    graph's boxes by ``scale`` for the image's own pixels.
    """
    import torch

    from scalesearch.data import transforms as T
    from scalesearch.model import input_normalization

    height, width = image.shape[1:]
    new_w, new_h, scale = T.base_size(width, height, spec.resolution)
    mean = torch.tensor(input_normalization(spec)[0], dtype=torch.float32).view(3, 1, 1)
    out = mean.expand(3, spec.resolution, spec.resolution).clone()
    out[:, :new_h, :new_w] = T.resize(image, new_w, new_h).float() / 255
    return out, scale


def _import(name: str) -> Any:
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise UserError(f"ONNX export needs the {name} package, but it is not installed ({INSTALL})") from exc
