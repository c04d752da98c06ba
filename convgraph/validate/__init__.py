"""The validate stage: onnxruntime across sizes against the formulas, the independent numpy reference
and (when importable) PyTorch (``check(graph) -> CheckReport``)."""
from __future__ import annotations

import importlib
from typing import Any

#: loaded on first use, so that importing a light submodule (``convgraph.validate.reference``) does
#: not import onnx and onnxruntime
_PUBLIC = (
    "TOL_C", "EPS32", "PROVIDERS", "PROGRESS_MIN_RUNS", "OutputCheck", "SizeCheck", "CheckReport",
    "choose_sizes", "accumulation", "tolerance", "run_torch", "check",
)

__all__ = list(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module("convgraph.validate._check"), name)
    raise AttributeError(f"module 'convgraph.validate' has no attribute {name!r}")
