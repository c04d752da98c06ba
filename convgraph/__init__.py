"""convgraph: exact symbolic shapes, valid sizes, ONNX export and validation for conv layer stacks.

>>> import convgraph as cg
>>> g = cg.parse("input(1, 1, H, W)\\nConv2d(1, 1, 3)")
>>> g.output_shapes()
{'0': (1, 1, H - 2, W - 2)}
"""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import ConvGraphError, ShapeError
from .ir import Graph

__all__ = ["Graph", "ConvGraphError", "ShapeError", "load", "parse", "check", "input", "build", "__version__"]


def load(path: str) -> Graph:
    """Parse a ``.cg`` file: ``cg.load("models/unet.cg")``."""
    from .dsl import load as _load

    return _load(path)


def parse(text: str, filename: str = "<string>") -> Graph:
    """Parse DSL text: ``cg.parse("input(1, 3, H, W)\\nConv2d(3, 8, 3)")``."""
    from .dsl import parse as _parse

    return _parse(text, filename=filename)


def check(graph: Graph, **kw):
    """Validate the ONNX export on onnxruntime across sizes (see ``convgraph.validate.check``)."""
    from .validate import check as _check

    return _check(graph, **kw)


_BUILDER_FUNCS = frozenset({"input", "cat", "crop", "build", "assume", "expect"})


def __getattr__(name: str):
    # the Python builder: cg.input, cg.build, cg.Conv2d, cg.cat, ... (loaded on first use).
    # Only those names: submodule imports (`from . import dims`) must not come through here.
    if name in _BUILDER_FUNCS or name[:1].isupper():
        import importlib

        builder = importlib.import_module(".builder", __name__)
        if hasattr(builder, name):
            return getattr(builder, name)
    raise AttributeError(f"module 'convgraph' has no attribute {name!r}")
