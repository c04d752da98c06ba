"""Blocks of the text DSL: ``def`` statements checked once where they are defined, expanded in
place (by the parser) wherever they are called, never executed.

A block is defined at the top level, before its first use, with plain parameters (values or
constants) and literal defaults; its body is the file's statements and ends in ``return`` of a value
name or a tuple of them. It calls only blocks defined before it, so no block can recurse, directly
or through another; its ``cost`` (the statements one call expands to, nested calls included) is
known at definition, so an expansion bomb is refused at the call before anything is expanded.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Protocol, cast

from convgraph.errors import ConvGraphError
from convgraph.front._consts import REFUSED_OPS

MAX_EXPANDED = 5_000  # statements all block calls of one file may expand to (ResNet-152 needs ~600)
MAX_RETURNED = 16

#: expressions that have no meaning anywhere in a .cg file (refused at a block's definition,
#: even when the block is never called)
NEVER = (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Await, ast.Yield,
         ast.YieldFrom, ast.NamedExpr, ast.JoinedStr, ast.Starred, ast.IfExp, ast.Dict, ast.Set)
NO_DEFAULT = object()


class _Parser(Protocol):
    def error(self, node: ast.AST, message: str) -> ConvGraphError: ...

    def forbidden(self, node: ast.AST) -> ConvGraphError: ...

    def default(self, node: ast.expr) -> object: ...

    def check_param_name(self, arg: ast.arg) -> None: ...


@dataclass(frozen=True, eq=False)
class Block:
    """A checked block definition."""

    name: str
    params: tuple[tuple[str, object], ...]  # (name, default or NO_DEFAULT), in order
    body: tuple[ast.stmt, ...]  # without the docstring and the return
    returns: tuple[ast.Name, ...]
    tuple_return: bool
    ret: ast.Return
    cost: int
    line: int


def define(fn: ast.stmt, blocks: dict[str, Block], later: dict[str, int], parser: _Parser) -> Block:
    """Check a ``def`` statement; ``blocks`` are those defined before it, ``later`` maps every
    block name of the file to its line (to name a use before the definition)."""
    if not isinstance(fn, ast.FunctionDef):
        raise parser.forbidden(fn)
    if fn.decorator_list:
        raise parser.error(fn.decorator_list[0], f"block {fn.name!r} takes no decorators")
    if getattr(fn, "type_params", None):
        raise parser.error(fn, f"block {fn.name!r} takes no type parameters")
    params = _params(fn, parser)
    body = list(fn.body)
    if ast.get_docstring(fn, clean=False) is not None:
        body = body[1:]
    _check_body(fn, body, blocks, later, parser)
    ret = cast(ast.Return, body[-1])  # _check_body made sure
    returns, is_tuple = _returns(fn, ret, parser)
    cost = 1 + sum(_statement_cost(stmt, blocks) for stmt in body)
    return Block(fn.name, params, tuple(body[:-1]), returns, is_tuple, ret, min(cost, MAX_EXPANDED + 1), fn.lineno)


def _params(fn: ast.FunctionDef, parser: _Parser) -> tuple[tuple[str, object], ...]:
    a = fn.args
    odd = a.posonlyargs or a.kwonlyargs or a.vararg or a.kwarg
    if odd:
        where = next(x for x in (*a.posonlyargs, *a.kwonlyargs, a.vararg, a.kwarg) if x is not None)
        raise parser.error(where, f"block {fn.name!r}: parameters are plain names with optional literal "
                                  "defaults (no /, *, *args or **kwargs)")
    if fn.returns is not None:
        raise parser.error(fn.returns, "annotations are not allowed in a .cg file")
    defaults = [NO_DEFAULT] * (len(a.args) - len(a.defaults)) + [parser.default(d) for d in a.defaults]
    for arg in a.args:
        parser.check_param_name(arg)
    return tuple((arg.arg, d) for arg, d in zip(a.args, defaults))


def _check_body(fn: ast.FunctionDef, body: list[ast.stmt], blocks: dict[str, Block], later: dict[str, int],
                parser: _Parser) -> None:
    if not body or not isinstance(body[-1], ast.Return):
        where = body[-1] if body else fn
        raise parser.error(where, f"block {fn.name!r} must end in a return of a value or a tuple of values")
    for stmt in body:
        if not isinstance(stmt, (ast.Assign, ast.Expr, ast.Return)):
            raise parser.forbidden(stmt)
        if isinstance(stmt, ast.Return) and stmt is not body[-1]:
            raise parser.error(stmt, "return must be the last statement of a block")
        for node in ast.walk(stmt):
            _check_node(fn, node, blocks, later, parser)


def _check_node(fn: ast.FunctionDef, node: ast.AST, blocks: dict[str, Block], later: dict[str, int],
                parser: _Parser) -> None:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        raise parser.error(node, REFUSED_OPS[ast.Pow])
    if isinstance(node, NEVER):
        raise parser.forbidden(node)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        callee = node.func.id
        if callee == fn.name:
            raise parser.error(node, f"block {callee!r} calls itself: blocks are expanded at parse time "
                                     "and cannot recurse")
        if callee in later and callee not in blocks:
            raise parser.error(node, f"block {callee!r} is defined at line {later[callee]}, after block "
                                     f"{fn.name!r}: a block calls only blocks defined before it (no recursion)")


def _returns(fn: ast.FunctionDef, ret: ast.Return, parser: _Parser) -> tuple[tuple[ast.Name, ...], bool]:
    v = ret.value
    items = v.elts if isinstance(v, ast.Tuple) else [v]
    if v is None or not items or len(items) > MAX_RETURNED or not all(isinstance(e, ast.Name) for e in items):
        raise parser.error(ret, f"block {fn.name!r} returns a value name or a tuple of them, "
                                f"e.g. return h or return a, b (at most {MAX_RETURNED})")
    return tuple(items), isinstance(v, ast.Tuple)  # type: ignore[arg-type]


def _statement_cost(stmt: ast.stmt, blocks: dict[str, Block]) -> int:
    """1, plus the cost of every block called in the statement."""
    calls = (n.func.id for n in ast.walk(stmt) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name))
    return 1 + sum(blocks[c].cost for c in calls if c in blocks)
