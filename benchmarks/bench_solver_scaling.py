"""Benchmark: how the solver scales with depth and with the period (the product of the strides).

Graphs (built from IR, the same generator for both implementations):

- padded 2-D U-Nets of depth 8 / 10 / 12 (conv 3x3 pad 1, max-pool 2, transposed conv 2, cat);
- unpadded 2-D U-Nets of depth 8 / 12 (conv 3x3 pad 0, a crop before each cat);
- mixed-stride stacks of 300 and 1000 layers (conv 3 pad 1, stride 2 or 3 every 10th layer);
- stride nests of period 2**16, 2**24 and 2**8*3**8 (strided convs down, transposed convs up, a cat
  at every level);
- a 3-D U-Net of depth 8.

For each graph: the seconds for ``solve(graph)`` from empty caches, the seconds for its fixes as
the user pays for them (``solution.fixes`` plus ``solution.skip_fixes``: the per-merge fixes, then
the grouped per-skip fixes the CLI prints, each verified on the edited graph), the ratio
fixes / solve, and the valid set of the first symbol as the solver states it. Each figure is the
minimum of ``--repeat`` (3) runs, each on a freshly built graph after every module-level memo of
convgraph is cleared (``clear_caches``), because the machine is shared.

The previous implementation (commit 357b3b0) is run from a frozen copy of that commit in a
subprocess (``git archive`` into a temporary folder), on the same graphs, with a time limit per
graph, so both figures come from the same run on the same machine:

The figures of the old implementation from one such run on the development machine are kept in
``benchmarks/bench_solver_scaling_old_357b3b0.txt`` (graphs that took over 100 s were stopped).

    python benchmarks/bench_solver_scaling.py                 # new and old
    python benchmarks/bench_solver_scaling.py --only new      # the current code only
    python benchmarks/bench_solver_scaling.py --old-timeout 120
    python benchmarks/bench_solver_scaling.py --only new --models   # and every model in models/
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OLD_COMMIT = "357b3b0"


# --------------------------------------------------------------------------------------------
# Graph generators (use whichever convgraph is importable)
# --------------------------------------------------------------------------------------------


class _B:
    def __init__(self):
        from convgraph.errors import Loc  # noqa: F401

        self.nodes = []

    def _loc(self):
        from convgraph.errors import Loc

        return Loc("<bench>", len(self.nodes) + 1, 1)

    def input(self, name, *dims):
        from convgraph.ir import Node

        self.nodes.append(Node(name, "input", (), self._loc(), dims=dims))
        return name

    def layer(self, type_name, src, *args, **kw):
        from convgraph.ir import Node

        try:
            from convgraph.front.catalogue import construct
        except ImportError:  # the flat layout of the old commit
            from convgraph.layers import construct

        name = f"v{len(self.nodes)}"
        self.nodes.append(Node(name, "layer", (src,), self._loc(), layer=construct(type_name, args, kw),
                               layer_name=name))
        return name

    def merge(self, op, *srcs):
        from convgraph.ir import Node

        name = f"m{len(self.nodes)}"
        self.nodes.append(Node(name, op, tuple(srcs), self._loc(), dim=1))
        return name

    def graph(self, filename):
        from convgraph.ir import Graph

        return Graph(tuple(self.nodes), (self.nodes[-1].name,), filename, None, (), ())


def unet(depth: int, padded: bool = True, nd: int = 2, c: int = 4):
    b = _B()
    syms = ["D", "H", "W"][3 - nd:]
    x = b.input("x", "N", c, *syms)
    p = 1 if padded else 0
    conv, pool, up = f"Conv{nd}d", f"MaxPool{nd}d", f"ConvTranspose{nd}d"
    skips = []
    for _ in range(depth):
        x = b.layer(conv, b.layer(conv, x, c, c, 3, padding=p), c, c, 3, padding=p)
        skips.append(x)
        x = b.layer(pool, x, 2)
    x = b.layer(conv, b.layer(conv, x, c, c, 3, padding=p), c, c, 3, padding=p)
    for s in reversed(skips):
        x = b.layer(up, x, c, c, 2, stride=2)
        if not padded:
            s = b.merge("crop", s, x)
        x = b.merge("cat", s, x)
        x = b.layer(conv, b.layer(conv, x, 2 * c, c, 3, padding=p), c, c, 3, padding=p)
    return b.graph(f"unet{nd}d_{'padded' if padded else 'unpadded'}_depth{depth}")


def stack(n: int, c: int = 4):
    b = _B()
    x = b.input("x", 1, c, "H", "W")
    for i in range(n):
        s = (2 if (i // 10) % 2 == 0 else 3) if i % 10 == 9 else 1
        x = b.layer("Conv2d", x, c, c, 3, stride=s, padding=1)
    return b.graph(f"stack_{n}")


def nest(strides: list[int], name: str, c: int = 4):
    b = _B()
    x = b.input("x", 1, c, "L")
    skips = []
    for s in strides:
        skips.append(x)
        x = b.layer("Conv1d", x, c, c, s + 1, stride=s, padding=s // 2)
    for s, skip in zip(reversed(strides), reversed(skips)):
        x = b.layer("ConvTranspose1d", x, c, c, s, stride=s)
        x = b.layer("Conv1d", b.merge("cat", skip, x), 2 * c, c, 3, padding=1)
    return b.graph(name)


GRAPHS = {
    "unet2d padded depth 8": lambda: unet(8),
    "unet2d padded depth 10": lambda: unet(10),
    "unet2d padded depth 12": lambda: unet(12),
    "unet2d unpadded depth 8": lambda: unet(8, padded=False),
    "unet2d unpadded depth 12": lambda: unet(12, padded=False),
    "stack 300": lambda: stack(300),
    "stack 1000": lambda: stack(1000),
    "nest 2^16": lambda: nest([2] * 16, "nest_2_16"),
    "nest 2^24": lambda: nest([2] * 24, "nest_2_24"),
    "nest 2^8*3^8": lambda: nest([2, 3] * 8, "nest_2_8_3_8"),
    "unet3d padded depth 8": lambda: unet(8, nd=3),
}


#: module-level memo dicts (functools caches are found by their ``cache_clear``); the digit trees'
#: hash-consing table (``_tree._NODES`` / ``_IDS``) is a table of canonical nodes, not a memo, and stays
MEMO_DICTS = ("_OTHERS", "_SPLITS", "_BASES", "_SYMBOLS", "_INFERRED", "_ENDS", "_OWN",
              "_AT", "_FLAT", "_KNOWN", "_DENS", "_SYMMETRY", "_RUNS", "_CONSUMERS", "_VERDICTS", "_PREFIX", "_BY_NODE",
              "_VALID", "_WITHOUT", "_FIELDS", "_MERGE_MEETS", "_PLAIN",
              "_DIM_DENS", "_HALF_LINES", "_CHECKS", "_LEADING")


def clear_caches() -> None:
    """Empty every memo of the importable convgraph, so that a run starts cold."""
    for name, mod in list(sys.modules.items()):
        if name != "convgraph" and not name.startswith("convgraph."):
            continue
        for attr, value in list(vars(mod).items()):
            if callable(getattr(value, "cache_clear", None)) and getattr(value, "__module__", None) == name:
                value.cache_clear()
            elif attr in MEMO_DICTS and isinstance(value, dict):
                value.clear()


def _run_once(key: str) -> tuple[float, float, float, object]:
    from convgraph.solve import solve

    clear_caches()
    graph = {**GRAPHS, **MODELS}[key]()
    t0 = time.perf_counter()
    sol = solve(graph)
    t1 = time.perf_counter()
    fixes = sol.fixes
    t_search = time.perf_counter()
    skips = getattr(sol, "skip_fixes", ())  # the old commit has no grouped fixes
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, t_search - t1, (sol, len(fixes), len(skips))


def _load_model(path: Path):
    import convgraph

    return convgraph.load(str(path))


#: with ``--models``: every model in models/ (the fix search's ratio on real files)
MODELS = {f"models/{p.name}": (lambda p=p: _load_model(p)) for p in sorted((ROOT / "models").glob("*.cg"))}


def measure(names: list[str], repeat: int = 3) -> dict:
    """{graph: {solve_s, fixes_s, ratio, search_s, search_ratio, fixes, skip_fixes, runs}} with the
    importable convgraph: fixes_s is ``sol.fixes`` plus ``sol.skip_fixes`` (what the CLI prints),
    search_s ``sol.fixes`` alone (the per-merge search); each the minimum over ``repeat`` cold runs."""
    try:
        from convgraph.solve._report import describe_set
    except ImportError:  # the flat layout of the old commit
        from convgraph.solve_report import describe_set

    out = {}
    for key in names:
        runs = [_run_once(key) for _ in range(repeat)]
        solve_s, fixes_s, search_s = (min(r[i] for r in runs) for i in range(3))
        sol, n_fixes, n_skips = runs[-1][3]
        sym = "L" if "L" in sol.symbols else "H" if "H" in sol.symbols else next(iter(sol.symbols))
        out[key] = {"solve_s": round(solve_s, 4), "fixes_s": round(fixes_s, 4),
                    "ratio": round(fixes_s / solve_s, 1), "search_s": round(search_s, 4),
                    "search_ratio": round(search_s / solve_s, 1), "fixes": n_fixes, "skip_fixes": n_skips,
                    "runs": describe_set(sol.runs(sym), sym)[:120]}
        print(json.dumps({key: out[key]}), flush=True)
    return out


# --------------------------------------------------------------------------------------------
# Old implementation: a frozen copy of OLD_COMMIT in a subprocess
# --------------------------------------------------------------------------------------------


def old_tree() -> Path:
    d = Path(tempfile.mkdtemp(prefix="convgraph_old_"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", OLD_COMMIT, "convgraph"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(d)], input=archive, check=True)
    return d


def run_old(names: list[str], timeout: float, repeat: int = 3) -> dict:
    tree = old_tree()
    out = {}
    for key in names:
        env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{ROOT / 'benchmarks'}"}
        code = (f"import sys; sys.path.insert(0, {str(tree)!r}); import bench_solver_scaling as b; "
                f"b.measure([{key!r}], {repeat})")
        try:
            got = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                 timeout=timeout, cwd=str(tree))
            line = [ln for ln in got.stdout.splitlines() if ln.startswith("{")]
            out[key] = json.loads(line[-1])[key] if line else {"error": got.stderr.strip()[-300:]}
        except subprocess.TimeoutExpired:
            out[key] = {"error": f"over {timeout:.0f} s"}
        print(json.dumps({"old " + key: out[key]}), flush=True)
    return out


def _cell(d: dict, k: str) -> str:
    return f"{d[k]:.3f}" if k in d else ("-" if not d else "error")


def _ratio(d: dict, k: str = "ratio") -> str:
    return f"{d[k]:.1f}" if k in d else "-"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["new", "old"])
    ap.add_argument("--graphs", nargs="*", default=list(GRAPHS))
    ap.add_argument("--old-timeout", type=float, default=90.0)
    ap.add_argument("--repeat", type=int, default=3, help="cold runs per graph; the minimum is shown")
    ap.add_argument("--models", action="store_true", help="also every model in models/")
    args = ap.parse_args()
    if args.models:
        args.graphs = [*args.graphs, *MODELS]
    new = old = {}
    if args.only != "old":
        sys.path.insert(0, str(ROOT))
        new = measure(args.graphs, args.repeat)
    if args.only != "new":
        old = run_old(args.graphs, args.old_timeout, args.repeat)
    print("\nfixes = the per-merge search (sol.fixes) plus the grouped, re-verified fixes the CLI prints"
          " (sol.skip_fixes); search = sol.fixes alone; ratios are to the solve")
    print(f"{'graph':<34}{'new solve':>10}{'search':>8}{'ratio':>7}{'fixes':>8}{'ratio':>7}{'old solve':>10}"
          f"{'old fixes':>10}{'ratio':>7}")
    for key in args.graphs:
        n, o = new.get(key, {}), old.get(key, {})
        print(f"{key:<34}{_cell(n, 'solve_s'):>10}{_cell(n, 'search_s'):>8}{_ratio(n, 'search_ratio'):>7}"
              f"{_cell(n, 'fixes_s'):>8}{_ratio(n):>7}{_cell(o, 'solve_s'):>10}{_cell(o, 'fixes_s'):>10}{_ratio(o):>7}")
    for key in args.graphs:
        if key in new:
            print(f"  new {key}: {new[key]['runs']}")
        if key in old and "runs" in old[key]:
            print(f"  old {key}: {old[key]['runs']}")
        elif key in old:
            print(f"  old {key}: {old[key].get('error')}")


if __name__ == "__main__":
    main()
