"""Benchmark: ``convgraph.solve`` against brute-force probing with PyTorch, on the U-Net models.

For each model, in one process:

- convgraph: ``solve(graph)`` from a fresh graph with empty caches (the valid and exact-tiling set
  of every symbol, every merge verdict), then the set's members in 1..MAX read off it; and,
  separately, the verified fixes (``solution.fixes``: one graph rebuild per candidate edit);
- PyTorch: the real module (``tests/torch_equiv.to_torch``: the model's own channel counts),
  batch 1, square inputs x*x for x = 1..MAX, ``torch.no_grad()``, a RuntimeError meaning "invalid".
  ``--device meta`` (the default) runs PyTorch's own shape checks without arithmetic: the cheapest
  probe there is, so the ratio against it is a lower bound. ``--device cpu`` computes for real
  (use ``--max-size`` to keep it short: a real U-Net at 2048x2048 takes tens of seconds per size).

Both answers are compared size by size (they must agree), and the times and their ratio printed.

    python benchmarks/bench_solve.py                      # meta probe, sizes 1..2048
    python benchmarks/bench_solve.py --device cpu --max-size 96
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import convgraph as cg  # noqa: E402
from convgraph.ir import Graph  # noqa: E402
from convgraph.solve import solve  # noqa: E402
from convgraph.solve._sets import condition_set  # noqa: E402

MODELS = ["unet.cg", "unet_original.cg", "unet_strided.cg"]


def fresh(graph: Graph) -> Graph:
    """The same graph without its cached shape result; the solver's cache emptied too."""
    condition_set.cache_clear()
    return Graph(graph.nodes, graph.outputs, graph.filename, graph.doc, graph.assumes, graph.expects)


def time_solve(graph: Graph, max_size: int, repeat: int) -> tuple[float, float, set[int], int]:
    """(median seconds for solve + the valid sizes 1..max, median seconds for the fixes, the valid
    square sizes, the number of fixes)."""
    t_solve, t_fix = [], []
    for _ in range(repeat):
        g = fresh(graph)
        t0 = time.perf_counter()
        sol = solve(g)
        valid = {x for x in range(1, max_size + 1) if all(x in sol.runs(n) for n in ("H", "W"))}
        t1 = time.perf_counter()
        fixes = sol.fixes
        t2 = time.perf_counter()
        t_solve.append(t1 - t0)
        t_fix.append(t2 - t1)
    return statistics.median(t_solve), statistics.median(t_fix), valid, len(fixes)


def probe_torch(graph: Graph, max_size: int, device: str) -> tuple[float, set[int]]:
    import torch
    from torch_equiv import to_torch

    module = to_torch(graph).to(device)
    (inp,) = graph.inputs
    n_ch = inp.dims[1]
    valid = set()
    t0 = time.perf_counter()
    with torch.no_grad():
        for x in range(1, max_size + 1):
            try:
                module(torch.zeros(1, n_ch, x, x, device=device))
                valid.add(x)
            except RuntimeError:
                pass
    return time.perf_counter() - t0, valid


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="meta", help="meta (default), cpu or cuda")
    ap.add_argument("--max-size", type=int, default=2048)
    ap.add_argument("--repeat", type=int, default=5, help="solver repetitions (median)")
    ap.add_argument("--models", nargs="*", default=MODELS)
    args = ap.parse_args(argv)
    import torch

    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, "
          f"square sizes 1..{args.max_size}, batch 1")
    ok = True
    for name in args.models:
        graph = cg.load(str(ROOT / "models" / name))
        t_solve, t_fix, mine, n_fix = time_solve(graph, args.max_size, args.repeat)
        t_probe, theirs = probe_torch(graph, args.max_size, args.device)
        agree = mine == theirs
        ok &= agree
        print(f"{name:18s} solve {t_solve * 1e3:8.2f} ms   fixes ({n_fix}) {t_fix * 1e3:8.1f} ms   "
              f"torch probe {t_probe:8.2f} s   ratio {t_probe / t_solve:9.0f}x "
              f"(with fixes {t_probe / (t_solve + t_fix):7.0f}x)   valid sizes {len(mine)}   "
              f"{'agree' if agree else 'DISAGREE: ' + str(sorted(mine ^ theirs)[:10])}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
