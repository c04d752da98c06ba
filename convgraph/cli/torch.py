"""``convgraph torch``: write the PyTorch module source of a graph."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

from convgraph.api import load, to_torch_source
from convgraph.errors import ConvGraphError, Loc


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` in one step: a failure leaves no half-written file."""
    write_atomic_bytes(path, text.encode("utf-8"))


def write_atomic_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` in one step (a temporary file renamed over it)."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".convgraph-", suffix=".tmp")
    except OSError as e:
        raise ConvGraphError(f"cannot write {path}: {e.strerror}", Loc(path, 0, 0)) from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        os.unlink(tmp)
        raise ConvGraphError(f"cannot write {path}: {e.strerror}", Loc(path, 0, 0)) from e


def cli_torch(args: argparse.Namespace) -> int:
    """``convgraph torch FILE.cg -o OUT.py``."""
    graph = load(args.file)
    source = to_torch_source(graph)
    write_atomic(args.output, source)
    print(f"wrote {args.output}: class Model, {len(graph.layers())} layers", file=sys.stderr)
    return 0
