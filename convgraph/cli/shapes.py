"""``convgraph shapes``: every value's shape as an exact formula (or at given sizes), the
constraints, and the valid input sizes. Imports no onnx / onnxruntime."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping

from convgraph import dims as D
from convgraph.dims import Dim
from convgraph.ir import Graph, Node
from convgraph.shapes import Constraint, ShapeResult, infer


def _dim_at(d: Dim, sizes: Mapping[str, int]) -> int | str:
    """An int when every symbol of d is given, else the formula (given symbols substituted)."""
    syms = D.symbols(d)
    if syms <= set(sizes):
        return D.evaluate(d, sizes)
    if not syms & set(sizes):
        return D.dim_str(d)
    e = D.to_sympy(d).subs({D.sympy_symbol(k): v for k, v in sizes.items()})
    return str(e)


def _op_label(node: Node) -> str:
    if node.op == "layer":
        named = f" '{node.layer_name}'" if node.layer_name != node.name else ""
        return node.spec.type_name + named
    if node.op == "cat":
        return f"cat(dim={node.dim})"
    return {"add": "+", "sub": "-", "mul": "*", "crop": "crop", "input": "input", "pad_like": "pad(like=)",
            "interp_like": "interpolate(like=)", "slice": "slice"}.get(node.op, node.op)


def _condition(c: Constraint, sizes: Mapping[str, int]) -> str:
    if sizes:
        return c.condition()
    return c.solved() or c.condition()


def shapes_json(graph: Graph, res: ShapeResult, sizes: Mapping[str, int], valid: dict | None) -> dict:
    shape = lambda n: [_dim_at(d, sizes) for d in res.values[n]]  # noqa: E731
    values: list[dict] = [{"name": n.name, "op": _op_label(n), "line": n.loc.line, "shape": shape(n.name),
                           **({"node": n.loc.node} if n.loc.node else {})}
                          for n in graph.nodes]
    out = {
        "file": graph.filename,
        "inputs": {n.name: shape(n.name) for n in graph.inputs},
        "outputs": {n: shape(n) for n in graph.outputs},
        "values": values,
        "constraints": [{"layer": c.where, "line": c.loc.line, "condition": _condition(c, sizes),
                         "rule": c.rule, "formula": c.condition(), "kind": c.kind,
                         **({"node": c.loc.node} if c.loc.node else {})}
                        for c in res.constraints],
    }
    if sizes:
        out["at"] = dict(sizes)
    if valid is not None:
        out["valid"] = valid
        _add_on_valid(graph, res, values)
    return out


def _add_on_valid(graph: Graph, res: ShapeResult, values: list[dict]) -> None:
    """``shape_on_valid``: the shape simplified on the valid sizes, where that differs from the
    general formula (``shape``, kept)."""
    from convgraph.solve import solve
    from convgraph.solve._simplify import simplified, valid_sets

    sets = valid_sets(solve(graph, tiling=False))
    for v in values:
        simple = [d if isinstance(d, int) else simplified(d, sets) for d in res.values[v["name"]]]
        if simple != v["shape"]:
            v["shape_on_valid"] = simple


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [*rows, header]) for i in range(len(header))]
    fmt = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def shapes_text(graph: Graph, res: ShapeResult, sizes: Mapping[str, int], valid: dict | None) -> str:
    data = shapes_json(graph, res, sizes, valid)
    out = []
    if graph.doc:
        out += [graph.doc.strip().splitlines()[0], ""]
    onnx = any("node" in v for v in data["values"])  # imported: the ONNX node, not a line
    rows = [[v["name"], v["op"], v.get("node", "-") if onnx else str(v["line"]),
             "(" + ", ".join(map(str, v.get("shape_on_valid", v["shape"]))) + ")"] for v in data["values"]]
    out.append(_table(rows, ["value", "op", "node" if onnx else "line", "shape"]))
    if any("shape_on_valid" in v for v in data["values"]):
        out.append("(shapes simplified on the valid sizes below; --json keeps the general formulas)")
    out.append("")
    outs = ", ".join(graph.outputs)
    out.append(f"outputs: {outs}" + (f"   at {', '.join(f'{k}={v}' for k, v in sizes.items())}" if sizes else ""))
    if data["constraints"]:
        out += ["", "constraints:"]
        for c in data["constraints"]:
            extra = "" if c["condition"] == c["formula"] else f"   [{c['formula']}]"
            at = f"node {c['node']}" if c.get("node") else f"line {c['line']}"
            out.append(f"  {at}: {c['layer']}: {c['rule']}: {c['condition']}{extra}")
    if valid is not None:
        from convgraph.solve import solve
        from convgraph.solve._report import valid_lines

        out += ["", "valid sizes:"] + [f"  {line}" for line in valid_lines(solve(graph, tiling=False))]
    return "\n".join(out)


def valid_sizes(graph: Graph) -> dict:
    """Per symbol, the exact sets (the JSON shape of ``solve --json``'s ``symbols``); raises the
    no-valid-size error (exit 2) when the graph has none."""
    from convgraph.solve import solve
    from convgraph.solve._report import sets_json

    sol = solve(graph, tiling=False)
    err = sol.no_valid_size()
    if err is not None:
        raise err
    return sets_json(sol)


def cli_shapes(args: argparse.Namespace) -> int:
    from convgraph.cli._main import check_at, load_input, parse_at

    graph = load_input(args)
    sizes = parse_at(args.at)
    res = infer(graph)
    check_at(graph, sizes)
    valid = None if sizes else valid_sizes(graph)
    if args.json:
        json.dump(shapes_json(graph, res, sizes, valid), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(shapes_text(graph, res, sizes, valid))
    return 0
