"""Digit trees: exact periodic sets of integers without enumerating the period.

A periodic set of integers is kept as a **digit tree** (a multi-valued decision diagram): a node
``(p, children)`` splits ``y = p*z + r`` on the residue ``r`` of a prime ``p`` and hands ``z`` to
child ``r``; the leaves are ``FALSE`` (0) and ``TRUE`` (1). Along every path the primes never
decrease (all 2-digits before the 3-digits), nodes are hash-consed, and a node whose children are
all the same leaf is that leaf. ``{x : x % 2**40 == 5}`` is a chain of 40 nodes.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from functools import cache, lru_cache, reduce

FALSE, TRUE = 0, 1

#: ``residues`` / ``exceptions`` are materialised only up to this many candidates
MATERIALISE = 1 << 20
_NODES: list = [None, None]  # id -> (p, children)
_IDS: dict = {}

_OPS = {
    "and": lambda a, b: a & b,
    "or": lambda a, b: a | b,
    "xor": lambda a, b: a ^ b,
    "minus": lambda a, b: a & (1 - b),
}


def mk(p: int, ch: tuple[int, ...]) -> int:
    """The node splitting on residues mod the prime p (hash-consed; uniform leaves collapse)."""
    if ch[0] <= TRUE and all(c == ch[0] for c in ch):
        return ch[0]
    key = (p, ch)
    got = _IDS.get(key)
    if got is None:
        got = _IDS[key] = len(_NODES)
        _NODES.append(key)
    return got


def node(n: int) -> tuple[int, tuple[int, ...]]:
    """(p, children) of an inner node n."""
    return _NODES[n]


def _prime(n: int) -> int:
    return 1 << 62 if n <= TRUE else _NODES[n][0]


@cache
def restrict(n: int, m: int, c: int) -> int:
    """The trie of ``{w : m*w + c in n}`` (m >= 1)."""
    if n <= TRUE or (m == 1 and c == 0):
        return n
    p, ch = _NODES[n]
    if m % p == 0:
        return restrict(ch[c % p], m // p, c // p)
    return mk(p, tuple(restrict(ch[(m * t + c) % p], m, (m * t + c) // p) for t in range(p)))


@cache
def apply(op: str, a: int, b: int) -> int:
    """Pointwise ``op`` ('and', 'or', 'xor', 'minus') of two tries."""
    if a <= TRUE and b <= TRUE:
        return _OPS[op](a, b)
    if (op == "and" and FALSE in (a, b)) or (op == "minus" and (a == FALSE or b == TRUE)):
        return FALSE
    if op == "or" and TRUE in (a, b):
        return TRUE
    if a == b:
        return {"and": a, "or": a, "xor": FALSE, "minus": FALSE}[op]
    q = min(_prime(a), _prime(b))
    ca = _NODES[a][1] if _prime(a) == q else tuple(restrict(a, q, t) for t in range(q))
    cb = _NODES[b][1] if _prime(b) == q else tuple(restrict(b, q, t) for t in range(q))
    return mk(q, tuple(apply(op, x, y) for x, y in zip(ca, cb)))


def negate(a: int) -> int:
    return apply("minus", TRUE, a)


def member(n: int, y: int) -> bool:
    while n > TRUE:
        p, ch = _NODES[n]
        y, r = divmod(y, p)
        n = ch[r]
    return n == TRUE


@cache
def next_member(n: int, lo: int) -> int | None:
    """The smallest y >= lo in n (None when n is empty)."""
    if n <= TRUE:
        return lo if n == TRUE else None
    p, ch = _NODES[n]
    best = None
    for r, c in enumerate(ch):
        z = next_member(c, -((r - lo) // p))  # ceil((lo - r)/p)
        if z is not None and (best is None or p * z + r < best):
            best = p * z + r
    return best


@cache
def prev_member(n: int, hi: int) -> int | None:
    """The largest y <= hi in n (None when n is empty)."""
    if n <= TRUE:
        return hi if n == TRUE else None
    p, ch = _NODES[n]
    best = None
    for r, c in enumerate(ch):
        z = prev_member(c, (hi - r) // p)
        if z is not None and (best is None or p * z + r > best):
            best = p * z + r
    return best


@cache
def _path_period(n: int) -> int:
    if n <= TRUE:
        return 1
    p, ch = _NODES[n]
    return p * reduce(math.lcm, (_path_period(c) for c in ch), 1)


@cache
def period(n: int) -> int:
    """The smallest P > 0 with y in n iff y + P in n."""
    big = _path_period(n)
    for q in prime_factors(big):
        while (big % q == 0 and restrict(n, 1, big // q) == n) or (
                big % q == 0 and apply("xor", restrict(n, 1, big // q), n) == FALSE):
            big //= q
    return big


def prime_factors(n: int) -> list[int]:
    out, q = [], 2
    while q * q <= n:
        if n % q == 0:
            out.append(q)
            while n % q == 0:
                n //= q
        q += 1
    return out + ([n] if n > 1 else [])


def from_residues(residues: Iterable[int], modulus: int) -> int:
    """The trie of ``{y : y % modulus in residues}`` (built digit by digit: O(modulus))."""
    primes = []
    m = modulus
    for q in prime_factors(modulus):
        while m % q == 0:
            primes.append(q)
            m //= q
    return _build(frozenset(r % modulus for r in residues), modulus, tuple(primes))


def _build(res: frozenset, modulus: int, primes: tuple[int, ...]) -> int:
    if not res:
        return FALSE
    if len(res) == modulus:
        return TRUE
    p, rest = primes[0], primes[1:]
    sub = modulus // p
    return mk(p, tuple(_build(frozenset((x - r) // p for x in res if x % p == r), sub, rest) for r in range(p)))


def residue_class(r: int, m: int) -> int:
    """The trie of ``{y : y % m == r}`` (O(log m) nodes)."""
    if m == 1:
        return TRUE
    out = TRUE
    primes = []
    mm = m
    for q in prime_factors(m):
        while mm % q == 0:
            primes.append(q)
            mm //= q
    digits = []
    y = r % m
    for q in primes:
        y, d = divmod(y, q)
        digits.append(d)
    for q, d in zip(reversed(primes), reversed(digits)):
        out = mk(q, tuple(out if t == d else FALSE for t in range(q)))
    return out


def classes(n: int, limit: int = 64) -> list[tuple[int, int]] | None:
    """The set as disjoint classes ``(r, m)`` (``y % m == r``), one per TRUE leaf; None when there
    are more than ``limit``."""
    out: list[tuple[int, int]] = []

    def walk(node: int, r: int, m: int) -> bool:
        if node == TRUE:
            out.append((r, m))
            return len(out) <= limit
        if node == FALSE:
            return True
        p, ch = _NODES[node]
        return all(walk(c, r + m * t, m * p) for t, c in enumerate(ch))

    return sorted(out, key=lambda t: (t[1], t[0])) if walk(n, 0, 1) else None


@lru_cache(maxsize=4096)
def residues_of(n: int, modulus: int) -> frozenset[int]:
    """The members of n in [0, modulus), read off the trie's TRUE leaves (modulus a period of n)."""
    full = _path_period(n)  # a multiple of modulus: every leaf's class is a union of classes mod it
    if full > MATERIALISE:
        return frozenset(r for r in range(modulus) if member(n, r))
    out: list[int] = []

    def walk(node: int, r: int, m: int) -> None:
        if node == TRUE:
            out.extend(range(r, full, m))
        elif node != FALSE:
            p, ch = _NODES[node]
            for t, c in enumerate(ch):
                walk(c, r + m * t, m * p)

    walk(n, 0, 1)
    return frozenset(x % modulus for x in out)


def residue_runs(n: int, modulus: int, limit: int = 8) -> list[tuple[int, int]] | None:
    """The members of n in [0, modulus) as maximal runs ``(a, b)``; None when there are more than
    ``limit`` (found by jumping from run to run: no residue is visited one by one)."""
    out: list[tuple[int, int]] = []
    gaps = negate(n)
    pos = 0
    while True:
        a = next_member(n, pos)
        if a is None or a >= modulus:
            return out
        end = next_member(gaps, a)
        b = modulus - 1 if end is None or end > modulus else end - 1
        out.append((a, b))
        if len(out) > limit:
            return None
        pos = b + 1


def export(n: int) -> tuple:
    """A trie as a portable node list: ``((p, child refs), ...)``, refs 0/1 leaves, else 2 + index."""
    order: dict[int, int] = {}

    def visit(node: int) -> int:
        if node <= TRUE:
            return node
        if node not in order:
            p, ch = _NODES[node]
            refs = tuple(visit(c) for c in ch)
            order[node] = len(order)
            nodes.append((p, refs))
        return 2 + order[node]

    nodes: list = []
    root = visit(n)
    return root, tuple(nodes)


def load(portable: tuple) -> int:
    root, nodes = portable
    ids: list[int] = []
    for p, refs in nodes:
        ids.append(mk(p, tuple(r if r <= TRUE else ids[r - 2] for r in refs)))
    return root if root <= TRUE else ids[root - 2]
