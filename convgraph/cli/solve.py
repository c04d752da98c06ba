"""``convgraph solve``: the exact valid sizes, merge verdicts and fixes."""
from __future__ import annotations

import argparse
import json
import sys

from convgraph.cli._main import error_json, load_input, parse_at
from convgraph.errors import ConvGraphError, Loc
from convgraph.front.python_file import is_python_target
from convgraph.solve import solve


def cli_solve(args: argparse.Namespace) -> int:
    """``convgraph solve FILE [--near SYM=INT ...] [--json]``: exit 0 when the graph has a valid
    size, 2 when it has none (the report is printed first: its fixes say what to change) or on a
    user error."""
    graph = load_input(args)
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
    if is_python_target(args.file) and sol.fixes:
        print("\nnote: the fixes are written in convgraph's language (.cg); in this PyTorch module make the "
              "same change in forward at the line given (a crop or pad to the other value, a padding or "
              "output_padding), or feed only the valid sizes above")
    if err is not None:
        raise err
    return 0
