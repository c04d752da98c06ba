"""``convgraph export``: write the verified ONNX model."""
from __future__ import annotations

import argparse
import os
import sys

from convgraph.api import file_weights
from convgraph.cli._main import check_at, load_input, parse_at
from convgraph.export import export_model
from convgraph.solve import solve


def cli_export(args: argparse.Namespace) -> int:
    """``convgraph export FILE -o OUT [--opset N] [--at SYM=INT ...] [--weights FILE] [--seed N]``.
    A graph with no valid size is an error (exit 2) and nothing is written."""
    sizes = parse_at(args.at)
    graph = load_input(args)
    check_at(graph, sizes)
    err = solve(graph, tiling=False).no_valid_size()
    if err is not None:
        raise err
    before = _identity(args.output)
    params = file_weights(graph, {"weights": args.weights}).get("params")  # an ONNX model: its own weights
    try:
        model = export_model(graph, args.output, args.opset, sizes, params=params, seed=args.seed,
                             weights=args.weights)
    except KeyboardInterrupt:
        # the model is installed by one rename: a new file at OUT means the interrupt came after it
        if _identity(args.output) not in (before, None):
            print(f"convgraph: interrupted after {args.output} was written (it is complete)", file=sys.stderr)
            return 130
        raise
    if args.weights is None and params is None:  # after the export: an error is the first line of stderr, never a note
        print(f"note: no --weights given: the weights are random (PyTorch's default initialisation, "
              f"--seed {args.seed})", file=sys.stderr)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    dyn = sorted({d.dim_param for vi in model.graph.input for d in vi.type.tensor_type.shape.dim if d.dim_param})
    print(f"wrote {args.output}: opset {opset}, {len(model.graph.node)} nodes, "
          f"{len(model.graph.initializer)} initializers, "
          f"{'dynamic ' + ', '.join(dyn) if dyn else 'static sizes'}", file=sys.stderr)
    return 0


def _identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path`` (through a symlink), None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino
