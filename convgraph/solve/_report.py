"""Words, JSON and ONNX metadata for a ``convgraph.solve.Solution``."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from convgraph import dims as D
from convgraph.dims import EPSet
from convgraph.solve._sets import BRUTE_LIMIT, MAX_PERIOD

NO_PERIOD = (f"some condition has no usable period (a non-dyadic Upsample scale, or a period over "
             f"{MAX_PERIOD} from deeply nested strides)")

if TYPE_CHECKING:  # pragma: no cover
    from convgraph.solve._solve import Coupling, Fix, Merge, Solution, SymbolSizes


# --------------------------------------------------------------------------------------------
# Sets in words
# --------------------------------------------------------------------------------------------


def _ranges(values: Iterable[int]) -> str:
    """{1, 2, 3, 7} -> '1..3, 7'"""
    xs = sorted(values)
    out, i = [], 0
    while i < len(xs):
        j = i
        while j + 1 < len(xs) and xs[j + 1] == xs[j] + 1:
            j += 1
        out.append(str(xs[i]) if j == i else f"{xs[i]}, {xs[j]}" if j == i + 1 else f"{xs[i]}..{xs[j]}")
        i = j + 1
    return ", ".join(out)


def describe_set(s: EPSet, name: str) -> str:
    """``H >= 16, H % 16 == 0``; ``L >= 16, L % 16 in {0, 1, 2, 3}``; ``H in {224..255}``."""
    if s.empty:
        return "no valid size"
    parts = []
    if s.residues:
        text = f"{name} >= {periodic_start(s)}"
        if len(s.residues) < s.modulus:
            res = sorted(s.residues)
            text += (f", {name} % {s.modulus} == {res[0]}" if len(res) == 1
                     else f", {name} % {s.modulus} in {{{', '.join(map(str, res))}}}")
        parts.append(text)
    if s.exceptions:
        parts.append(("or " if s.residues else "") + f"{name} in {{{_ranges(s.exceptions)}}}")
    return " ".join(parts)


def periodic_start(s: EPSet) -> int:
    """The first member of the periodic part (``start`` itself may lie before it)."""
    x = s.start
    while s.residues and x % s.modulus not in s.residues:
        x += 1
    return x


def classes_text(s: EPSet, name: str) -> str:
    """``H ≡ 0..3 (mod 16)``, ``H >= 30``, plus a finite part."""
    parts = []
    if s.residues:
        parts.append(f"{name} >= {periodic_start(s)}" if s.modulus == 1 else
                     f"{name} ≡ {_ranges(s.residues)} (mod {s.modulus})")
    if s.exceptions:
        parts.append(f"{name} in {{{_ranges(s.exceptions)}}}")
    return " or ".join(parts)


def class_strings(s: EPSet, name: str) -> list[str]:
    """The set as residue classes: ``['H ≡ 0 (mod 16)']``; a finite part as ``'H in {..}'``."""
    out = []
    if s.residues:
        if s.modulus == 1:
            out.append(f"{name} >= {periodic_start(s)}")
        else:
            out += [f"{name} ≡ {r} (mod {s.modulus})" for r in sorted(s.residues)]
    if s.exceptions:
        out.append(f"{name} in {{{_ranges(s.exceptions)}}}")
    return out


def when(s: EPSet, name: str) -> str:
    """A condition phrase for a set of sizes: ``H mod 4 >= 2``, ``H mod 16 in {4..15}``, ``H <= 29``."""
    parts = []
    if s.residues:
        m, res = s.modulus, sorted(s.residues)
        if m == 1:
            parts.append(f"{name} >= {periodic_start(s)}")
        elif res == list(range(res[0], m)):
            parts.append(f"{name} mod {m} >= {res[0]}" if len(res) > 1 else f"{name} mod {m} == {res[0]}")
        elif res == list(range(0, res[-1] + 1)):
            parts.append(f"{name} mod {m} <= {res[-1]}" if len(res) > 1 else f"{name} mod {m} == 0")
        else:
            parts.append(f"{name} mod {m} in {{{_ranges(res)}}}")
    if s.exceptions:
        exc = sorted(s.exceptions)
        parts.append(f"{name} <= {exc[-1]}" if exc == list(range(1, exc[-1] + 1)) and not s.residues
                     else f"{name} in {{{_ranges(exc)}}}")
    return " or ".join(parts)


# --------------------------------------------------------------------------------------------
# Verdict messages
# --------------------------------------------------------------------------------------------


def merge_message(m: Merge, base: EPSet) -> str:
    c, n = m.constraint, m.one_symbol
    lhs, rhs = D.dim_str(c.lhs), D.dim_str(c.rhs)
    both = f"{lhs} vs {rhs}" if c.op == "==" else f"{lhs} {c.op} {rhs}"
    verb = "they differ" if c.op == "==" else "it fails"
    tail = "" if m.decided else f" (checked size by size for {n} <= {BRUTE_LIMIT} only: not exact)"
    if base.empty:
        return f"{m.where}: no size of {n} passes the layers' own rules, so {both} is never reached{tail}"
    if m.verdict == "proved":
        return f"{m.where}: {c.condition()} holds for every valid {n} ({describe_set(base, n)}){tail}"
    x = m.counterexample or {}
    at = f"{n}={x['sizes'][n]}: {x['lhs']} vs {x['rhs']}"
    if m.verdict == "never":
        return f"{m.where}: {c.rule}: {both} ({verb} for every valid {n}); smallest counterexample {at}{tail}"
    return (f"{m.where}: {c.rule}: {both} ({verb} when {when(m.fails_set, n)}); holds for "
            f"{classes_text(m.holds_set, n)}, i.e. {describe_set(m.holds_set, n)}{tail}")


def coupling_message(cp: Coupling) -> str:
    c = cp.constraint
    names = ", ".join(cp.symbols)
    if cp.product is not None:
        tups = cp.product.tuples
        if not tups:
            return f"{c.where}: {c.rule}: {c.condition()} holds for no valid sizes of {names}"
        shown = ["(" + " and ".join(f"{n} in {{{_ranges_of(s)}}}" for n, s in t) + ")" for t in tups[:6]]
        more = f" and {len(tups) - 6} more" if len(tups) > 6 else ""
        return f"{c.where}: {c.condition()} pins {names} to {len(tups)} admissible tuple(s): {'; '.join(shown)}{more}"
    if not cp.examples:
        return (f"{c.where}: {c.condition()} couples {names}; no solution among the first few valid sizes "
                f"of each (a bounded search, not a proof)")
    ex = "; ".join(", ".join(f"{k}={v}" for k, v in e.items()) for e in cp.examples)
    return f"{c.where}: {c.condition()} couples {names}; the smallest solutions: {ex}"


def _ranges_of(s: EPSet) -> str:
    if s.residues:
        return describe_set(s, "x")
    return _ranges(s.exceptions)


# --------------------------------------------------------------------------------------------
# JSON, metadata, text
# --------------------------------------------------------------------------------------------


def _merge_json(m: Merge) -> dict[str, Any]:
    out: dict[str, Any] = {"where": m.where, "line": m.line, "condition": m.condition, "verdict": m.verdict,
           "message": m.message}
    if m.symbol is not None:
        out["symbol"] = m.symbol
    if m.verdict == "classes":
        out["classes"] = class_strings(m.holds_set, m.one_symbol)
        out["holds"] = m.holds_set.to_json()
    if m.counterexample is not None and m.verdict in ("classes", "never"):
        out["counterexample"] = m.counterexample
    if not m.decided:
        out["exact"] = False
    return out


def _symbol_json(s: SymbolSizes) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": s.runs.to_json(), "exact": s.tiles.to_json()}
    which = [k for k, ok in (("runs", s.decided), ("exact", s.exact_decided)) if not ok]
    if which:
        out["note"] = f"{' and '.join(which)}: brute force over {s.name} = 1..{BRUTE_LIMIT}, not exact ({NO_PERIOD})"
    return out


def to_json(sol: Solution) -> dict:
    return {
        "symbols": {n: _symbol_json(s) for n, s in sol.symbols.items()},
        "merges": [_merge_json(m) for m in sol.merges],
        "fixes": [{"where": f.where, "line": f.line, "edit": f.edit, "holds": f.holds, "kind": f.kind}
                  for f in sol.fixes],
    }


def metadata(sol: Solution) -> dict[str, str]:
    """Compact strings for ONNX ``metadata_props``."""
    out = {}
    for n, s in sol.symbols.items():
        note = "" if s.decided else f" (checked up to {BRUTE_LIMIT})"
        exact_note = "" if s.exact_decided else f" (checked up to {BRUTE_LIMIT})"
        out[f"convgraph.valid_sizes.{n}"] = describe_set(s.runs, n) + note
        out[f"convgraph.exact_sizes.{n}"] = describe_set(s.tiles, n) + exact_note
    for i, cp in enumerate(sol.couplings):
        out[f"convgraph.coupling.{i}"] = cp.message
    return out


def _symbol_text(s: SymbolSizes, near: Mapping[str, int]) -> list[str]:
    n, pad = s.name, " " * len(s.name)
    if not s.constrained and s.tiles == s.runs:
        lines = [f"  {n}: any size (no constraint)"]
    else:
        lines = [f"  {n}: runs for {describe_set(s.runs, n)}" + _first(s.runs),
                 f"  {pad}  tiles exactly for {describe_set(s.tiles, n)}" + _first(s.tiles)]
    if n in near:
        for label, st in (("runs", s.runs), ("tiles exactly", s.tiles)):
            lo, hi = st.near(near[n])
            lines.append(f"  {pad}  nearest to {near[n]} ({label}): "
                         f"{lo if lo is not None else 'none'} below, {hi if hi is not None else 'none'} above")
    which = [k for k, ok in (("runs", s.decided), ("tiles exactly", s.exact_decided)) if not ok]
    if which:
        lines.append(f"  {pad}  note ({' and '.join(which)}): {NO_PERIOD}: checked size by size for "
                     f"{n} = 1..{BRUTE_LIMIT} only, not exact")
    return lines


def _first(s: EPSet) -> str:
    return "" if s.empty else f"   first: {', '.join(map(str, s.first(8)))}"


def _fix_lines(fixes: Iterable[Fix]) -> list[str]:
    """One line per distinct edit (an edit that fixes the H and the W axis is shown once)."""
    grouped: dict[tuple[int, str, str, str], list[Fix]] = {}
    for f in fixes:
        grouped.setdefault((f.line, f.where, f.kind, f.edit), []).append(f)
    out = []
    if any(f.merge.constraint.loc.node for f in fixes):
        return ["  (fixes are edits of a .cg file; this graph was imported from ONNX: change the model that "
                "exported it, at the node named above)"]
    for (line, where, kind, edit), fs in grouped.items():
        body = f"note: {edit}" if kind == "note" else f"{edit}: holds {'; '.join(f.holds for f in fs)}"
        out.append(f"  line {line}, {where}: {body}")
    return out


def to_text(sol: Solution, near: Mapping[str, int]) -> str:
    g = sol.graph
    out = [f"{g.filename}: valid input sizes", ""]
    for s in sol.symbols.values():
        out += _symbol_text(s, near)
    out += [f"  note: {t}" for t in sol.notes]
    out += ["", "merge points:" if sol.merges else "merge points: none"]
    for m in sol.merges:
        at = f"node {m.constraint.loc.node}" if m.constraint.loc.node else f"line {m.line}"
        out.append(f"  {m.verdict:<8} {at}: {m.message}")
    fixes = sol.fixes
    if fixes:
        out += ["", "fixes (each verified on the edited graph):", *_fix_lines(fixes)]
    if not sol.ok:
        out += ["", "result: some size or merge never works (exit status 1)"]
    return "\n".join(out)
