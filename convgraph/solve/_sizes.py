"""``Sizes``: the set of valid sizes of one symbol, exact and compact.

Disjoint windows ``[lo, hi]`` (``hi`` None: unbounded), each carrying a digit tree
(``convgraph.solve._tree``). It offers ``dims.EPSet``'s interface (``start``, ``modulus``,
``residues``, ``exceptions``, ``near``, ...), with ``residues`` materialised only when asked.
"""
from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from convgraph import dims as D
from convgraph.solve._tree import (
    FALSE,
    MATERIALISE,
    TRUE,
    apply,
    classes,
    export,
    from_residues,
    load,
    member,
    next_member,
    period,
    prev_member,
    residues_of,
)

Window = tuple[int, int | None, int]  # (lo, hi or None, trie)


@dataclass(frozen=True, eq=False)
class Sizes:
    """A set of positive sizes: disjoint windows ``[lo, hi]`` (the last one may be unbounded), each
    holding the sizes of a trie. Equality is equality of sets (also against a ``dims.EPSet``)."""

    windows: tuple[Window, ...]

    # -- construction ----------------------------------------------------------------------------

    @staticmethod
    def make(windows: Iterable[Window]) -> Sizes:
        """Canonicalise: drop empty windows, trim each to its members, merge neighbours, and start
        the periodic tail as early as the set allows (as ``EPSet.normalized`` does)."""
        out: list[list[Any]] = []
        for lo0, hi, t in sorted(windows, key=lambda w: w[0]):
            lo = next_member(t, max(1, lo0)) if t != FALSE else None
            if lo is None or (hi is not None and lo > hi):
                continue
            if hi is not None:
                hi = prev_member(t, hi)
            if out and out[-1][2] == t and out[-1][1] is not None and \
                    (next_member(t, out[-1][1] + 1) or lo) >= lo:
                out[-1][1] = hi
            else:
                out.append([lo, hi, t])
        if out and out[-1][1] is None:
            out = _lower_start(out)
        return Sizes(tuple(tuple(w) for w in out))

    @staticmethod
    def periodic(t: int, start: int = 1) -> Sizes:
        return Sizes.make([(start, None, t)])

    @staticmethod
    def all(start: int = 1) -> Sizes:
        """``x >= start``: one object per start (a set is immutable; ``intersect_all`` starts most
        meets from one)."""
        got = _HALF_LINES.get(start)
        if got is None:
            if len(_HALF_LINES) > 4096:
                _HALF_LINES.clear()
            got = _HALF_LINES[start] = Sizes.make([(start, None, TRUE)])
        return got

    @staticmethod
    def none() -> Sizes:
        return Sizes(())

    @staticmethod
    def interval(a: int, b: int | None) -> Sizes:
        """{a <= x <= b} (b None: unbounded)."""
        return Sizes.make([(a, b, TRUE)])

    @staticmethod
    def of(xs: Iterable[int]) -> Sizes:
        """A finite set."""
        runs: list[list[int]] = []
        for x in sorted(set(int(x) for x in xs if x >= 1)):
            if runs and runs[-1][1] + 1 == x:
                runs[-1][1] = x
            else:
                runs.append([x, x])
        return Sizes.make([(a, b, TRUE) for a, b in runs])

    @staticmethod
    def classes_of(residues: Iterable[int], modulus: int, start: int = 1) -> Sizes:
        return Sizes.periodic(from_residues(residues, modulus), start)

    @staticmethod
    def lift(s: Sizes | D.EPSet) -> Sizes:
        """A ``dims.EPSet`` (or a Sizes) as a Sizes."""
        if isinstance(s, Sizes):
            return s
        tail: list[Window] = [(s.start, None, from_residues(s.residues, s.modulus))] if s.residues else []
        return Sizes.make(list(Sizes.of(s.exceptions).windows) + tail)

    # -- EPSet's interface -----------------------------------------------------------------------

    @property
    def tail(self) -> int:
        """The trie of the periodic part (FALSE for a finite set)."""
        return self.windows[-1][2] if self.windows and self.windows[-1][1] is None else FALSE

    @property
    def start(self) -> int:
        if not self.windows:
            return 1
        lo, hi, _ = self.windows[-1]
        return lo if hi is None else hi + 1

    @property
    def modulus(self) -> int:
        return period(self.tail)

    @property
    def residues(self) -> frozenset[int]:
        m = self.modulus
        if m > MATERIALISE:
            raise OverflowError(f"{m} residues: use classes() for a compact form")
        return residues_of(self.tail, m)

    @property
    def exceptions(self) -> frozenset[int]:
        return frozenset(self._finite_members())

    def _finite_members(self) -> Iterator[int]:
        for lo, hi, t in self.windows:
            if hi is None:
                break
            if hi - lo > MATERIALISE:
                raise OverflowError(f"{hi - lo + 1} sizes: use finite_ranges() for a compact form")
            yield from (x for x in range(lo, hi + 1) if member(t, x))

    def finite_windows(self) -> list[tuple[int, int, int]]:
        return [(lo, hi, t) for lo, hi, t in self.windows if hi is not None]

    def classes(self, limit: int = 64) -> list[tuple[int, int]] | None:
        """The periodic part as classes ``(r, m)``; None when there are more than ``limit``."""
        return classes(self.tail, limit)

    def __contains__(self, x: int) -> bool:
        i = bisect.bisect_right(self._starts, x) - 1
        if i < 0:
            return False
        _, hi, t = self.windows[i]
        return (hi is None or x <= hi) and member(t, x)

    @cached_property
    def _starts(self) -> list[int]:
        return [w[0] for w in self.windows]

    @property
    def empty(self) -> bool:
        return not self.windows

    @property
    def finite(self) -> bool:
        return self.tail == FALSE

    @property
    def min(self) -> int | None:
        return next(iter(self.iter()), None)

    @property
    def least(self) -> int:
        """``min`` of a set known to be non-empty (raises ValueError on the empty set)."""
        x = self.min
        if x is None:
            raise ValueError("the empty set has no least element")
        return x

    def iter(self, lo: int = 1) -> Iterator[int]:
        for a, b, t in self.windows:
            if b is not None and b < lo:
                continue
            x = next_member(t, max(a, lo))
            while x is not None and (b is None or x <= b):
                yield x
                x = next_member(t, x + 1)

    def first(self, n: int = 10, lo: int = 1) -> list[int]:
        out: list[int] = []
        for x in self.iter(lo):
            if len(out) == n:
                break
            out.append(x)
        return out

    def near(self, x: int) -> tuple[int | None, int | None]:
        """The largest member <= x and the smallest >= x (None where there is none)."""
        below = None
        for a, b, t in self.windows:
            if a > x:
                break
            y = prev_member(t, x if b is None else min(b, x))
            if y is not None and y >= a:
                below = y
        return below, next(iter(self.iter(x)), None)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"min": self.min, "modulus": self.modulus}
        out.update(_pattern_json(self.tail))
        fin = self.finite_windows()
        if sum(b - a + 1 for a, b, _ in fin) <= 4096:
            out["exceptions"] = sorted(self.exceptions)
        else:  # [a, b]: every size in a..b; [a, b, pattern]: the sizes of a..b the pattern holds
            out["finite_windows"] = [[a, b] if t == TRUE else [a, b, _pattern_json(t)] for a, b, t in fin]
        out["first"] = self.first(10)
        return out

    def describe(self, name: str) -> str:
        from convgraph.solve._report import describe_set

        return describe_set(self, name)

    # -- algebra ---------------------------------------------------------------------------------

    def _op(self, other_set: Sizes | D.EPSet, op: str) -> Sizes:
        other = Sizes.lift(other_set)
        if op in ("and", "minus") and len(self.windows) == 1 and len(other.windows) == 1 and \
                self.windows[0][1] is None and other.windows[0][1] is None:
            return _tails(self.windows[0], other.windows[0], op)
        cuts = sorted({w[0] for w in self.windows + other.windows} |
                      {w[1] + 1 for w in self.windows + other.windows if w[1] is not None} | {1})
        out: list[Window] = []
        at_a, at_b = _TrieAt(self.windows), _TrieAt(other.windows)
        for i, lo in enumerate(cuts):
            hi = cuts[i + 1] - 1 if i + 1 < len(cuts) else None
            out.append((lo, hi, apply(op, at_a(lo), at_b(lo))))
        return Sizes.make(out)

    def _trie_at(self, x: int) -> int:
        return _TrieAt(self.windows)(x)

    def __and__(self, other: Sizes | D.EPSet) -> Sizes:
        return self._op(other, "and")

    __rand__ = __and__

    def __or__(self, other: Sizes | D.EPSet) -> Sizes:
        return self._op(other, "or")

    __ror__ = __or__

    def __sub__(self, other: Sizes | D.EPSet) -> Sizes:
        return self._op(other, "minus")

    def __xor__(self, other: Sizes | D.EPSet) -> Sizes:
        return self._op(other, "xor")

    def complement(self) -> Sizes:
        return Sizes.all() - self

    def __le__(self, other: Sizes | D.EPSet) -> bool:
        return (self - other).empty

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sizes) and not isinstance(other, D.EPSet):
            return NotImplemented
        if isinstance(other, Sizes) and self.windows == other.windows:
            return True  # the same windows of the same (hash-consed) tries: the same set
        return (self ^ other).empty

    def __hash__(self) -> int:
        return hash((self.min, self.finite))

    def __reduce__(self) -> tuple[Any, ...]:
        """Tries are ids into this process's node table: pickle them as their node lists."""
        return _unpickle, (tuple((lo, hi, export(t)) for lo, hi, t in self.windows),)

    def __repr__(self) -> str:
        from convgraph.solve._report import describe_set

        return f"Sizes({describe_set(self, 'x')})"


def _pattern_json(t: int) -> dict[str, Any]:
    """A periodic pattern (a trie) as JSON: ``modulus`` and ``residues`` when the modulus is at most
    4096, else its ``classes``, else the digit trie itself."""
    m = period(t)
    if m <= 4096:
        return {"modulus": m, "residues": sorted(residues_of(t, m))}
    cls = classes(t, 256)
    if cls is not None:
        return {"modulus": m, "classes": [[r, q] for r, q in cls]}
    root, nodes = export(t)  # exact, and as small as the set's structure
    return {"modulus": m, "trie": {"root": root, "nodes": [[p, list(ch)] for p, ch in nodes],
                                   "how": "node [p, children]: x = p*q + r goes to child r with q; "
                                          "refs 0 = no, 1 = yes, k >= 2 = nodes[k - 2]"}}


#: ``Sizes.all`` by start
_HALF_LINES: dict[int, Sizes] = {}


class _TrieAt:
    """The trie of the window holding x, for x asked in ascending order (one pass over the
    windows in all, so an operation on two sets costs their windows, not their product)."""

    def __init__(self, windows: tuple[Window, ...]):
        self.windows, self.i = windows, 0

    def __call__(self, x: int) -> int:
        ws = self.windows
        while self.i < len(ws):
            hi = ws[self.i][1]
            if hi is None or hi >= x:
                break
            self.i += 1
        if self.i < len(ws) and ws[self.i][0] <= x:
            return ws[self.i][2]
        return FALSE


def _tails(w: Window, v: Window, op: str) -> Sizes:
    """``_op`` 'and' / 'minus' of two sets that are one unbounded window each, ``[a, oo)`` with
    trie t and ``[b, oo)`` with trie u: below ``max(a, b)`` one side is empty, so the meet has
    only ``[max(a, b), oo)`` with ``t and u``, and the difference also ``[a, b - 1]`` with t (the
    windows ``_op`` builds, less those with the empty trie, which ``make`` drops)."""
    (a, _, t), (b, _, u) = w, v
    top = max(a, b)
    out: list[Window] = [(top, None, apply(op, t, u))]
    if op == "minus" and a < b:
        out.insert(0, (a, b - 1, t))
    return Sizes.make(out)


def _lower_start(out: list[list[Any]]) -> list[list[Any]]:
    """Move the periodic tail's start down past every finite size that agrees with it."""
    t = out[-1][2]
    cur = out[-1][0]
    keep = out[:-1]
    while True:
        below = prev_member(t, cur - 1)
        gap_top = keep[-1][1] if keep else 0
        if below is not None and below > gap_top:  # a tail member missing in the gap
            cur = below + 1
            break
        if not keep:
            cur = 1
            break
        a, b, u = keep[-1]
        d = prev_member(apply("xor", u, t), b)
        if d is not None and d >= a:
            cur = d + 1
            last = prev_member(u, d)
            keep[-1] = [a, last, u]
            if last is None or last < a:
                keep.pop()
            break
        cur = a
        keep.pop()
    return [*keep, [cur, None, t]]


def _unpickle(windows: tuple[tuple[int, int | None, Any], ...]) -> Sizes:
    return Sizes(tuple((lo, hi, load(t)) for lo, hi, t in windows))
