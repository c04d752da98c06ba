"""Words, JSON and ONNX metadata for a ``convgraph.solve.Solution``."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from convgraph import dims as D
from convgraph.dims import EPSet as DimsEPSet
from convgraph.errors import Loc
from convgraph.solve._sets import BRUTE_LIMIT, PAIR_SPAN, EPSet
from convgraph.solve._sizes import TRUE

NO_PERIOD = "some condition has no usable period (a non-dyadic Upsample scale)"

if TYPE_CHECKING:  # pragma: no cover
    from convgraph.errors import ShapeError
    from convgraph.solve._pairs import PairCoupling
    from convgraph.solve._relations import RelationCoupling
    from convgraph.solve._solve import Coupling, Merge, Solution, SymbolSizes

#: admissible tuples of a Linear coupling shown in text (JSON has them all)
SHOWN_TUPLES = 8


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


#: residue lists longer than this are printed as ranges (``{0..63}``), not one number each
LIST_MAX = 8
#: a periodic part with a modulus above this is printed as its classes (``H ≡ 5 (mod 2**20)``)
SMALL_MODULUS = 4096


#: the finite part of a set is written out up to about this many characters (then counted)
FINITE_TEXT = 1500


def _lift(s: EPSet | DimsEPSet) -> EPSet:
    return EPSet.lift(s)


def _residues(s: EPSet) -> list[int] | None:
    """The sorted residues of the periodic part, or None when the modulus is too large to list."""
    return sorted(s.residues) if s.modulus <= SMALL_MODULUS else None


def _residue_set(res: list[int]) -> str:
    return "{" + (", ".join(map(str, res)) if len(res) <= LIST_MAX else _ranges(res)) + "}"


def _big_classes(s: EPSet, name: str) -> str:
    """A periodic part with a huge modulus: its residues as a few ranges (``H % 2**40 in
    {0..2**39 - 1}``), else the union of its classes, else how many ranges it has."""
    from convgraph.solve._tree import residue_runs

    runs = residue_runs(s.tail, s.modulus, 8)
    if runs is not None and len(runs) == 1 and runs[0][0] == runs[0][1]:
        return f"{name} % {_pow(s.modulus)} == {runs[0][0]}"
    if runs is not None:
        text = ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in runs)
        return f"{name} % {_pow(s.modulus)} in {{{text}}}"
    cls = s.classes(16)
    if cls is None:
        return f"{name} in a union of more than 16 classes mod {_pow(s.modulus)} (given exactly in the JSON)"
    return " or ".join(f"{name} ≡ {r} (mod {_pow(m)})" for r, m in cls)


def _pow(m: int) -> str:
    """16 -> '16'; 2**40 -> '2**40'; 2**8*3**8 -> '2**8*3**8' (moduli above SMALL_MODULUS)."""
    if m <= SMALL_MODULUS:
        return str(m)
    parts, q = [], 2
    while q * q <= m:
        e = 0
        while m % q == 0:
            m, e = m // q, e + 1
        if e:
            parts.append(f"{q}**{e}" if e > 1 else str(q))
        q += 1
    return "*".join(parts + ([str(m)] if m > 1 else []))


def _finite_text(s: EPSet) -> str:
    """The finite part: ``1..3, 7``; a window of a periodic pattern as ``{a..b: H ≡ r (mod m)}``."""
    from convgraph.solve._tree import member

    out: list[str] = []
    fin = s.finite_windows()
    for i, (a, b, t) in enumerate(fin):
        if b - a <= SMALL_MODULUS:
            out.append(_ranges(x for x in range(a, b + 1) if member(t, x)))
        else:
            inner = EPSet.periodic(t)
            out.append(f"{a}..{b}" + ("" if inner.modulus == 1 else f" where {_pattern(inner)}"))
        if sum(map(len, out)) > FINITE_TEXT and i + 1 < len(fin):
            out.append(f"... and {len(fin) - i - 1} more windows up to {fin[-1][1]} (--json lists each)")
            break
    return ", ".join(out)


def _pattern(s: EPSet) -> str:
    res = _residues(s)
    return _big_classes(s, "x") if res is None else f"x % {s.modulus} in {_residue_set(res)}"


def describe_set(s: EPSet, name: str) -> str:
    """``H >= 16, H % 16 == 0``; ``L >= 16, L % 16 in {0, 1, 2, 3}``; ``H in {224..255}``."""
    s = _lift(s)
    if s.empty:
        return "no valid size"
    parts = []
    if not s.finite:
        text = f"{name} >= {periodic_start(s)}"
        res = _residues(s)
        if res is None:
            text += f", {_big_classes(s, name)}"
        elif len(res) < s.modulus:
            text += (f", {name} % {s.modulus} == {res[0]}" if len(res) == 1
                     else f", {name} % {s.modulus} in {_residue_set(res)}")
        parts.append(text)
    if s.finite_windows():
        fin = f"{name} in {{{_finite_text(s)}}}"
        if parts and _patterned(s):  # windows of patterns (a non-dyadic scale's) read in order:
            return f"{fin} or {parts[0]}"  # the tail last
        parts.append(("or " if not s.finite else "") + fin)
    return " ".join(parts)


def periodic_start(s: EPSet) -> int:
    """The first member of the periodic part (``start`` itself may lie before it)."""
    from convgraph.solve._tree import next_member

    s = _lift(s)
    first = next_member(s.tail, s.start) if not s.finite else None
    return s.start if first is None else first


def classes_text(s: EPSet, name: str) -> str:
    """``H ≡ 0..3 (mod 16)``, ``H >= 30``, plus a finite part."""
    s = _lift(s)
    parts = []
    if not s.finite:
        res = _residues(s)
        parts.append(f"{name} >= {periodic_start(s)}" if s.modulus == 1 else
                     _big_classes(s, name) if res is None else f"{name} ≡ {_ranges(res)} (mod {s.modulus})")
    if s.finite_windows():
        parts.append(f"{name} in {{{_finite_text(s)}}}")
    return " or ".join(parts)


def class_strings(s: EPSet, name: str) -> list[str]:
    """The set as residue classes: ``['H ≡ 0 (mod 16)']``; a finite part as ``'H in {..}'``."""
    s = _lift(s)
    out = []
    if not s.finite:
        res = _residues(s)
        if s.modulus == 1:
            out.append(f"{name} >= {periodic_start(s)}")
        elif res is None:
            out += _big_classes(s, name).split(" or ")
        else:
            out += [f"{name} ≡ {r} (mod {s.modulus})" for r in res]
    if s.finite_windows():
        out.append(f"{name} in {{{_finite_text(s)}}}")
    return out


def _patterned(s: EPSet) -> bool:
    """Some finite window holds a pattern of its own (a non-dyadic scale's), not every size."""
    return any(t != TRUE for _, _, t in s.finite_windows())


def _classes_phrase(s: EPSet, name: str, m: int, res: list[int] | None) -> str:
    """The residue classes mod m > 1 of ``when``: ``H mod 4 >= 2``, ``H mod 16 in {4..15}``."""
    if res is None:
        return _big_classes(s, name)
    if res == list(range(res[0], m)):
        return f"{name} mod {m} >= {res[0]}" if len(res) > 1 else f"{name} mod {m} == {res[0]}"
    if res == list(range(0, res[-1] + 1)):
        return f"{name} mod {m} <= {res[-1]}" if len(res) > 1 else f"{name} mod {m} == 0"
    return f"{name} mod {m} in {{{_ranges(res)}}}"


def when(s: EPSet, name: str) -> str:
    """A condition phrase for a set of sizes: ``H mod 4 >= 2``, ``H mod 16 in {4..15}``, ``H <= 29``."""
    s = _lift(s)
    parts = []
    if not s.finite:
        m, res = s.modulus, _residues(s)
        if m == 1:
            parts.append(f"{name} >= {periodic_start(s)}")
        else:
            # a window holding a pattern of its own (a non-dyadic scale's): the tail's start matters
            since = f"{name} >= {periodic_start(s)} and " if _patterned(s) else ""
            parts.append(since + _classes_phrase(s, name, m, res))
    fin = s.finite_windows()
    if fin:
        if s.finite and len(fin) == 1 and fin[0][0] == 1 and fin[0][2] == 1:
            parts.append(f"{name} <= {fin[0][1]}")
        else:
            parts.append(f"{name} in {{{_finite_text(s)}}}")
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


def _examples_text(cp: Coupling) -> str:
    """``A=3, B=1; A=4, B=1``: a coupling's example size tuples."""
    return "; ".join(", ".join(f"{k}={v}" for k, v in e.items()) for e in cp.examples)


def coupling_message(cp: Coupling) -> str:
    c = cp.constraint
    names = ", ".join(cp.symbols)
    if cp.product is not None:
        tups = cp.product.tuples
        if not tups:
            return f"{c.where}: {c.rule}: {c.condition()} holds for no valid sizes of {names}"
        shown = ["(" + " and ".join(f"{n} in {{{_ranges_of(s)}}}" for n, s in t) + ")" for t in tups[:6]]
        more = f" and {len(tups) - 6} more" if len(tups) > 6 else ""
        if cp.product.op == ">=":  # a bound from below: an up-set, its corners as tuples
            ex = _examples_text(cp)
            return (f"{c.where}: {c.condition()} couples {names}; the smallest solutions: {ex}; exactly the sizes "
                    f"of {len(tups)} admissible tuple(s): {'; '.join(shown)}{more}")
        return f"{c.where}: {c.condition()} pins {names} to {len(tups)} admissible tuple(s): {'; '.join(shown)}{more}"
    if cp.pair is not None:
        return _pair_message(cp, cp.pair)
    if cp.relation is not None:
        return _relation_message(cp, cp.relation)
    span = f"a search over the first {PAIR_SPAN} valid sizes of each: not exact"
    if not cp.examples:
        return (f"{c.where}: {c.condition()} couples {names}; no solution among the first valid sizes "
                f"of each ({span}, not a proof)")
    ex = _examples_text(cp)
    return f"{c.where}: {c.condition()} couples {names}; the smallest solutions: {ex} ({span})"


def _pair_message(cp: Coupling, pair: PairCoupling) -> str:
    """``f(A) == g(B)``, exact: the projections, the relation and the smallest solutions."""
    c = cp.constraint
    names = ", ".join(cp.symbols)
    if pair.sizes_a.empty:
        return f"{c.where}: {c.rule}: {c.condition()} holds for no valid sizes of {names}"
    ex = _examples_text(cp)
    return (f"{c.where}: {c.condition()} couples {names} exactly: the valid pairs are "
            f"{describe_set(pair.sizes_a, pair.a)} and {describe_set(pair.sizes_b, pair.b)} with "
            f"{pair.relation}; the smallest solutions: {ex}")


def _relation_message(cp: Coupling, rel: RelationCoupling) -> str:
    """A relation on monotone terms, exact: the projections, the relation, the smallest solutions."""
    c = cp.constraint
    names = ", ".join(cp.symbols)
    if rel.empty:
        return f"{c.where}: {c.rule}: {c.condition()} holds for no valid sizes of {names}"
    ex = _examples_text(cp)
    sets = ", ".join(f"({describe_set(s, n)})" for n, s in rel.sizes)
    return (f"{c.where}: {c.condition()} couples {names} exactly: the valid tuples are {sets} with "
            f"{rel.relation}; the smallest solutions: {ex}")


def _ranges_of(s: EPSet) -> str:
    s = _lift(s)
    if not s.finite:
        return describe_set(s, "x")
    return _finite_text(s)


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


def set_json(s: EPSet) -> dict:
    """One JSON shape for a set of sizes, in every verb: ``x`` is a member iff ``x in exceptions``
    or ``x >= periodic_from and x % modulus in residues``; ``periodic_from`` is given where there
    are exceptions (else it is ``min``)."""
    out = s.to_json()
    if s.finite_windows() and not s.finite:  # exceptions and a periodic part (never materialised)
        out["periodic_from"] = periodic_start(s)
    return out


def _exact_tuples(sol: Solution, cp: Coupling) -> list[tuple[tuple[str, EPSet], ...]] | None:
    """A Linear coupling's tuples restricted to the sizes that tile exactly (the tiling conditions
    are on one symbol each, so this is exact); None when the tiling sets were not computed."""
    if cp.product is None or any(sol.symbols[n].exact is None for n in cp.symbols):
        return None
    out = [tuple((n, st & sol.symbols[n].tiles) for n, st in t) for t in cp.product.tuples]
    return [t for t in out if not any(st.empty for _, st in t)]


def coupling_json(sol: Solution, cp: Coupling) -> dict:
    """A condition relating several symbols: exact admissible tuples for a Linear after Flatten
    (``tuples``: every combination of one tuple's sets is admissible); for ``f(A) op g(B)`` with f, g
    monotone the exact ``pairs`` (each symbol in its projection and the relation) with the smallest
    solutions as ``examples``; else the condition itself with the smallest solutions a bounded
    search found (``exact`` False)."""
    c = cp.constraint
    out = {"symbols": list(cp.symbols), "where": c.where, "line": c.loc.line, "kind": c.kind,
           "condition": c.condition(), "text": cp.message}
    if cp.product is not None:
        out["tuples"] = [{n: set_json(st) for n, st in t} for t in cp.product.tuples]
        exact = _exact_tuples(sol, cp)
        if exact is not None:
            out["exact_tuples"] = [{n: set_json(st) for n, st in t} for t in exact]
    else:
        out["examples"] = [dict(e) for e in cp.examples]
    if cp.pair is not None:
        pr = cp.pair
        out["pairs"] = {"relation": pr.relation, "lhs": D.dim_str(pr.f), "op": pr.op, "rhs": D.dim_str(pr.g),
                        "projections": {n: set_json(st) for n, st in pr.per_symbol().items()}}
    if cp.relation is not None:
        rel = cp.relation
        lhs, op, rhs = rel.sides
        out["relation"] = {"text": rel.relation, "lhs": D.dim_str(lhs), "op": op, "rhs": D.dim_str(rhs),
                           "projections": {n: set_json(st) for n, st in rel.sizes}}
    out["exact"] = cp.exact
    return out


def symbol_json(sol: Solution, s: SymbolSizes) -> dict:
    """A symbol's sets (``runs``; ``exact`` when computed), their text, and its couplings: the
    valid sizes are ``runs`` of every symbol together with every coupling's condition."""
    out = {"runs": set_json(s.runs), "text": describe_set(s.runs, s.name)}
    if s.exact is not None:
        out["exact"] = set_json(s.exact)
        out["exact_text"] = describe_set(s.exact, s.name)
    coupled = sol.coupled(s.name)
    if coupled:
        out["coupled"] = [coupling_json(sol, cp) for cp in coupled]
    which = [k for k, ok in (("runs", s.decided), ("exact", s.exact_decided)) if not ok and
             (k == "runs" or s.exact is not None)]
    if which:
        out["note"] = f"{' and '.join(which)}: brute force over {s.name} = 1..{BRUTE_LIMIT}, not exact ({NO_PERIOD})"
    return out


def sets_json(sol: Solution) -> dict:
    """``{symbol: symbol_json}``: the same object in ``shapes --json`` (``valid``), ``solve --json``
    (``symbols``) and the API (``Solution.to_json()``)."""
    return {n: symbol_json(sol, s) for n, s in sol.symbols.items()}


def to_json(sol: Solution) -> dict:
    return {
        "symbols": sets_json(sol),
        "merges": [_merge_json(m) for m in sol.merges],
        "fixes": [{"where": f.where, "line": f.line, "edit": f.edit, "holds": f.holds, "kind": f.kind,
                   "skip": f.value, "edits": [{k: v for k, v in vars(e).items() if v != "" and k != "loc"} |
                                              {"line": e.loc.line, "col": e.loc.col} for e in f.edits]}
                  for f in sol.skip_fixes],
    }


# --------------------------------------------------------------------------------------------
# The valid sizes in words: one description for every verb
# --------------------------------------------------------------------------------------------


def _groups(sol: Solution) -> list[tuple[str, ...]]:
    """Symbols joined by couplings, in the graph's symbol order; an uncoupled symbol alone."""
    group = {n: {n} for n in sol.symbols}
    for cp in sol.couplings:
        merged = set().union(*(group[n] for n in cp.symbols))
        for n in merged:
            group[n] = merged
    out, seen = [], set()
    for n in sol.symbols:
        if n not in seen:
            seen |= group[n]
            out.append(tuple(m for m in sol.symbols if m in group[n]))
    return out


def _tuple_text(t: tuple[tuple[str, EPSet], ...]) -> str:
    return "(" + " and ".join(describe_set(st, n) for n, st in t) + ")"


def _group_text(sol: Solution, names: tuple[str, ...]) -> str:
    """The exact set of a coupled group: one Linear's admissible tuples, else every symbol's own
    set together with each coupling condition (never independent ranges)."""
    cps = [cp for cp in sol.couplings if set(cp.symbols) <= set(names)]
    if len(cps) == 1 and cps[0].product is not None and set(cps[0].symbols) == set(names):
        tups = cps[0].product.tuples
        if not tups:
            return "no valid size"
        shown = " or ".join(_tuple_text(t) for t in tups[:SHOWN_TUPLES])
        more = f" or {len(tups) - SHOWN_TUPLES} more tuples (all in --json)" if len(tups) > SHOWN_TUPLES else ""
        return shown + more
    own = [f"({describe_set(sol.symbols[n].runs, n)})" for n in names]
    conds = [cp.constraint.condition() for cp in cps]
    return ", ".join(own) + ", and " + ", ".join(conds)


def _note(sol: Solution, names: tuple[str, ...], runs: Mapping[str, EPSet] | None = None) -> str:
    if all(sol.symbols[n].decided for n in names):
        return ""
    found = "none found" if any((sol.symbols[n].runs if runs is None else runs[n]).empty for n in names) \
        else "not exact"
    return f"   ({found}: {NO_PERIOD}; checked size by size for 1..{BRUTE_LIMIT} only)"


def valid_lines(sol: Solution, runs: Mapping[str, EPSet] | None = None) -> list[str]:
    """``H: H >= 16, H % 16 == 0``; a coupled group as one line ``H, W (coupled): ...``. ``runs``:
    the running sets to show in place of the solution's, for a solution without couplings whose
    symbols keep whether they are decided (an edit that only adds exact assumes)."""
    if runs is not None and sol.couplings:
        raise ValueError("valid_lines: running sets given for a solution with couplings")
    out = []
    for names in _groups(sol):
        if len(names) == 1:
            (n,) = names
            shown = sol.symbols[n].runs if runs is None else runs[n]
            out.append(f"{n}: {describe_set(shown, n)}{_note(sol, names, runs)}")
        else:
            out.append(f"{', '.join(names)} (coupled): {_group_text(sol, names)}{_note(sol, names)}")
    return out


def no_valid_size(sol: Solution) -> ShapeError | None:
    """The error for a graph with no valid size, at the merge or expect that rules the last size
    out, with the verified fixes as hints; None when some size is valid."""
    from convgraph.errors import ShapeError

    # only what is decided exactly is an error: a set found empty by a bounded search is a note
    never = [m for m in sol.merges if m.verdict == "never" and m.decided]
    empty = [s for s in sol.symbols.values() if s.runs.empty and s.decided]
    if not never and not empty:
        return None
    none = [cp for cp in sol.couplings if cp.empty]  # a coupling that holds nowhere: at its line
    if never:
        m = never[0]
        msg, loc = f"no valid size: {m.message}", m.constraint.loc
    elif none:
        msg, loc = f"no valid size: {none[0].message}", none[0].constraint.loc
    else:
        s = empty[0]
        on = [m for m in sol.merges if m.symbol == s.name and m.verdict == "classes"]
        loc = on[-1].constraint.loc if on else Loc(sol.graph.filename, 0, 0)
        msg = (f"no valid size for {s.name}: " + "; ".join(m.message for m in on) if on else
               f"no valid size for {s.name}")
    hints = tuple(f"fix: {line.strip()}" for line in _fix_lines(sol)[:4])
    return ShapeError(msg, loc, hints)


def metadata(sol: Solution) -> dict[str, str]:
    """Compact strings for ONNX ``metadata_props``: the same description as ``convgraph shapes``
    (a coupled symbol gets its group's line)."""
    out = {}
    lines = dict(zip(_groups(sol), valid_lines(sol)))
    for names, line in lines.items():
        for n in names:
            s = sol.symbols[n]
            out[f"convgraph.valid_sizes.{n}"] = line.split(": ", 1)[1] if len(names) == 1 else line
            if s.exact is not None:
                exact_note = "" if s.exact_decided else f" (checked up to {BRUTE_LIMIT})"
                out[f"convgraph.exact_sizes.{n}"] = describe_set(s.exact, n) + exact_note
    for i, cp in enumerate(sol.couplings):
        out[f"convgraph.coupling.{i}"] = cp.message
    return out


def _with(sol: Solution, n: str) -> str:
    others = sorted({m for cp in sol.coupled(n) for m in cp.symbols} - {n})
    return f"   (only together with {', '.join(others)}: see 'coupled' below)" if others else ""


def _symbol_text(sol: Solution, s: SymbolSizes, near: Mapping[str, int]) -> list[str]:
    n, pad = s.name, " " * len(s.name)
    if s.exact is None:  # solved without the tiling sets
        return [f"  {n}: runs for {describe_set(s.runs, n)}" + _first(s.runs) + _with(sol, n)]
    if not s.constrained and s.exact == s.runs:
        lines = [f"  {n}: runs for {describe_set(s.runs, n)} (no constraint)"]
    else:
        lines = [f"  {n}: runs for {describe_set(s.runs, n)}" + _first(s.runs) + _with(sol, n),
                 f"  {pad}  tiles exactly for {describe_set(s.exact, n)}" + _first(s.exact)]
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


def _fix_lines(sol: Solution) -> list[str]:
    """One line per skip: its preferred verified edit (every axis at once), the alternatives
    after it; a per-class note where no single static edit works."""
    lines: dict[str, list] = {}
    for f in sol.skip_fixes:
        lines.setdefault(f.value, []).append(f)
    out = []
    if (sol.skip_fixes or sol.fixes) and any(n.loc.node for n in sol.graph.nodes):
        return ["  (fixes are edits of a .cg file; this graph was imported from ONNX: change the model that "
                "exported it, at the node named above)"]
    for fs in lines.values():
        alt = "".join(f"; or {f.edit}" for f in fs[1:3])
        out.append(f"  line {fs[0].line}, {fs[0].where}: {fs[0].edit}{alt}")
    fixed = {f.value for f in sol.skip_fixes}
    for f in sol.fixes:
        if f.kind == "note" and f.merge.constraint.value not in fixed:
            out.append(f"  line {f.line}, {f.where}: note: {f.edit}")
            fixed.add(f.merge.constraint.value)
    return out


def _exact_coupled_lines(sol: Solution) -> list[str]:
    out = []
    for cp in sol.couplings:
        if cp.product is None:
            continue
        tups = _exact_tuples(sol, cp)
        if tups is not None:
            text = " or ".join(_tuple_text(t) for t in tups[:SHOWN_TUPLES]) or "no valid size"
            more = f" or {len(tups) - SHOWN_TUPLES} more tuples (all in --json)" if len(tups) > SHOWN_TUPLES else ""
            out.append(f"  {', '.join(cp.symbols)} (coupled) tile exactly for: {text}{more}")
    return out


def to_text(sol: Solution, near: Mapping[str, int]) -> str:
    g = sol.graph
    out = [f"{g.filename}: valid input sizes", ""]
    for s in sol.symbols.values():
        out += _symbol_text(sol, s, near)
    out += [f"  {line}" for line in valid_lines(sol) if " (coupled): " in line]
    out += _exact_coupled_lines(sol)
    out += [f"  note: {t}" for t in sol.notes]
    coupled = [cp for cp in sol.couplings if cp.constraint.kind == "size"]
    if coupled:  # a layer's own rule on several symbols (InstanceNorm's spatial product, ...)
        out += ["", "size rules that couple symbols (not in the per-symbol sets above):"]
        out += [f"  line {cp.constraint.loc.line}: {cp.message}" for cp in coupled]
    out += ["", "merge points:" if sol.merges else "merge points: none"]
    for m in sol.merges:
        at = f"node {m.constraint.loc.node}" if m.constraint.loc.node else f"line {m.line}"
        out.append(f"  {m.verdict:<8} {at}: {m.message}")
    fixes = _fix_lines(sol)
    if fixes:
        out += ["", "fixes (each verified on the edited graph; `convgraph fix` applies the first of each line):",
                *fixes]
    if not sol.ok:
        out += ["", "result: no valid size (exit status 2)"]
    return "\n".join(out)
