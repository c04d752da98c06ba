"""``convgraph solve``: the exact valid sizes, merge verdicts and fixes."""
from __future__ import annotations

import argparse
import json
import sys

from convgraph.cli._main import load_arg, parse_at
from convgraph.errors import ConvGraphError, Loc
from convgraph.solve import solve


def cli_solve(args: argparse.Namespace) -> int:
    """``convgraph solve FILE [--near SYM=INT ...] [--json]``: exit 0 when every symbol has a valid
    size and no merge or expect is refuted for every size, 1 otherwise, 2 on a user error."""
    graph = load_arg(args)
    near = parse_at(args.near, "--near")
    unknown = sorted(set(near) - set(graph.symbols))
    if unknown:
        raise ConvGraphError(f"--near: unknown size symbol(s) {', '.join(unknown)}; the graph has "
                             f"{', '.join(graph.symbols) or 'none'}", Loc("<command line>", 0, 0))
    sol = solve(graph)
    if args.json:
        json.dump(sol.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(sol.text(near))
    return 0 if sol.ok else 1
