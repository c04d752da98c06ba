"""``convgraph summary``: per value the shape formula, parameters, MACs as an exact formula,
receptive field, jump and start offset per spatial axis, and totals; ``--at`` gives numbers,
``--plot`` draws MACs and activation memory against the input size. Imports no onnx."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import Any

import sympy as sp

from convgraph import dims as D
from convgraph.cli._main import check_at, load_input, parse_at
from convgraph.errors import ConvGraphError, Loc
from convgraph.ir import Graph
from convgraph.shapes.summary import Row, Summary, summarize

#: a formula longer than this shows as "(--at)" in the text table (the JSON has it in full)
CELL = 40


def _expr(e: Any, sizes: Mapping[str, int]) -> str:
    e = sp.sympify(e)
    if sizes:
        e = e.subs({D.sympy_symbol(k): v for k, v in sizes.items()})
    return str(e)


def _dim(d: D.Dim, sizes: Mapping[str, int]) -> str:
    return _expr(D.to_sympy(d), sizes) if sizes else D.dim_str(d)


def _fields(row: Row, sizes: Mapping[str, int]) -> list[dict | None]:
    return [None if f is None else {k: _expr(getattr(f, k), sizes) for k in ("size", "jump", "start")}
            for f in row.fields]


def row_json(row: Row, sizes: Mapping[str, int]) -> dict:
    return {"name": row.name, "kind": row.kind, "layer": row.layer_name,
            "shape": [_dim(d, sizes) for d in row.shape], "params": row.params,
            "macs": _expr(row.macs, sizes), "fields": _fields(row, sizes)}


def summary_json(filename: str, s: Summary, sizes: Mapping[str, int]) -> dict:
    return {"file": filename, "sizes": dict(sizes), "values": [row_json(r, sizes) for r in s.rows],
            "total": {"params": s.params, "macs": _expr(s.macs, sizes),
                      "activations": _expr(s.activations, sizes)}}


def _paren(text: str) -> str:
    return f"({text})" if " " in text else text


def _cell(text: str) -> str:
    return text if len(text) <= CELL else "(--at)"


def _axis_cells(row: Row, sizes: Mapping[str, int]) -> tuple[str, str, str]:
    if not row.fields:
        return ("all", "", "") if len(row.shape) <= 2 else ("", "", "")
    fs = _fields(row, sizes)
    per = lambda key: _cell(", ".join("all" if f is None else f[key] for f in fs))  # noqa: E731
    return per("size"), per("jump"), per("start")


def _table(s: Summary, sizes: Mapping[str, int]) -> list[str]:
    head = ("value", "layer", "shape", "params", "MACs", "receptive field", "jump", "start")
    rows = [head]
    for r in s.rows:
        kind = r.kind + (f" '{r.layer_name}'" if r.layer_name and r.layer_name != r.name else "")
        shape = " x ".join(_paren(_dim(d, sizes)) for d in r.shape)
        rows.append((r.name, kind, shape, f"{r.params:,}" if r.params else "",
                     _cell(_expr(r.macs, sizes)) if r.macs != 0 else "", *_axis_cells(r, sizes)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]


def cli_summary(args: argparse.Namespace) -> int:
    """``convgraph summary FILE [--json] [--at SYM=INT ...] [--plot OUT.png]``."""
    sizes = parse_at(args.at)
    graph = load_input(args)
    check_at(graph, sizes)
    s = summarize(graph)
    if args.plot:
        _plot(graph, s, args.plot)
    if args.json:
        print(json.dumps(summary_json(graph.filename, s, sizes), indent=2))
        return 0
    print("\n".join(_table(s, sizes)))
    acts = _expr(s.activations, sizes)
    print(f"\ntotal: {s.params:,} parameters; MACs {_expr(s.macs, sizes)}; activations {acts} elements"
          + (f" ({int(acts) * 4 / 2 ** 20:.1f} MiB float32)" if acts.isdigit() else ""))
    print("receptive field, jump, start: per spatial axis, in input elements; "
          "'all': the whole input (or no window, after a reshape)")
    return 0


def _plot(graph: Graph, s: Summary, path: str) -> None:
    from convgraph.animate.plot import plot_png, series
    from convgraph.cli.torch import write_atomic_bytes

    try:
        png = plot_png(series(graph, s), graph.filename)
    except ValueError as e:
        raise ConvGraphError(f"--plot: {e}", Loc(graph.filename, 0, 0)) from e
    write_atomic_bytes(path, png)
    print(f"wrote {path}", file=sys.stderr)
