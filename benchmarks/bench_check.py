"""``convgraph check`` on the U-Net across 20 sizes: where the time goes.

    python benchmarks/bench_check.py [--count 20] [--no-torch]

Runs ``convgraph.validate.check`` on models/unet.cg at the solver's first ``--count`` sizes (smallest valid
sizes, residue classes, larger sizes, H != W) on the CPU provider and prints the split of the wall
time between the numpy reference, onnxruntime (session creation + runs), the torch comparison,
the export and the size choice, with the numpy/onnxruntime ratio. ``--no-torch`` hides torch
from the check, as on a machine without it. Run by hand; not part of the test suite.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import convgraph as cg  # noqa: E402
import convgraph.validate as C  # noqa: E402
from convgraph.solve.sizes import check_sizes  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--model", default=str(ROOT / "models" / "unet.cg"))
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args()
    if args.no_torch:
        C._import_torch = lambda: None
    graph = cg.load(args.model)
    t0 = time.perf_counter()
    sizes = check_sizes(graph, args.count)
    t_sizes = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = C.check(graph, sizes=sizes, progress=False)
    wall = time.perf_counter() - t0
    print(f"{Path(args.model).name}: {len(report.results)} runs at sizes "
          + "; ".join(" ".join(f"{k}={v}" for k, v in env.items()) for env in sizes))
    print(f"ok: {report.ok}; largest error/tolerance: "
          f"{max(o.err_ref / o.tol for r in report.results for o in r.outputs):.3f}")
    print(f"\nwall time {wall:.2f} s (+ {t_sizes:.2f} s choosing {len(sizes)} sizes):")
    for k, v in sorted(report.seconds.items(), key=lambda kv: -kv[1]):
        print(f"  {k:12s} {v:7.2f} s  {100 * v / wall:5.1f} %")
    ref, ort = report.seconds.get("reference", 0.0), report.seconds.get("onnxruntime", 0.0)
    print(f"\nnumpy reference / onnxruntime = {ref / ort:.2f}")


if __name__ == "__main__":
    main()
