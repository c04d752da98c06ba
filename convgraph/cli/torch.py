"""``convgraph torch``: write the PyTorch module source of a graph."""
from __future__ import annotations

import argparse
import sys

from convgraph.api import load, to_torch_source
from convgraph.export._paths import check_destination
from convgraph.export._paths import write_atomic as _write


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` in one step: a failure leaves no half-written file."""
    write_atomic_bytes(path, text.encode("utf-8"))


def write_atomic_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically; a device, FIFO or directory is refused first."""
    _write(check_destination(path), data)


def cli_torch(args: argparse.Namespace) -> int:
    """``convgraph torch FILE.cg -o OUT.py``."""
    graph = load(args.file)
    source = to_torch_source(graph)
    write_atomic(args.output, source)
    print(f"wrote {args.output}: class Model, {len(graph.layers())} layers", file=sys.stderr)
    return 0
