"""Exact couplings of two inputs through layers: what ``solve`` costs at huge periods.

    python benchmarks/bench_couplings.py

For a cat of two inputs, x through n2 stride-2 convs and a stride-3 transposed conv, y through
n3 stride-3 convs and a stride-2 transposed conv (periods 2**(n2+1) and 3**(n3+1)), prints the
solve time and both projections' moduli; then ``image`` / ``preimage`` of a set of period
2**10 * 3**10 (a deep stack's tiling set) under 12 nested (ConvTranspose stride 3, Conv stride 2)
pairs; then three inputs (a cat along the length meeting a third input, ``f(A) + g(B) == h(C)``)
at periods 2**10 .. 2**40, and sums of residue classes of huge periods on the digit tries
(``_sums``). Run by hand; not part of the test suite.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import convgraph as cg  # noqa: E402
from convgraph import dims as D  # noqa: E402
from convgraph.solve import solve  # noqa: E402
from convgraph.solve._image import image, preimage  # noqa: E402
from convgraph.solve._sums import TooComplex, window_sum, zsum  # noqa: E402
from convgraph.solve._tree import residue_class  # noqa: E402

DOWN2 = "Conv1d(2, 2, 3, stride=2)"
DOWN3 = "Conv1d(2, 2, 2, stride=3, padding=1)"
UP2 = "ConvTranspose1d(2, 2, 3, stride=2, padding=1, output_padding=1)"
UP3 = "ConvTranspose1d(2, 2, 2, stride=3)"


def two_inputs(cx: list[str], cy: list[str]) -> str:
    lines = ["x = input(N, 2, A)", "y = input(N, 2, B)"]
    for name, chain in (("x", cx), ("y", cy)):
        lines += [f"{name} = {layer}({name})" for layer in chain]
    return "\n".join([*lines, "c = cat([x, y], dim=1)"]) + "\n"


def pairs() -> None:
    for n2, n3 in ((16, 10), (24, 15), (40, 25)):
        graph = cg.parse(two_inputs([DOWN2] * n2 + [UP3], [DOWN3] * n3 + [UP2]))
        t0 = time.perf_counter()
        sol = solve(graph)
        dt = time.perf_counter() - t0
        (cp,) = sol.couplings
        print(f"cat, 2**{n2} vs 3**{n3}: solve {dt:.3f} s, exact={cp.exact}, "
              f"A mod {sol.runs('A').modulus}, B mod {sol.runs('B').modulus}")


def nested() -> None:
    strides = [((2 if (i // 10) % 2 == 0 else 3) if i % 10 == 9 else 1) for i in range(200)]
    text = "x = input(1, 2, H)\n" + "".join(f"x = Conv1d(2, 2, 3, stride={s}, padding=1)(x)\n" for s in strides)
    s = solve(cg.parse(text)).exact("H")
    f = D.sym("H")
    for _ in range(12):
        f = D.add(D.floordiv(D.mul(D.add(f, -1), 3), 2), 1)
    t0 = time.perf_counter()
    img = image(s, f, "H")
    t1 = time.perf_counter()
    back = preimage(img, f, "H") if img is not None else None
    t2 = time.perf_counter()
    print(f"set of period {s.modulus}: image under 12 nested strides {t1 - t0:.3f} s (period "
          f"{None if img is None else img.modulus}), preimage {t2 - t1:.3f} s, s <= preimage: "
          f"{back is not None and s <= back}")


UPK2 = "ConvTranspose1d(2, 2, 2, stride=2)"


def three() -> None:
    for n in (10, 20, 30, 40):
        lines = ["x = input(N, 2, A)", "y = input(N, 2, B)", "z = input(N, 2, C)"]
        lines += [f"x = {DOWN2}(x)"] * n + [f"y = {UPK2}(y)"] * (n // 2) + [f"z = {UPK2}(z)"] * n
        graph = cg.parse("\n".join([*lines, "c = cat([x, y], dim=2)", "d = cat([c, z], dim=1)"]) + "\n")
        t0 = time.perf_counter()
        sol = solve(graph)
        dt = time.perf_counter() - t0
        (cp,) = sol.couplings
        print(f"f(A) + g(B) == h(C), A through 2**{n}, B up 2**{n // 2}, C up 2**{n}: solve {dt:.3f} s, "
              f"exact={cp.exact}, A mod {_pow2(sol.runs('A').modulus)}")


def _pow2(m: int) -> str:
    return f"2**{m.bit_length() - 1}" if m & (m - 1) == 0 else str(m)


def sums() -> None:
    cases = [(1 << 40, 1 << 40), (1 << 40, 3 << 30), (2 ** 30 * 3 ** 5, 2 ** 31 * 3 ** 5), (1 << 20, 3 ** 12)]
    for m1, m2 in cases:
        t1, t2 = residue_class(5, m1), residue_class(7, m2)
        t0 = time.perf_counter()
        try:
            got = f"{len(window_sum((3, None, t1), (1 << 44, None, t2)))} windows"
        except TooComplex:
            got = "over the state bound"
        dt = time.perf_counter() - t0
        t0 = time.perf_counter()
        zsum(t1, t2)
        dz = time.perf_counter() - t0
        print(f"tails x % {m1} == 5 plus y % {m2} == 7: {got} in {dt:.3f} s; over the integers {dz:.3f} s")


if __name__ == "__main__":
    pairs()
    nested()
    three()
    sums()
