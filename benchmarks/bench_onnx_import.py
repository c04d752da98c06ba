"""ONNX import: convgraph's import + shapes + solve against onnxruntime's SymbolicShapeInference,
onnx-shape-inference and ONNX's own shape inference (data propagation), on the same files.

    python benchmarks/bench_onnx_import.py [--repeat 5]

The files: the test modules of ``tests/onnx_torch_models.py`` (padded U-Net, interpolate-to-skip
U-Net, milesial U-Net with F.pad, DCGAN, 1-D autoencoder, small ResNet) exported with torch's
legacy and dynamo exporters, dynamic N and spatial axes, into a temporary directory. Per file and
tool: the median time (model already in memory for the peers; convgraph reads the file itself),
whether it finished (on a copy without the exporter's value_info and declared output shapes, so
that every tool infers rather than reads them), the output's dims as the tool states them, how many output dims are
opaque (a name that is not an input size symbol, or unknown), and how many constraints it states.
Needs torch, onnx, onnxruntime (onnxscript for the dynamo exporter; onnx-shape-inference optional).
Run by hand; not part of the test suite.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


def export_all(folder: str) -> list[str]:
    import torch
    from test_onnx_import import TORCH_MODELS, _export

    class _Skip(Exception):
        pass

    paths = []
    for name in TORCH_MODELS:
        for dynamo in (False, True):
            path = os.path.join(folder, f"{name}_{'dynamo' if dynamo else 'legacy'}.onnx")
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    _export(torch, name, dynamo, path)
                paths.append(path)
            except Exception as e:  # an exporter failure is reported, not fatal
                print(f"# {os.path.basename(path)}: export failed: {str(e).splitlines()[0][:120]}")
    return paths


def _median(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def _opaque(dims: list, symbols: set[str]) -> int:
    n = 0
    for d in dims:
        if d is None or (isinstance(d, str) and not set(_NAME.findall(d)) - {"floor"} <= symbols):
            n += 1
    return n


def _proto_out(model) -> list:
    t = model.graph.output[0].type.tensor_type
    if not t.HasField("shape"):
        return [None]
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]


def _inputs(model) -> set[str]:
    return {d.dim_param for vi in model.graph.input for d in vi.type.tensor_type.shape.dim if d.dim_param}


def run_convgraph(path: str) -> tuple[list, int]:
    import convgraph as cg
    from convgraph import dims as D

    g = cg.load(path)
    sol = cg.solve(g)
    for s in g.symbols:
        sol.describe_runs(s)
    dims = [d if isinstance(d, int) else D.dim_str(d) for d in g.infer().values[g.outputs[0]]]
    return dims, len(g.infer().constraints)


def run_ssi(model):
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    out = SymbolicShapeInference.infer_shapes(model, auto_merge=False)
    return _proto_out(out), 0


def run_onnx(model):
    import onnx

    out = onnx.shape_inference.infer_shapes(model, data_prop=True)
    return _proto_out(out), 0


def run_osi(path: str):
    import onnx_ir as ir
    from onnx_shape_inference import infer_symbolic_shapes

    model = infer_symbolic_shapes(ir.load(path), warn_on_missing=False)
    shape = model.graph.outputs[0].shape
    return ([None] if shape is None else [d if isinstance(d, int) else (str(d) if d is not None else None)
                                          for d in shape]), 0


def strip(path: str) -> str:
    """A copy without the exporter's value_info and output shapes (so every tool infers them)."""
    import onnx

    model = onnx.load(path, load_external_data=False)
    del model.graph.value_info[:]
    for vi in model.graph.output:
        vi.type.tensor_type.ClearField("shape")
    out = path.replace(".onnx", ".stripped.onnx")
    onnx.save(model, out)
    return out


def measure(path: str, repeat: int) -> list[tuple]:
    import onnx

    path = strip(path)
    model = onnx.load(path)
    syms = _inputs(model)
    tools = [("convgraph", lambda: run_convgraph(path)), ("SymbolicShapeInference", lambda: run_ssi(model)),
             ("onnx-shape-inference", lambda: run_osi(path)), ("onnx infer_shapes", lambda: run_onnx(model))]
    rows = []
    for tool, fn in tools:
        try:
            t, (dims, ncons) = _median(fn, repeat)
            rows.append((tool, t, "ok", dims, _opaque(dims, syms), ncons))
        except Exception as e:  # a tool's failure is a result
            msg = str(e).splitlines()[0][:90] if str(e) else type(e).__name__
            rows.append((tool, None, f"fails: {msg}", [], None, 0))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        paths = export_all(tmp)
        print(f"{'file':<26} {'tool':<24} {'ms':>8}  {'opaque':>6} {'constraints':>11}  output dims / status")
        for path in paths:
            for tool, t, status, dims, opaque, ncons in measure(path, args.repeat):
                ms = f"{1000 * t:8.1f}" if t is not None else "       -"
                shown = "(" + ", ".join(map(str, dims)) + ")" if status == "ok" else status
                print(f"{os.path.basename(path):<26} {tool:<24} {ms}  {opaque if opaque is not None else '-':>6} "
                      f"{ncons:>11}  {shown}")


if __name__ == "__main__":
    main()
