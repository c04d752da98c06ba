"""``convgraph fix FILE -o OUT.cg``: apply the first verified fix of every skip to the source text.

Each fix is a structured edit (``convgraph.solve._edits.Edit``) located by the DSL's source
positions; the text is edited in place through ``ast`` positions, so comments and the layout of
every untouched line are kept. The edited text is parsed and solved again before it is written
(atomically: a temporary file in the output's folder, then a rename); the input is never
overwritten.
"""
from __future__ import annotations

import argparse
import ast
import os
import sys
from collections.abc import Iterator

from convgraph.api import parse
from convgraph.errors import ConvGraphError, Loc
from convgraph.export._paths import check_destination, write_atomic
from convgraph.solve import solve
from convgraph.solve._edits import Edit, best_per_skip

#: a replacement of the text between two (line, char column) positions, 1-based lines, 0-based columns
Span = tuple[tuple[int, int], tuple[int, int], str]


def cli_fix(args: argparse.Namespace) -> int:
    """Exit 0 when the written file has every merge proved, 1 when some merge still holds only on
    classes (the file is written; what remains is listed), 2 on a user error (nothing written)."""
    src, out = args.file, args.output
    _refuse_same(src, out)
    from convgraph.api import load

    graph = load(src)
    with open(src, encoding="utf-8-sig") as fh:
        text = fh.read()
    fixes = best_per_skip(solve(graph))
    new_text = apply_edits(text, [e for f in fixes for e in f.edits], src)
    fixed = parse(new_text, filename=out)
    sol = solve(fixed)
    err = sol.no_valid_size()
    if err is not None:
        raise ConvGraphError(f"the fixed file would have no valid size ({err.message}); nothing written",
                             Loc(src, 0, 0))
    _write_atomic(out, new_text)
    for f in fixes:
        print(f"line {f.line}, {f.where}: {f.edit}", file=sys.stderr)
    left = [m for m in sol.merges if m.constraint.kind == "merge" and m.verdict != "proved"]
    for m in left:
        print(f"not fixed: line {m.line}: {m.message}", file=sys.stderr)
    state = "every merge proved" if not left else f"{len(left)} merge(s) still conditional"
    print(f"wrote {out}: {len(fixes)} fix(es) applied; {state}", file=sys.stderr)
    return 0 if not left else 1


def _refuse_same(src: str, out: str) -> None:
    if os.path.realpath(src) == os.path.realpath(out) or (os.path.exists(out) and os.path.samefile(src, out)):
        raise ConvGraphError(f"fix never overwrites its input: give -o a new path, not {out!r}",
                             Loc("<command line>", 0, 0))
    if not out.endswith(".cg"):
        raise ConvGraphError(f"fix writes a .cg file: -o {out!r} should end in .cg", Loc("<command line>", 0, 0))


def _write_atomic(path: str, text: str) -> None:
    write_atomic(check_destination(path), text.encode("utf-8"))


# --------------------------------------------------------------------------------------------
# Text edits through ast positions
# --------------------------------------------------------------------------------------------


def apply_edits(text: str, edits: list[Edit], filename: str) -> str:
    """The text with every edit applied (positions are those of the unedited text)."""
    if text and not text.endswith("\n"):
        text += "\n"
    lines = text.splitlines(keepends=True)
    tree = ast.parse(text, filename=filename)
    spans = [s for e in edits for s in _spans(tree, lines, e)]
    for (l0, c0), (l1, c1), new in sorted(spans, key=lambda s: (s[0], s[1]), reverse=True):
        head, tail = lines[l0 - 1][:c0] if l0 <= len(lines) else "", lines[l1 - 1][c1:] if l1 <= len(lines) else ""
        lines[l0 - 1:l1] = [head + new + tail]
    return "".join(lines)


def _col(lines: list[str], line: int, byte_col: int) -> int:
    """ast's UTF-8 byte column as a character column."""
    return len(lines[line - 1].encode("utf-8")[:byte_col].decode("utf-8", errors="replace"))


def _start(node: ast.expr | ast.stmt, lines: list[str]) -> tuple[int, int]:
    return node.lineno, _col(lines, node.lineno, node.col_offset)


def _end(node: ast.expr | ast.stmt, lines: list[str]) -> tuple[int, int]:
    line = node.end_lineno or node.lineno
    return line, _col(lines, line, node.end_col_offset if node.end_col_offset is not None else node.col_offset)


def _call_at(tree: ast.Module, lines: list[str], loc: Loc) -> ast.Call:
    """The innermost call starting at loc (``Conv2d(3, 8, 3)`` in ``Conv2d(3, 8, 3)(x)``)."""
    at = (loc.line, loc.col - 1)
    found = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and _start(node, lines) == at]
    if not found:
        raise ConvGraphError(f"fix: no layer call at {loc} in the source", loc)
    return found[-1]


def _spans(tree: ast.Module, lines: list[str], e: Edit) -> Iterator[Span]:
    if e.kind == "keyword":
        yield _keyword_span(_call_at(tree, lines, e.loc), lines, e.keyword, e.value)
    elif e.kind == "crop":
        yield from _crop_spans(tree, lines, e)
    else:
        yield _assume_span(tree, lines, e.value)


def _keyword_span(call: ast.Call, lines: list[str], kw: str, value: str) -> Span:
    """Replace the argument where it is written (as a keyword, or positionally in PyTorch's
    order), else add it as a keyword before the closing parenthesis."""
    given = [k.value for k in call.keywords if k.arg == kw] + _positional(call, kw)
    if given:
        return _start(given[0], lines), _end(given[0], lines), value
    line, col = _end(call, lines)
    end = (line, col - 1)  # before ')'
    sep = ", " if call.args or call.keywords else ""
    return end, end, f"{sep}{kw}={value}"


def _positional(call: ast.Call, kw: str) -> list[ast.expr]:
    from convgraph.front.catalogue import CATALOGUE, param_names

    func = call.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    order = param_names(name) if name in CATALOGUE else ()
    idx = order.index(kw) if kw in order else len(call.args)
    return [call.args[idx]] if idx < len(call.args) else []


def _statement(tree: ast.Module, line: int) -> ast.stmt:
    return next(s for s in tree.body if s.lineno <= line <= (s.end_lineno or s.lineno))


def _crop_spans(tree: ast.Module, lines: list[str], e: Edit) -> Iterator[Span]:
    stmt = _statement(tree, e.loc.line)
    first = lines[stmt.lineno - 1]
    indent = first[: len(first) - len(first.lstrip())]
    yield (stmt.lineno, 0), (stmt.lineno, 0), f"{indent}{e.name} = crop({e.operand}, like={e.like})\n"
    value = getattr(stmt, "value", stmt)
    for node in ast.walk(value):
        if isinstance(node, ast.Name) and node.id == e.operand:
            yield _start(node, lines), _end(node, lines), e.name


def _assume_span(tree: ast.Module, lines: list[str], value: str) -> Span:
    """A new ``assume(...)`` line after the last ``input(...)`` statement."""
    def is_input(s: ast.stmt) -> bool:
        v = getattr(s, "value", None)
        return isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id == "input"

    last = max((s.end_lineno or s.lineno for s in tree.body if is_input(s)), default=0)
    return (last + 1, 0), (last + 1, 0), f"assume({value})\n"
