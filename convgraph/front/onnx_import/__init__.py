"""ONNX import: an ONNX model read into the IR (DESIGN.md, "ONNX import").

``load(path, shape_rule, dims)`` is the entry point (``convgraph.api.load`` hands it the shape
stage's one-node rule, so that Shape ops see exact dims while the import runs); ``is_onnx`` tells
an ONNX file from a ``.cg`` one by its content. Submodules: ``_values`` (values and exact symbolic
arithmetic), ``_shapeops`` (shape computations evaluated at import), ``_tensorops`` (op -> IR),
``_import`` (the walk).
"""
from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence

from convgraph import ir
from convgraph.front.onnx_import._import import Imported, ImportError_, ShapeRule, import_model, read_model

__all__ = ["ImportError_", "Imported", "is_onnx", "load", "load_model", "parse_dims"]


def is_onnx(path: str | os.PathLike) -> bool:
    """True for a ``.onnx`` name, or for content that is not text (a protobuf is binary; the DSL is
    UTF-8 text without NUL bytes)."""
    p = os.fspath(path)
    if p.lower().endswith(".onnx"):
        return True
    if p.lower().endswith(".cg"):
        return False
    try:  # without blocking, and only a regular file (a FIFO or /dev/zero goes to the DSL's refusal)
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return False
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return False
    with os.fdopen(fd, "rb") as f:
        head = f.read(4096)
    if b"\0" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start < len(head) - 4  # a multi-byte character cut at the end is still text
    return False


def load_model(path: str | os.PathLike, shape_rule: ShapeRule, dims: Mapping[str, Sequence] | None = None) -> Imported:
    """The IR of the ONNX file and, per ONNX value, what it became."""
    p = os.fspath(path)
    return import_model(read_model(p), p, shape_rule, dims)


def load(path: str | os.PathLike, shape_rule: ShapeRule, dims: Mapping[str, Sequence] | None = None) -> ir.Graph:
    """The IR graph of the ONNX file at ``path``."""
    return load_model(path, shape_rule, dims).graph


def parse_dims(items: Sequence[str] | None) -> dict[str, tuple]:
    """``["x=N,3,H,W"]`` -> ``{"x": ("N", 3, "H", "W")}`` (``--dims``); a bad item is a user error."""
    from convgraph.errors import ConvGraphError, Loc

    out: dict[str, tuple] = {}
    for item in items or ():
        name, eq, rest = item.partition("=")
        parts = [p.strip() for p in rest.split(",")]
        ok = eq and name and all(p.isidentifier() or (p.isdigit() and int(p) > 0) for p in parts)
        if not ok:
            raise ConvGraphError(f"--dims expects INPUT=D0,D1,... with each D a positive int or a name, got {item!r}",
                                 Loc("<command line>", 0, 0))
        out[name] = tuple(int(p) if p.isdigit() else p for p in parts)
    return out
