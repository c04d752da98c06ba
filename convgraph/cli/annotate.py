"""``convgraph annotate MODEL.onnx -o OUT.onnx [--dims INPUT=N,C,H,W]``: the model with every
feature map's exact dims, the constraints and the valid sizes written into it (weights and nodes
untouched, external data kept)."""
from __future__ import annotations

import argparse
import sys

from convgraph.api import load_onnx, wrap
from convgraph.errors import ConvGraphError, Loc
from convgraph.front.onnx_import import is_onnx, parse_dims


def cli_annotate(args: argparse.Namespace) -> int:
    if not is_onnx(args.file):
        raise ConvGraphError("annotate reads an ONNX model (for a .cg file use `convgraph export`)",
                             Loc(args.file, 0, 0))
    imported = load_onnx(args.file, parse_dims(args.dims) or None)
    graph = wrap(imported.graph)
    from convgraph.export.annotate import annotate
    from convgraph.solve import solve

    model = annotate(imported, args.output)
    sol = solve(graph, tiling=False)
    valid = "; ".join(f"{s}: {sol.describe_runs(s)}" for s in graph.symbols) or "static sizes"
    n = len(model.graph.value_info) + len(model.graph.output)
    print(f"wrote {args.output}: {n} values with exact dims, {len(graph.infer().constraints)} constraints; "
          f"valid {valid}", file=sys.stderr)
    return 0
