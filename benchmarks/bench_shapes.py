"""Shape derivation: convgraph vs onnxruntime's SymbolicShapeInference, measured in one run.

    python benchmarks/bench_shapes.py

1. In-process derivation (parse + canonical forms + constraints) of models/resnet18.cg and of a
   200-layer stack, against ``SymbolicShapeInference.infer_shapes`` on the equivalent ONNX model
   (exported by torch.onnx.export from the equivalent torch module, with dynamic H and W).
   Prints both times, the ratio, and the final spatial formula each tool produces.
2. ``convgraph shapes`` wall time from the shell against ``python -c "import sympy"``.
3. ``Graph.output_shapes()`` against ``Graph.shapes()`` (every value) on a 1000-layer stack with
   nested formulas: the cost must follow what is asked (the outputs), not the graph's size.
Needs torch, onnx and onnxruntime (run by hand; not part of the test suite).
"""
from __future__ import annotations

import io
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def stack_200() -> str:
    """200 layers: conv/BN/ReLU triples with a stride-2 conv or pool every so often, and a few
    transposed convs, so the formulas nest deeply."""
    lines = ['"""A 200-layer stack for the shape benchmark."""', "input(N, 8, H, W)"]
    for j in range(200):
        r = j % 10
        if r == 3:
            lines.append("Conv2d(8, 8, 3, stride=2, padding=1)")
        elif r == 6:
            lines.append("MaxPool2d(3, stride=2, padding=1, ceil_mode=True)")
        elif r == 8:
            lines.append("ConvTranspose2d(8, 8, 3, stride=2, padding=1, output_padding=1)")
        elif r % 3 == 0:
            lines.append("BatchNorm2d(8)")
        elif r % 3 == 1:
            lines.append("Conv2d(8, 8, 3, padding=1)")
        else:
            lines.append("ReLU()")
    return "\n".join(lines) + "\n"


def best_of(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def onnx_of(graph, sizes):
    import torch
    from torch_equiv import to_torch

    mod = to_torch(graph).eval()
    x = torch.zeros(1, graph.inputs[0].dims[1], *sizes)
    buf = io.BytesIO()
    torch.onnx.export(mod, (x,), buf, dynamo=False, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N", 2: "H", 3: "W"}}, opset_version=17)
    import onnx

    return onnx.load_from_string(buf.getvalue())


def ort_symbolic(model):
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    return SymbolicShapeInference.infer_shapes(model, auto_merge=True)


def out_dims(model) -> list[str]:
    t = model.graph.output[0].type.tensor_type.shape
    return [d.dim_param or str(d.dim_value) for d in t.dim]


def ort_dims_before_pool(model) -> list[str] | None:
    """ORT's inferred dims of the tensor entering the global pool (the last spatial value)."""
    pool = next((n for n in model.graph.node if n.op_type in ("GlobalAveragePool", "ReduceMean", "AveragePool")), None)
    if pool is None:
        return None
    for vi in model.graph.value_info:
        if vi.name == pool.input[0]:
            return [d.dim_param or str(d.dim_value) for d in vi.type.tensor_type.shape.dim]
    return None


def compare(name: str, text: str, sizes) -> None:
    import convgraph as cg
    from convgraph import dims as D

    def ours():
        g = cg.parse(text, name)
        res = g.infer()
        for c in res.constraints:
            c.solved()
        return g, res

    g, res = ours()
    model = onnx_of(g, sizes)
    t_cg = best_of(ours)
    t_ort = best_of(lambda: ort_symbolic(model), repeat=3)
    inferred = ort_symbolic(model)
    print(f"\n== {name}: {len(g.layers())} layers")
    print(f"convgraph parse+shapes+constraints: {t_cg * 1e3:8.1f} ms")
    print(f"ORT SymbolicShapeInference:         {t_ort * 1e3:8.1f} ms   ratio ORT/convgraph = {t_ort / t_cg:.1f}x")
    last = res.values[g.outputs[0]]
    print(f"  convgraph output: ({', '.join(D.dim_str(d) for d in last)})")
    print(f"  ORT output:       ({', '.join(out_dims(inferred))})")
    before = ort_dims_before_pool(inferred)
    if before is not None:
        pool_in = next(n for n in g.nodes if n.op == "layer" and type(n.layer).__name__ == "AdaptiveAvgPool").inputs[0]
        print(f"  convgraph before the pool: ({', '.join(D.dim_str(d) for d in res.values[pool_in])})")
        print(f"  ORT before the pool:       ({', '.join(before)})")


def stack(n: int) -> str:
    """``stack_200``'s pattern, n layers long, with the halving layers balanced by transposed convs
    (so every length has valid sizes), formulas changing from layer to layer."""
    pattern = ["Conv2d(8, 8, 3, stride=2, padding=1)", "BatchNorm2d(8)", "ReLU()",
               "ConvTranspose2d(8, 8, 3, stride=2, padding=1, output_padding=1)", "Conv2d(8, 8, 3, padding=2)"]
    return "input(N, 8, H, W)\n" + "\n".join(pattern[j % len(pattern)] for j in range(n)) + "\n"


def asked_cost(n: int = 1000) -> None:
    """output_shapes() renders the outputs only; shapes() every value (sympy conversion per dim)."""
    import convgraph as cg

    cg.parse(stack(n)).output_shapes()  # sympy imported and warm

    def call(method: str) -> float:  # on a fresh graph (shapes inferred at parse), the call alone
        graph = cg.parse(stack(n))
        t0 = time.perf_counter()
        getattr(graph, method)()
        return time.perf_counter() - t0

    t_out, t_all = min(call("output_shapes") for _ in range(3)), min(call("shapes") for _ in range(2))
    print(f"\n== {n}-layer stack, fresh graph each time (the call alone)")
    print(f"output_shapes(): {t_out * 1e3:8.1f} ms   shapes() (all {n + 1} values): {t_all * 1e3:8.1f} ms   "
          f"ratio {t_all / max(t_out, 1e-4):.0f}x")


def cli_wall() -> None:
    def run(cmd):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - t0

    import tempfile

    stack = Path(tempfile.mkdtemp()) / "stack200.cg"
    stack.write_text(stack_200())
    model = str(ROOT / "models" / "unet.cg")
    sp_cmd = [sys.executable, "-c", "import sympy"]
    run(sp_cmd)  # warm the file cache
    t_sp = statistics.median(run(sp_cmd) for _ in range(7))
    print("\n== CLI wall time (median of 7)")
    print(f'python -c "import sympy":           {t_sp * 1e3:7.1f} ms')
    resnet18 = str(ROOT / "models" / "resnet18.cg")
    for label, path in (("models/unet.cg", model), ("stack200.cg", str(stack)), ("models/resnet18.cg", resnet18)):
        cmd = [sys.executable, "-m", "convgraph", "shapes", path]
        run(cmd)
        t_cg = statistics.median(run(cmd) for _ in range(7))
        print(f"convgraph shapes {label:19s} {t_cg * 1e3:7.1f} ms   "
              f"ratio to import sympy = {t_cg / t_sp:.2f}x (target <= 2x)")
    mods = subprocess.run([sys.executable, "-c", f"import sys, runpy; sys.argv=['convgraph','shapes',{model!r}];"
                           "from convgraph.cli import main; main(sys.argv[1:]);"
                           "print('onnx' in sys.modules, 'onnxruntime' in sys.modules, file=sys.stderr)"],
                          capture_output=True, text=True).stderr.strip()
    print(f"onnx imported, onnxruntime imported on this path: {mods}")


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore")
    compare("models/resnet18.cg", (ROOT / "models" / "resnet18.cg").read_text(), (224, 224))
    compare("stack200.cg", stack_200(), (224, 160))
    cli_wall()
    asked_cost()
