"""``convgraph check``: the export on onnxruntime across sizes, against the formulas and references."""
from __future__ import annotations

import argparse
import json
from typing import Any

from convgraph.cli._main import load_arg, parse_at
from convgraph.errors import ConvGraphError, Loc
from convgraph.front.onnx_import import is_onnx
from convgraph.validate import check


def cli_check(args: argparse.Namespace) -> int:
    """``convgraph check FILE [--at SYM=INT ...] [--provider cpu|cuda|all] [--json]``: exit 0 when
    every run matches, 1 on any mismatch, 2 on a user error."""
    sizes = parse_at(args.at) or None
    providers = {"cpu": ("cpu",), "cuda": ("cuda",), "all": ("cpu", "cuda")}[args.provider]
    if is_onnx(args.file):
        report = _check_onnx(args, sizes, providers)
    else:
        graph = load_arg(args)
        report = check(graph, sizes=sizes, providers=providers, seed=args.seed, weights=args.weights)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(report.table())
    return 0 if report.ok else 1


def _check_onnx(args: argparse.Namespace, sizes: Any, providers: tuple[str, ...]) -> Any:
    """An ONNX model: the file itself on onnxruntime, against the formulas and the numpy reference
    of the imported IR with the file's weights."""
    from convgraph.api import check as api_check

    if args.weights:
        raise ConvGraphError("--weights: an ONNX model carries its own weights", Loc("<command line>", 0, 0))
    return api_check(load_arg(args), sizes=sizes, providers=providers, seed=args.seed)
