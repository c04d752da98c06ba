"""Constant expressions of the text DSL, evaluated at parse time with bounds (never executed).

A constant is an int, float, bool, str, None, or a tuple/list of them. Integers combine with
``+ - * // %`` and unary minus, exactly as Python computes them (floor division and modulo round
towards minus infinity); ``a or b`` picks the first truthy operand, as in Python (the idiom for a
None default: ``mid or cout``). Every integer, literal or computed, stays within ``MAX_INT`` in
magnitude (``2**31``), so no expression can build a huge number: ``**`` is not an operator of the
DSL at all, and ``2**31 * 2**31`` is refused at the multiplication.

>>> import ast
>>> from convgraph.errors import DSLSyntaxError, Loc
>>> err = lambda node, msg: DSLSyntaxError(msg, Loc())
>>> ev = Evaluator(lambda n: {"C": 128}[n.id], err, lambda node: err(node, "not a constant"))
>>> ev(ast.parse("(C * 4 * 4, -7 // 2, None or 5)", mode="eval").body)
(2048, -4, 5)
"""
from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import TypeGuard

from convgraph.errors import ConvGraphError

MAX_INT = 2**31  # the largest integer magnitude a .cg file may write or compute
MAX_STR = 256
MAX_ITEMS = 64
MAX_LITERAL_DEPTH = 4  # nesting of tuples/lists
MAX_EXPR_DEPTH = 32  # nesting of operators

Lookup = Callable[[ast.Name], object]
ErrorAt = Callable[[ast.AST, str], ConvGraphError]

#: integer operators: the exact Python operation
INT_OPS: dict[type, Callable[[int, int], int]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
}
#: operators that are not the DSL's, with what to write instead
REFUSED_OPS: dict[type, str] = {
    ast.Pow: "'**' is not an operator of the DSL (its integer operators are + - * // %)",
    ast.Div: "'/' is not an operator of the DSL on ints: write // for floor division",
    ast.MatMult: "'@' is not an operator of the DSL", ast.LShift: "'<<' is not an operator of the DSL",
    ast.RShift: "'>>' is not an operator of the DSL", ast.BitOr: "'|' is not an operator of the DSL",
    ast.BitAnd: "'&' is not an operator of the DSL", ast.BitXor: "'^' is not an operator of the DSL",
}


def is_int(v: object) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def check_scalar(node: ast.AST, v: object, error: ErrorAt, what: str = "literal") -> object:
    """A literal's value, within the bounds (also the result of an operation, ``what="result"``)."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        if abs(v) > MAX_INT:
            kind = "integer literal" if what == "literal" else "integer result"
            raise error(node, f"{kind} too large (at most 2**31 in magnitude)")
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise error(node, "float literal out of range")
        return v
    if isinstance(v, str):
        if len(v) > MAX_STR:
            raise error(node, f"string literal too long ({len(v)} characters, at most {MAX_STR})")
        return v
    raise error(node, f"{type(v).__name__} literals are not allowed")


class Evaluator:
    """Evaluates constant expressions: ``lookup`` resolves a name (raising for a non-constant),
    ``error`` words a refusal at a node, ``other`` refuses a node that is no constant at all."""

    def __init__(self, lookup: Lookup, error: ErrorAt, other: Callable[[ast.AST], ConvGraphError]):
        self.lookup, self.error, self.other = lookup, error, other

    def __call__(self, node: ast.expr, depth: int = 0, nest: int = 0) -> object:
        if depth > MAX_EXPR_DEPTH:
            raise self.error(node, "expression nested too deeply")
        if isinstance(node, ast.Constant):
            return check_scalar(node, node.value, self.error)
        if isinstance(node, ast.Name):
            return self.lookup(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = node.operand.value if isinstance(node.operand, ast.Constant) else None
            if isinstance(v, (int, float)) and not isinstance(v, bool):  # a negative literal, bounded as one
                return check_scalar(node, -v if isinstance(node.op, ast.USub) else v, self.error)
            return self.sign(node, self(node.operand, depth + 1, nest))
        if isinstance(node, ast.BinOp):
            return self.binop(node, depth)
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            return self.or_(node, depth, nest)
        if isinstance(node, (ast.Tuple, ast.List)):
            if nest >= MAX_LITERAL_DEPTH or len(node.elts) > MAX_ITEMS:
                raise self.error(node, f"literal too large or nested too deeply (at most {MAX_ITEMS} items, "
                                       f"{MAX_LITERAL_DEPTH} levels)")
            items = [self(e, depth + 1, nest + 1) for e in node.elts]
            return tuple(items) if isinstance(node, ast.Tuple) else items
        raise self.other(node)

    def sign(self, node: ast.UnaryOp, v: object) -> object:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.error(node, f"a sign applies to a number, got {v!r}")
        return -v if isinstance(node.op, ast.USub) else v

    def binop(self, node: ast.BinOp, depth: int) -> int:
        if type(node.op) in REFUSED_OPS:
            raise self.error(node, REFUSED_OPS[type(node.op)])
        a, b = self(node.left, depth + 1), self(node.right, depth + 1)
        if not is_int(a):
            raise self.error(node.left, f"arithmetic works on ints only (+ - * // %), got {a!r}")
        if not is_int(b):
            raise self.error(node.right, f"arithmetic works on ints only (+ - * // %), got {b!r}")
        if isinstance(node.op, (ast.FloorDiv, ast.Mod)) and b == 0:
            raise self.error(node, "integer division by zero")
        result = INT_OPS[type(node.op)](a, b)
        check_scalar(node, result, self.error, "result")
        return result

    def or_(self, node: ast.BoolOp, depth: int, nest: int) -> object:
        """Python's ``a or b``: the first truthy operand, else the last (``mid or cout``)."""
        v: object = None
        for operand in node.values:
            v = self(operand, depth + 1, nest)
            if v:
                return v
        return v
