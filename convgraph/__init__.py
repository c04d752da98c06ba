"""convgraph: exact symbolic shapes, valid sizes, ONNX export and validation for conv layer stacks.

>>> import convgraph as cg
>>> g = cg.parse("input(1, 1, H, W)\\nConv2d(1, 1, 3)")
>>> g.output_shapes()
{'0': (1, 1, H - 2, W - 2)}
"""
from __future__ import annotations

from typing import Any

from convgraph._version import __version__
from convgraph.api import Graph, build, check, from_torch, load, parse, solve, to_torch_source
from convgraph.errors import ConvGraphError, ShapeError

__all__ = [
    "ConvGraphError",
    "Graph",
    "ShapeError",
    "__version__",
    "build",
    "check",
    "from_torch",
    "input",
    "load",
    "parse",
    "solve",
    "to_torch_source",
]

_BUILDER_FUNCS = frozenset({"input", "cat", "crop", "pad", "interpolate", "chunk", "split", "assume", "expect",
                            "scope"})


def __getattr__(name: str) -> Any:
    # the Python builder: cg.input, cg.Conv2d, cg.cat, ... (loaded on first use).
    # Only those names: submodule imports (`from convgraph import dims`) must not come through here.
    if name in _BUILDER_FUNCS or name[:1].isupper():
        import importlib

        builder = importlib.import_module("convgraph.front.builder")
        if hasattr(builder, name):
            return getattr(builder, name)
    raise AttributeError(f"module 'convgraph' has no attribute {name!r}")
