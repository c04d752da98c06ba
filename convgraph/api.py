"""The public API: load or build a graph, then ask it for shapes, valid sizes, ONNX and checks.

The last stage: it imports every earlier one, none imports it. ``Graph`` here is the IR graph with
the stages as methods; each stage's result is computed once per graph and handed to the next.

>>> import convgraph as cg
>>> g = cg.parse("x = input(N, 3, H, W)\\ny = Conv2d(3, 8, 3, stride=2)(x)")
>>> g.output_shapes()
{'y': (N, 8, floor(H/2 + 1/2) - 1, floor(W/2 + 1/2) - 1)}
>>> cg.solve(g).describe_runs("H")
'H >= 3'
"""
from __future__ import annotations

import os
from dataclasses import fields
from typing import Any

from convgraph import ir
from convgraph.shapes import ShapeResult, infer
from convgraph.solve import Solution
from convgraph.solve import solve as _solve


class Graph(ir.Graph):
    """An IR graph with the stages as methods (``g.output_shapes()``, ``g.to_onnx()``, ...)."""

    def infer(self) -> ShapeResult:
        """The shape stage's frozen result (``convgraph.shapes.ShapeResult``)."""
        return infer(self)

    def shapes(self, **sizes: int) -> dict:
        """Every value's shape: sympy expressions, or ints when ``sizes`` gives every symbol."""
        return infer(self).shapes(**sizes)

    def output_shapes(self, **sizes: int) -> dict:
        """Output shapes, e.g. ``{"c": (N, 32, H, W)}``; with sizes, ints (or ShapeError)."""
        return infer(self).output_shapes(**sizes)

    def solve(self) -> Solution:
        """The valid sizes, merge verdicts and fixes (``convgraph.solve.Solution``)."""
        return _solve(self)

    def to_onnx(self, **kw: Any) -> Any:
        """The verified ``onnx.ModelProto`` (see ``convgraph.export.to_onnx``)."""
        from convgraph.export import to_onnx

        return to_onnx(self, **file_weights(self, kw))

    def export(self, path: str | os.PathLike, **kw: Any) -> str:
        """Write the verified model to ``path`` atomically (see ``convgraph.export.export``)."""
        from convgraph.export import export

        return export(self, path, **file_weights(self, kw))

    def check(self, **kw: Any) -> Any:
        """Validate the export on onnxruntime across sizes (see ``convgraph.validate.check``)."""
        return check(self, **kw)


def file_weights(graph: ir.Graph, kw: dict) -> dict:
    """A graph loaded from ONNX exports with that file's weights unless others are given."""
    imported: Any = graph._memo.get(ONNX_SOURCE)
    if imported is None or kw.get("params") is not None or kw.get("weights") is not None:
        return kw
    from convgraph.validate.onnx_check import file_params

    return {**kw, "params": file_params(imported, imported.graph.filename)}


def wrap(graph: ir.Graph) -> Graph:
    """The API graph for an IR graph, with its shape stage run (errors surface here)."""
    g = graph if isinstance(graph, Graph) else Graph(**{f.name: getattr(graph, f.name) for f in fields(ir.Graph)
                                                        if f.init and not f.name.startswith("_")})
    infer(g)
    return g


def load(path: str | os.PathLike[str], dims: dict | None = None) -> Graph:
    """Read and check a ``.cg`` file or an ONNX model (told apart by content):
    ``cg.load("models/unet.cg")``, ``cg.load("m.onnx", dims={"x": ("N", 3, "H", "W")})``."""
    from convgraph.front.onnx_import import is_onnx

    if is_onnx(path):
        imported = load_onnx(path, dims)
        g = wrap(imported.graph)
        g.memo(ONNX_SOURCE, lambda: imported)  # check() runs the file itself
        return g
    if dims:
        from convgraph.errors import ConvGraphError, Loc

        raise ConvGraphError("--dims applies to ONNX models; a .cg file names its sizes in input(...)",
                             Loc(os.fspath(path), 0, 0))
    from convgraph.front.dsl import load as _load

    return wrap(_load(path))


#: the memo key under which a graph loaded from ONNX keeps its import (``check`` runs that file)
ONNX_SOURCE = "onnx_import"


def load_onnx(path: str | os.PathLike[str], dims: dict | None = None) -> Any:
    """The ONNX import's full result (``graph`` and, per ONNX value name, what it became)."""
    from convgraph.front.onnx_import import load_model
    from convgraph.shapes import node_shape

    return load_model(path, node_shape, dims)


def from_torch(module: Any, *inputs: Any, label: str | None = None) -> Graph:
    """A PyTorch module traced with torch.fx: ``cg.from_torch(net, ("N", 3, "H", "W"))``, one dims
    tuple per forward argument (see ``convgraph.front.torch_fx``). Needs torch."""
    from convgraph.front.torch_fx import from_torch as _from_torch

    return wrap(_from_torch(module, *inputs, label=label))


def load_python(target: str, inputs: list[tuple]) -> Graph:
    """``path/to/model.py:ClassName``: imports and runs that file (unlike a .cg file, which is only
    parsed), builds ``ClassName()`` and traces it (see ``convgraph.front.python_file``)."""
    from convgraph.front.python_file import load_module

    module = load_module(target)
    return from_torch(module, *inputs, label=target)


def parse(text: str, filename: str = "<string>") -> Graph:
    """Parse and check DSL text: ``cg.parse("input(1, 3, H, W)\\nConv2d(3, 8, 3)")``."""
    from convgraph.front.dsl import parse as _parse

    return wrap(_parse(text, filename=filename))


def build(*outputs: Any, **kw: Any) -> Graph:
    """The Python builder's graph: ``cg.build(y)`` (see ``convgraph.front.builder.build``)."""
    from convgraph.front import builder

    return wrap(builder.build(*outputs, **kw))


def solve(graph: ir.Graph, tiling: bool = True) -> Solution:
    """The exact valid sizes, merge verdicts and fixes of a graph: ``cg.solve(g).describe_runs("H")``."""
    return _solve(graph, tiling=tiling)


def to_torch_source(graph: ir.Graph) -> str:
    """Standalone PyTorch source defining ``Model`` (see ``convgraph.export.torch_source``)."""
    from convgraph.export.torch_source import to_torch_source as _source

    return _source(graph)


def check(graph: ir.Graph, **kw: Any) -> Any:
    """Validate the ONNX export on onnxruntime across sizes (see ``convgraph.validate.check``); a
    graph loaded from an ONNX file: that file itself, with its weights
    (``convgraph.validate.onnx_check.check_imported``)."""
    imported: Any = graph._memo.get(ONNX_SOURCE)
    if imported is not None:
        from convgraph.validate.onnx_check import check_imported

        return check_imported(imported, **kw)
    from convgraph.validate import check as _check

    return _check(graph, **kw)
