"""``convgraph check``: the export on onnxruntime across sizes, against the formulas and references."""
from __future__ import annotations

import json

from convgraph.cli._main import load_arg, parse_at
from convgraph.validate import check


def cli_check(args) -> int:
    """``convgraph check FILE [--at SYM=INT ...] [--provider cpu|cuda|all] [--json]``: exit 0 when
    every run matches, 1 on any mismatch, 2 on a user error."""
    sizes = parse_at(args.at) or None
    graph = load_arg(args)
    providers = {"cpu": ("cpu",), "cuda": ("cuda",), "all": ("cpu", "cuda")}[args.provider]
    report = check(graph, sizes=sizes, providers=providers, seed=args.seed, weights=args.weights)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(report.table())
    return 0 if report.ok else 1
