"""Exact dim algebra: quasi-affine sizes in one canonical form (nested floors collapse), and the
exactly periodic size sets (``EPSet``) the solver works with. Imports nothing of convgraph but errors."""
from convgraph.dims._algebra import (  # noqa: F401
    Var, FloorDiv, FScale, Base, DimOps, QA, Combo, Dim, Expr, const, sym, lift, lower, is_const,
    add, mul, floordiv, ceildiv, scale_floor, evaluate, symbols, period_slope, sympy_symbol,
    to_sympy, dim_str, parse_dim, from_sympy, EPSet, compare, solve_condition, is_monotone,
    min_at_least,
)
