"""``convgraph check``: the export on onnxruntime across sizes, against the formulas and references."""
from __future__ import annotations

import argparse
import json
import sys

from convgraph.api import ONNX_SOURCE, check
from convgraph.cli._main import check_at, load_arg, parse_at
from convgraph.errors import ConvGraphError, Loc

#: column widths of the streamed table (a wider cell pushes the rest of its row right)
WIDTHS = (22, 8, 10, 20, 12, 14, 9, 0)


def cli_check(args: argparse.Namespace) -> int:
    """``convgraph check FILE [--at SYM=INT ...] [--sizes K] [--provider cpu|cuda|all] [--json]``:
    exit 0 when every run matches, 1 on any mismatch, 2 on a user error. The table streams row by
    row as each size runs; progress goes to stderr."""
    from convgraph.validate._check import TABLE_HEAD, SizeCheck, format_row, result_rows

    if args.sizes < 1:
        raise ConvGraphError(f"--sizes takes a positive count, got {args.sizes}", Loc("<command line>", 0, 0))
    sizes = parse_at(args.at)
    graph = load_arg(args)
    check_at(graph, sizes)
    providers = {"cpu": ("cpu",), "cuda": ("cuda",), "all": ("cpu", "cuda")}[args.provider]
    what = "running" if graph._memo.get(ONNX_SOURCE) is not None else "exporting"  # an ONNX model runs as is
    print(f"check: {what} {args.file} and choosing up to {args.sizes} sizes ...", file=sys.stderr, flush=True)
    stream = None
    if not args.json:
        started: list[bool] = []

        def stream(r: SizeCheck) -> None:
            if not started:  # the header with the first row: an error before it leaves stdout empty
                started.append(True)
                print(format_row(TABLE_HEAD, WIDTHS), flush=True)
            for row in result_rows(r):
                print(format_row(row, WIDTHS), flush=True)

    if args.weights and graph._memo.get(ONNX_SOURCE) is not None:
        raise ConvGraphError("--weights: an ONNX model carries its own weights", Loc("<command line>", 0, 0))
    report = check(graph, sizes=sizes or None, providers=providers, seed=args.seed, weights=args.weights,
                   count=args.sizes, on_result=stream)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print("\n".join(report.footer()))
    return 0 if report.ok else 1
