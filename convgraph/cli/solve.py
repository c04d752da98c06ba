"""``convgraph solve``: the exact valid sizes, merge verdicts and fixes."""
from __future__ import annotations

import argparse
import json
import sys

from convgraph.cli._main import error_json, load_arg, parse_at
from convgraph.errors import ConvGraphError, Loc
from convgraph.solve import solve


def cli_solve(args: argparse.Namespace) -> int:
    """``convgraph solve FILE [--near SYM=INT ...] [--json]``: exit 0 when the graph has a valid
    size, 2 when it has none (the report is printed first: its fixes say what to change) or on a
    user error."""
    graph = load_arg(args)
    near = parse_at(args.near, "--near")
    unknown = sorted(set(near) - set(graph.symbols))
    if unknown:
        raise ConvGraphError(f"--near: unknown size symbol(s) {', '.join(unknown)}; the graph has "
                             f"{', '.join(graph.symbols) or 'none'}", Loc("<command line>", 0, 0))
    sol = solve(graph)
    err = sol.no_valid_size()
    if args.json:
        data = sol.to_json()
        json.dump({**error_json(err), **data} if err is not None else data, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0 if err is None else 2
    print(sol.text(near))
    if err is not None:
        raise err
    return 0
