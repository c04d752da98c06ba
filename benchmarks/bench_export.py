"""ONNX export of ResNet-18 with real-size weights: convgraph vs torch.onnx.export, same run.

    python benchmarks/bench_export.py [--repeat 3] [--runs 50] [--threads 1] [--no-dynamo] [--no-latency]
                                      [--layers 1000 5000 10000]

1. Export time, writing the file, dynamic N/H/W everywhere:
   - convgraph: ``cg.load(models/resnet18.cg).export(path, params=params)`` (build, check_model
     full_check and the shape-inference cross-check on the weight-free copy, one serialization of
     the weights, atomic write with fsync); a fresh graph each time (parse, shapes and solve included);
   - torch legacy TorchScript exporter (``dynamo=False``, dynamic_axes N/H/W), opset 17;
   - torch default dynamo exporter (``dynamo=True``), dynamic N/H/W when it can, opset 18.
   The torch module is ``tests/torch_equiv.to_torch(graph)`` with convgraph's weights loaded by
   name, so every export carries the same weights. Median of ``--repeat`` runs each, convgraph and
   legacy interleaved, and the median per-round ratio convgraph/legacy (target: at most 0.35).
2. onnxruntime latency, batch 1, 224x224: convgraph's dynamic export against each torch export
   (and convgraph's static ``sizes={N:1, H:224, W:224}`` export), with the same SessionOptions,
   every round running each session once in shuffled order; medians over ``--runs`` rounds and the
   median per-round ratio. The outputs are compared against each other.
3. Scaling (``--layers``): export of a conv/BN/ReLU/strided-conv/transposed-conv stack of each
   length (parse and solve timed apart): linear in the layer count.
Needs torch (with onnxscript for the dynamo exporter). Run by hand; not part of the test suite.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402

import convgraph as cg  # noqa: E402
from convgraph.export.weights import init_params  # noqa: E402


def timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


@contextlib.contextmanager
def quiet():
    """torch's exporters print progress and warnings; keep the report readable."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def interleaved(ours, theirs, repeat: int) -> tuple[float, float, float]:
    """Median times of two exports run alternately, and the median per-round ratio ours/theirs
    (both see the same machine load)."""
    a, b = [], []
    for _ in range(repeat):
        for fn, acc in ((ours, a), (theirs, b)):
            t0 = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t0)
    return statistics.median(a), statistics.median(b), statistics.median(x / y for x, y in zip(a, b))


def stack(n: int) -> str:
    """n layers whose spatial size returns to H every six layers (a stride-2 conv, then a stride-2
    transposed conv), so any length has valid sizes and the formulas stay short."""
    pattern = ["Conv2d(4, 4, 3, padding=1)", "BatchNorm2d(4)", "ReLU()", "Conv2d(4, 4, 3, stride=2, padding=1)",
               "ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1)", "ReLU()"]
    return "input(N, 4, H, W)\n" + "\n".join(pattern[j % len(pattern)] for j in range(n)) + "\n"


def scaling(lengths: list[int], tmp: str) -> None:
    """Export time against the layer count (parse and solve timed apart, export after them)."""
    from convgraph.solve import solve

    print("\nexport of an n-layer stack (s):")
    for n in lengths:
        t0 = time.perf_counter()
        graph = cg.parse(stack(n))
        t1 = time.perf_counter()
        solve(graph)
        t2 = time.perf_counter()
        graph.export(os.path.join(tmp, f"stack{n}.onnx"))
        t3 = time.perf_counter()
        print(f"  {n:6d} layers: parse+shapes {t1 - t0:6.2f}   solve {t2 - t1:6.2f}   export {t3 - t2:6.2f}   "
              f"per 1000 layers {1000 * (t3 - t2) / n:5.2f}")


def torch_module(graph, params):
    import torch
    from torch_equiv import load_params, to_torch

    module = to_torch(graph)
    load_params(module, params)
    return module.eval(), torch.randn(1, 3, 224, 224)


def export_legacy(module, x, path: str) -> str:
    import torch

    with quiet():
        torch.onnx.export(module, (x,), path, dynamo=False, opset_version=17, input_names=["x"],
                          output_names=["fc"], dynamic_axes={"x": {0: "N", 2: "H", 3: "W"}})
    return path


def export_dynamo(module, x, path: str) -> tuple[str, str]:
    """Dynamic N/H/W when torch.export accepts it, else static; returns (path, what)."""
    import torch

    dim = torch.export.Dim
    # the module's forward takes *args: one spec per positional input
    shapes = (({0: dim("N", min=1, max=64), 2: dim("H", min=32, max=4096), 3: dim("W", min=32, max=4096)},),)
    for dynamic in (shapes, None):
        try:
            with quiet():
                torch.onnx.export(module, (x,), path, dynamo=True, opset_version=18, input_names=["x"],
                                  output_names=["fc"], dynamic_shapes=dynamic, external_data=False)
            return path, "dynamic N/H/W" if dynamic else "static (dynamic shapes refused)"
        except Exception as e:  # report and fall back to a static export
            err = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
    raise RuntimeError(f"dynamo export failed: {err}")


def latency(paths: dict[str, str], runs: int, threads: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median ms per run and the median per-round ratio convgraph/other. Each round runs every
    session once in a shuffled order, so drift and position hit every model alike."""
    import random

    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    sessions = {k: ort.InferenceSession(p, opts, providers=["CPUExecutionProvider"]) for k, p in paths.items()}
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    feed = {k: {s.get_inputs()[0].name: x} for k, s in sessions.items()}
    outs = {k: s.run(None, feed[k])[0] for k, s in sessions.items()}
    for k, y in outs.items():
        if k != "convgraph":
            print(f"  output max|{k} - convgraph| = {float(np.abs(y - outs['convgraph']).max()):.2e}")
    for _ in range(5):
        for k, s in sessions.items():
            s.run(None, feed[k])
    times: dict[str, list[float]] = {k: [] for k in sessions}
    order, rng = list(sessions), random.Random(0)
    for _ in range(runs):
        rng.shuffle(order)
        for k in order:
            t0 = time.perf_counter()
            sessions[k].run(None, feed[k])
            times[k].append(time.perf_counter() - t0)
    ratios = {k: statistics.median(a / b for a, b in zip(times["convgraph"], v)) for k, v in times.items()}
    return {k: 1e3 * statistics.median(v) for k, v in times.items()}, ratios


def optimized_ops(path: str, threads: int) -> dict[str, int]:
    """Node counts by op type of the graph onnxruntime actually runs (after its optimizations)."""
    import collections

    import onnx
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.optimized_model_filepath = path + ".optimized.onnx"
    opts.log_severity_level = 3
    ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    ops = collections.Counter(n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node)
    return dict(sorted(ops.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--torch-threads", type=int, default=1,
                    help="torch's intra-op threads while exporting (1: convgraph's export is single-threaded "
                         "too, and on a shared machine torch's spinning pool costs it up to 5x; 0: torch's default)")
    ap.add_argument("--no-dynamo", action="store_true", help="skip torch's dynamo exporter")
    ap.add_argument("--no-latency", action="store_true", help="skip the onnxruntime latency comparison")
    ap.add_argument("--layers", type=int, nargs="*", default=[1000, 5000, 10000],
                    help="stack lengths for the scaling measurement (none: skip it)")
    ap.add_argument("--threads", type=int, default=1,
                    help="intra-op threads for every session (0: onnxruntime's default; 1 is the least noisy)")
    args = ap.parse_args()
    import onnxruntime
    import torch

    graph = cg.load(str(ROOT / "models" / "resnet18.cg"))
    params = init_params(graph, seed=0)
    n_params = sum(v.size for v in params.values())
    print(f"ResNet-18: {n_params / 1e6:.1f} M parameters ({4 * n_params / 2**20:.0f} MiB float32); "
          f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {os.cpu_count()} CPUs")
    module, x = torch_module(graph, params)
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    print(f"torch exports with {torch.get_num_threads()} intra-op thread(s)")
    with tempfile.TemporaryDirectory() as tmp:
        paths = {k: os.path.join(tmp, f"{k}.onnx") for k in ("convgraph", "torch-legacy", "torch-dynamo")}
        t_cg, t_legacy, ratio = interleaved(
            lambda: cg.load(str(ROOT / "models" / "resnet18.cg")).export(paths["convgraph"], params=params),
            lambda: export_legacy(module, x, paths["torch-legacy"]), args.repeat)
        print(f"\nexport time (median of {args.repeat}, file written):")
        print(f"  convgraph             {t_cg:7.3f} s")
        print(f"  torch legacy (TS)     {t_legacy:7.3f} s   convgraph/legacy = {ratio:.3f} (median per-round ratio; "
              f"target <= 0.35)")
        if not args.no_dynamo:
            t_dynamo, (_, what) = timed(lambda: export_dynamo(module, x, paths["torch-dynamo"]), args.repeat)
            print(f"  torch dynamo          {t_dynamo:7.3f} s   convgraph is {t_dynamo / t_cg:5.1f}x faster   [{what}]")
        if args.layers:
            scaling(args.layers, tmp)
        if args.no_latency:
            return
        if args.no_dynamo:
            del paths["torch-dynamo"]
        print(f"\nonnxruntime latency, batch 1, 224x224 (median of {args.runs}, interleaved, same options):")
        paths["convgraph-static"] = os.path.join(tmp, "static.onnx")
        graph.export(paths["convgraph-static"], params=params, sizes={"N": 1, "H": 224, "W": 224})
        ms, ratios = latency(paths, args.runs, args.threads)
        for k, v in ms.items():
            ratio = "" if k == "convgraph" else f"   convgraph/{k} = {ratios[k]:.3f} (median per-round ratio)"
            print(f"  {k:20s}  {v:7.2f} ms{ratio}")
        print("\ngraph onnxruntime runs after its optimizations (op counts):")
        for k, p in paths.items():
            print(f"  {k:20s}  {optimized_ops(p, args.threads)}")


if __name__ == "__main__":
    main()
