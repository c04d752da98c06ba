"""The export stage: ONNX lowering (one emitter per layer kind), weights, and atomic writes
(``to_onnx(graph) -> onnx.ModelProto``, ``export(graph, path)``)."""
from __future__ import annotations

import importlib
from typing import Any

#: loaded on first use, so that importing a light submodule (``convgraph.export.weights``) does
#: not import onnx and onnxruntime
_PUBLIC = (
    "MAX_OPSET", "EXTERNAL_DATA_THRESHOLD", "PROBE_SIZES", "InferenceMismatch", "Plan", "required_opset",
    "validate_sizes", "Built", "to_onnx", "export", "export_model", "graph_metadata",
)
#: the light ones, from ``export/_paths.py`` (no onnx)
_PATHS = ("write_atomic", "check_destination")

__all__ = [*_PUBLIC, *_PATHS]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module("convgraph.export._export"), name)
    if name in _PATHS:
        return getattr(importlib.import_module("convgraph.export._paths"), name)
    raise AttributeError(f"module 'convgraph.export' has no attribute {name!r}")
