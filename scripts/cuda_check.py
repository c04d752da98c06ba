"""Validate convgraph's ONNX exports on onnxruntime's CUDA execution provider.

Self-contained on purpose: it drives convgraph only through its public command line
(``python3 -m convgraph export`` / ``check``) and uses onnxruntime and numpy directly, so it does
not depend on the package's internal layout.

For every ``.cg`` under ``models/`` (recursively):

1. ``python3 -m convgraph check FILE --provider all --json``: its JSON and exit status are kept,
   and summarised per provider (largest error against the numpy reference and against torch,
   the worst error/tolerance ratio, which provider each session actually ran on);
2. ``python3 -m convgraph export FILE -o OUT.onnx --seed 0``;
3. in a worker subprocess (per-model timeout, crash isolation), the export runs at 2-3 of the
   sizes that ``check`` chose, on a CPU session and on a CUDA session
   (``['CUDAExecutionProvider', 'CPUExecutionProvider']``) and, for reference, on a CUDA session
   with TF32 off; all with ORT profiling on. From the profile's "Node" events it records which
   nodes did NOT run on CUDAExecutionProvider, and it records max |CUDA - CPU| absolute and
   relative to max |CPU|.

Writes ``report.json`` and ``report.txt`` to ``--out`` (default: ``$OUT``, else ./cuda_report);
the exports and profiles go to a scratch folder (``--work``), not to ``--out``.

``--cpu-only`` replaces CUDA by CPU everywhere so the plumbing can be tested without a GPU.

Exit status: 0 all models pass; 1 some model failed; 3 CUDA is not usable (fatal, nothing run).
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import ctypes
import glob
import io
import json
import math
import os
import platform
import re
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------------------------------------
# onnxruntime set-up
# ---------------------------------------------------------------------------------------------


def _site_dirs() -> list[str]:
    dirs = list(sys.path)
    with contextlib.suppress(Exception):
        dirs += site.getsitepackages()
    with contextlib.suppress(Exception):
        dirs += [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    out = []
    for d in dirs:
        d = os.path.abspath(d or ".")
        if d not in out and os.path.isdir(os.path.join(d, "nvidia")):
            out.append(d)
    return out


def nvidia_lib_dirs() -> list[str]:
    """Every site-packages/nvidia/*/lib folder (CUDA 13 wheels: nvidia/cu13/lib, nvidia/cudnn/lib)."""
    libs = []
    for d in _site_dirs():
        for lib in sorted(glob.glob(os.path.join(d, "nvidia", "*", "lib"))):
            if lib not in libs:
                libs.append(lib)
    return libs


def preload_cuda(ort, quiet: bool = False) -> list[str]:
    """Load the CUDA / cuDNN libraries the CUDA EP needs, then call ort.preload_dlls().

    ort.preload_dlls() looks for nvidia/* next to onnxruntime's own folder, which misses the
    interpreter's site-packages when onnxruntime-gpu is installed with ``pip --target``; so first
    load them from every site-packages that has an nvidia/ folder (RTLD_GLOBAL), after which the
    by-name loads in preload_dlls find them. Returns the messages (loaded / failed)."""
    msgs = []
    rel_paths = []
    getter = getattr(ort, "_get_nvidia_dll_paths", None)
    if getter is not None and getattr(ort, "cuda_version", ""):
        with contextlib.suppress(Exception):
            rel_paths = [tuple(p) for p in getter(False, True, True)]
    if not rel_paths and getattr(ort, "cuda_version", ""):
        major = str(ort.cuda_version).split(".")[0]
        rel_paths = [("nvidia", f"cu{major}", "lib", n) for n in
                     (f"libcublasLt.so.{major}", f"libcublas.so.{major}", f"libnvrtc.so.{major}",
                      "libcurand.so.10", "libcufft.so.12", f"libcudart.so.{major}")]
        rel_paths.append(("nvidia", "cudnn", "lib", "libcudnn.so.9"))
    for rel in rel_paths:
        for d in _site_dirs():
            path = os.path.join(d, *rel)
            if os.path.isfile(path):
                try:
                    ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                    msgs.append(f"loaded {path}")
                except OSError as e:
                    msgs.append(f"failed {path}: {e}")
                break
        else:
            msgs.append(f"not found in site-packages: {'/'.join(rel)}")
    if hasattr(ort, "preload_dlls"):
        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf):
                ort.preload_dlls()
        except Exception as e:  # report, don't die: the CUDA probe decides
            msgs.append(f"ort.preload_dlls() raised {type(e).__name__}: {e}")
        msgs += [f"ort.preload_dlls: {line}" for line in buf.getvalue().splitlines() if line.strip()]
    else:
        msgs.append("onnxruntime has no preload_dlls()")
    if not quiet:
        for m in msgs:
            print("  " + m, flush=True)
    return msgs


def _conv_model_bytes() -> bytes:
    """A tiny Conv + Relu model (exercises cuDNN) built with onnx.helper."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32) / 27, "w")
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
         helper.make_node("Relu", ["c"], ["y"], name="relu")],
        "probe", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 16, 16])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


def probe_cuda(ort) -> dict:
    """Create and run a Conv session on CUDA; report what it really ran on."""
    import numpy as np

    out = {"ok": False}
    try:
        so = ort.SessionOptions()
        so.log_severity_level = 3
        sess = ort.InferenceSession(_conv_model_bytes(), sess_options=so, providers=[CUDA, CPU])
        out["session_providers"] = sess.get_providers()
        y = sess.run(None, {"x": np.ones((1, 3, 16, 16), np.float32)})[0]
        out["ok"] = CUDA in sess.get_providers() and bool(np.isfinite(y).all())
    except Exception as e:
        out["error"] = f"{type(e).__name__}: {e}"
    return out


# ---------------------------------------------------------------------------------------------
# worker: one exported model, CPU vs CUDA, with profiling (runs in its own process)
# ---------------------------------------------------------------------------------------------

_NP_TYPES = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
             "tensor(int64)": "int64", "tensor(int32)": "int32"}


def _profile_nodes(path: str) -> dict:
    """(node name, op_type, provider) -> kernel runs, from an ORT profile JSON."""
    with open(path) as f:
        events = json.load(f)
    if isinstance(events, dict):
        events = events.get("traceEvents", [])
    nodes: dict[tuple, int] = {}
    for ev in events:
        if ev.get("cat") != "Node" or not str(ev.get("name", "")).endswith("_kernel_time"):
            continue
        args = ev.get("args") or {}
        key = (ev["name"][: -len("_kernel_time")], args.get("op_name", "?"), args.get("provider", "?"))
        nodes[key] = nodes.get(key, 0) + 1
    return nodes


def worker(spec: dict) -> dict:
    import numpy as np
    import onnxruntime as ort

    if not spec["cpu_only"]:
        preload_cuda(ort, quiet=True)
    res: dict = {"ort_version": ort.__version__, "ort_file": ort.__file__}
    accel = [CPU] if spec["cpu_only"] else [CUDA, CPU]
    variants = [("cpu", [CPU], None), ("cuda", accel, None)]
    if spec.get("tf32_variant", True):
        variants.append(("cuda_notf32", accel, None if spec["cpu_only"] else {"use_tf32": "0"}))
    sessions = {}
    for tag, providers, opts in variants:
        so = ort.SessionOptions()
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(spec["work"], f"{spec['name']}.{tag}")
        so.intra_op_num_threads = spec["threads"]
        so.log_severity_level = 3
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        prov_arg = [(p, opts) if (opts and p == CUDA) else p for p in providers]
        try:
            sessions[tag] = ort.InferenceSession(spec["onnx"], sess_options=so, providers=prov_arg)
        except Exception as e:
            res[f"{tag}_session_error"] = f"{type(e).__name__}: {str(e)[:500]}"
    res["session_providers"] = {t: s.get_providers() for t, s in sessions.items()}
    if "cpu" not in sessions or "cuda" not in sessions:
        res["error"] = "could not create the CPU and CUDA sessions"
        return res

    cpu_sess = sessions["cpu"]
    per_size = []
    rng = np.random.default_rng(0)
    for sizes in spec["sizes"]:
        entry: dict = {"sizes": sizes, "outputs": []}
        try:
            feeds = {}
            for i in cpu_sess.get_inputs():
                shape = []
                for d in i.shape:
                    if isinstance(d, int):
                        shape.append(d)
                    elif isinstance(d, str) and d in sizes:
                        shape.append(int(sizes[d]))
                    else:
                        raise ValueError(f"input {i.name}: dim {d!r} not set by sizes {sizes}")
                dtype = _NP_TYPES.get(i.type, "float32")
                feeds[i.name] = rng.standard_normal(shape).astype(dtype)
            names = [o.name for o in cpu_sess.get_outputs()]
            outs, ms = {}, {}
            for tag, sess in sessions.items():
                reps = 1 if tag == "cpu" else 2  # 2nd CUDA run is the warm timing
                for _ in range(reps):
                    t = time.perf_counter()
                    outs[tag] = sess.run(names, feeds)
                    ms[tag] = round((time.perf_counter() - t) * 1e3, 3)
            entry["ms"] = ms
            for k, name in enumerate(names):
                ref = outs["cpu"][k].astype(np.float64)
                o = {"name": name, "shape_cpu": list(ref.shape)}
                scale = float(np.max(np.abs(ref))) if ref.size else 0.0
                o["max_abs_cpu"] = scale
                for tag in sessions:
                    if tag == "cpu":
                        continue
                    got = outs[tag][k]
                    if list(got.shape) != list(ref.shape):
                        o[f"{tag}_shape"] = list(got.shape)
                        o[f"{tag}_max_abs_err"] = float("inf")
                        o[f"{tag}_rel_err"] = float("inf")
                        continue
                    err = float(np.max(np.abs(got.astype(np.float64) - ref))) if ref.size else 0.0
                    o[f"{tag}_max_abs_err"] = err
                    o[f"{tag}_rel_err"] = err / scale if scale > 0 else (0.0 if err == 0 else float("inf"))
                    o[f"{tag}_nonfinite"] = int((~np.isfinite(got)).sum())
                entry["outputs"].append(o)
        except Exception as e:
            entry["error"] = f"{type(e).__name__}: {str(e)[:500]}"
        per_size.append(entry)
    res["per_size"] = per_size

    profiles = {}
    for tag, sess in sessions.items():
        try:
            profiles[tag] = sess.end_profiling()
        except Exception as e:
            res[f"{tag}_profile_error"] = str(e)
    for tag in [t for t in sessions if t != "cpu"]:
        if tag not in profiles:
            continue
        nodes = _profile_nodes(profiles[tag])
        by_provider: dict[str, int] = {}
        for (_, _, prov) in nodes:
            by_provider[prov] = by_provider.get(prov, 0) + 1
        res[f"{tag}_nodes_by_provider"] = by_provider
        res[f"{tag}_non_cuda_nodes"] = sorted(
            ({"name": n, "op_type": op, "provider": p, "runs": c} for (n, op, p), c in nodes.items() if p != CUDA),
            key=lambda d: (d["provider"], d["name"]))
    res["profiles"] = profiles
    if not spec.get("keep_profiles"):
        for p in profiles.values():
            with contextlib.suppress(OSError):
                os.remove(p)
    return res


# ---------------------------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------------------------


def _tail(s: str, n: int = 1500) -> str:
    s = s or ""
    return s if len(s) <= n else "..." + s[-n:]


_CHILDREN: set = set()
_CHILDREN_LOCK = threading.Lock()
_STOPPING = threading.Event()


def _run(cmd: list[str], timeout: float, env: dict) -> dict:
    """Run a subprocess in its own process group; killed (group) on timeout or on --hard-limit."""
    t = time.perf_counter()
    if _STOPPING.is_set():
        return {"rc": None, "timeout": True, "stdout": "", "stderr": "not started: hard limit reached", "seconds": 0.0}
    p = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    with _CHILDREN_LOCK:
        _CHILDREN.add(p)
    try:
        out, err = p.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        _kill(p)
        out, err = p.communicate()
        timed_out = True
    finally:
        with _CHILDREN_LOCK:
            _CHILDREN.discard(p)
    res = {"rc": None if timed_out else p.returncode, "stdout": out or "", "stderr": err or "",
           "seconds": round(time.perf_counter() - t, 2)}
    if timed_out:
        res["timeout"] = True
    return res


def _kill(p) -> None:
    with contextlib.suppress(Exception):
        os.killpg(p.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        p.kill()


def summarize_check(js: dict) -> dict:
    """Per provider: runs, failures, which provider the sessions ran on, largest errors and the
    worst error/tolerance ratio (with the run it came from)."""
    per: dict[str, dict] = {}
    for r in js.get("results", []):
        p = per.setdefault(r.get("provider", "?"), {"runs": 0, "failed": 0, "ran": [], "errors": [],
                                                     "max_err_ref": None, "max_err_torch": None,
                                                     "worst_ratio": None, "worst": None})
        p["runs"] += 1
        if not r.get("ok"):
            p["failed"] += 1
        if r.get("ran") not in p["ran"]:
            p["ran"].append(r.get("ran"))
        if r.get("error"):
            p["errors"].append({"sizes": r.get("sizes"), "error": r["error"]})
        for o in r.get("outputs", []):
            er, et, tol = o.get("err_ref"), o.get("err_torch"), o.get("tol")
            if er is None and o.get("expected") != o.get("actual"):
                er = float("inf")  # shape mismatch (to_json writes inf as null)
            if er is not None and (p["max_err_ref"] is None or er > p["max_err_ref"]):
                p["max_err_ref"] = er
            if et is not None and (p["max_err_torch"] is None or et > p["max_err_torch"]):
                p["max_err_torch"] = et
            errs = [e for e in (er, et) if e is not None]
            if errs and tol:
                ratio = max(errs) / tol
                if p["worst_ratio"] is None or ratio > p["worst_ratio"]:
                    p["worst_ratio"] = ratio
                    p["worst"] = {"sizes": r.get("sizes"), "output": o.get("name"), "err_ref": er,
                                  "err_torch": et, "tol": tol}
    return per


def pick_sizes(check_js: dict | None, onnx_path: str | None, count: int) -> tuple[list[dict], str]:
    """Up to ``count`` distinct size assignments from the check's runs: the largest (by product),
    the smallest, then the one most unlike those (H != W first)."""
    envs: list[dict] = []
    for r in (check_js or {}).get("results", []):
        s = r.get("sizes")
        if isinstance(s, dict) and s not in envs:
            envs.append(s)
    source = "check"
    if not envs and onnx_path:  # fallback: 'Example sizes: N=1, H=33, W=17' in the doc metadata
        with contextlib.suppress(Exception):
            import onnx

            m = onnx.load(onnx_path, load_external_data=False)
            doc = {p.key: p.value for p in m.metadata_props}.get("convgraph.doc", "")
            mt = re.search(r"Example sizes:\s*([^\n]*)", doc)
            if mt:
                for part in mt.group(1).split(";"):
                    env = {k: int(v) for k, v in re.findall(r"([A-Za-z_]\w*)\s*=\s*(\d+)", part)}
                    if env and env not in envs:
                        envs.append(env)
            source = "doc"
    if not envs:
        return [], "none"

    def vol(e):
        v = 1
        for x in e.values():
            v *= max(int(x), 1)
        return v

    ordered = sorted(envs, key=vol)
    chosen = [ordered[-1]]
    if len(ordered) > 1:
        chosen.append(ordered[0])
    rest = [e for e in ordered if e not in chosen]
    rest.sort(key=lambda e: (len(set(e.values())) == 1, -vol(e)))  # prefer unequal sizes, then big
    chosen += rest[: max(0, count - len(chosen))]
    return chosen[:count], source


def _model_name(path: str) -> str:
    rel = os.path.relpath(path, os.path.join(REPO, "models"))
    return rel.removesuffix(".cg").replace(os.sep, "__").replace("..__", "")


def model_task(path: str, args, env: dict, deadline: float) -> dict:
    name = _model_name(path)
    rel = os.path.relpath(path, REPO)
    res: dict = {"model": rel, "name": name, "status": "ok", "problems": [], "warnings": []}
    t0 = time.perf_counter()
    if time.time() > deadline or _STOPPING.is_set():
        res["status"] = "skipped"
        res["problems"].append("time budget used up before this model started")
        return res

    # 1. convgraph check (it compares with the numpy reference and torch)
    prov = args.check_provider
    c = _run([sys.executable, "-m", "convgraph", "check", rel, "--provider", prov, "--json"], args.timeout, env)
    chk = {"cmd": f"python3 -m convgraph check {rel} --provider {prov} --json", "rc": c["rc"],
           "seconds": c["seconds"], "timeout": c.get("timeout", False), "stderr_tail": _tail(c["stderr"])}
    check_js = None
    try:
        check_js = json.loads(c["stdout"])
    except Exception:
        chk["stdout_tail"] = _tail(c["stdout"])
    if check_js is not None:
        chk["ok"] = check_js.get("ok")
        chk["notes"] = check_js.get("notes")
        chk["torch"] = check_js.get("torch")
        chk["per_provider"] = summarize_check(check_js)
        chk["json"] = check_js
    res["check"] = chk
    if c["rc"] != 0:
        res["problems"].append(f"check exit status {c['rc']}" + (" (timeout)" if c.get("timeout") else ""))
    if check_js is None:
        res["problems"].append("check gave no JSON")
    elif not args.cpu_only:
        cu = chk["per_provider"].get("cuda")
        if cu is None:
            res["problems"].append("check ran no CUDA session: " + "; ".join(check_js.get("notes") or []))
        elif cu["ran"] != ["cuda"]:
            res["problems"].append(f"check's CUDA session ran on {cu['ran']}")

    # 2. export
    onnx_path = os.path.join(args.work, name + ".onnx")
    e = _run([sys.executable, "-m", "convgraph", "export", rel, "-o", onnx_path, "--seed", "0"], args.timeout, env)
    res["export"] = {"rc": e["rc"], "seconds": e["seconds"], "stdout_tail": _tail(e["stdout"], 400),
                     "stderr_tail": _tail(e["stderr"]), "onnx": onnx_path}
    if e["rc"] != 0 or not os.path.isfile(onnx_path):
        res["problems"].append(f"export exit status {e['rc']}")
        res["status"] = "fail"
        res["seconds"] = round(time.perf_counter() - t0, 2)
        return res

    # 3. CPU vs CUDA with profiling, in a worker process
    sizes, source = pick_sizes(check_js, onnx_path, args.max_sizes)
    res["sizes"], res["sizes_source"] = sizes, source
    if not sizes:
        res["problems"].append("no input sizes to run (check gave none, doc has no 'Example sizes')")
        res["status"] = "fail"
        res["seconds"] = round(time.perf_counter() - t0, 2)
        return res
    spec = {"onnx": onnx_path, "name": name, "sizes": sizes, "cpu_only": args.cpu_only, "work": args.work,
            "threads": args.threads, "keep_profiles": args.keep_profiles, "tf32_variant": not args.no_tf32_variant}
    spec_path = os.path.join(args.work, name + ".spec.json")
    out_path = os.path.join(args.work, name + ".ort.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    w = _run([sys.executable, os.path.abspath(__file__), "--_worker", spec_path, "--_result", out_path],
             args.timeout, env)
    ortr: dict = {"rc": w["rc"], "seconds": w["seconds"], "stderr_tail": _tail(w["stderr"], 800)}
    if w["rc"] == 0 and os.path.isfile(out_path):
        with open(out_path) as f:
            ortr.update(json.load(f))
    else:
        res["problems"].append("ORT worker " + ("timed out" if w.get("timeout") else f"exit status {w['rc']}"))
    res["ort"] = ortr

    if "per_size" in ortr:
        accel = CPU if args.cpu_only else CUDA
        provs = ortr.get("session_providers", {}).get("cuda", [])
        if accel not in provs:
            res["problems"].append(f"CUDA session providers are {provs}")
        for tag in ("cuda", "cuda_notf32"):
            errs = [o.get(f"{tag}_max_abs_err") for s in ortr["per_size"] for o in s.get("outputs", [])]
            rels = [o.get(f"{tag}_rel_err") for s in ortr["per_size"] for o in s.get("outputs", [])]
            errs, rels = [x for x in errs if x is not None], [x for x in rels if x is not None]
            ortr[f"{tag}_max_abs_err"] = max(errs) if errs else None
            ortr[f"{tag}_rel_err"] = max(rels) if rels else None
        for s in ortr["per_size"]:
            if "error" in s:
                res["problems"].append(f"ORT run at {s['sizes']}: {s['error'][:200]}")
            for o in s.get("outputs", []):
                if o.get("cuda_nonfinite"):
                    res["problems"].append(f"{o['name']} at {s['sizes']}: "
                                           f"{o['cuda_nonfinite']} non-finite values on CUDA")
        rel_err = ortr.get("cuda_rel_err")
        if rel_err is not None and rel_err > args.rel_tol:
            res["problems"].append(f"max|CUDA-CPU|/max|CPU| = {rel_err:.3g} > {args.rel_tol:g}")
        non = ortr.get("cuda_non_cuda_nodes") or []
        if non and not args.cpu_only:
            res["warnings"].append(f"{len(non)} node(s) not on CUDA: " +
                                   ", ".join(f"{n['name']}({n['op_type']})" for n in non[:8]) +
                                   (" ..." if len(non) > 8 else ""))
    if res["problems"]:
        res["status"] = "fail"
    elif res["warnings"]:
        res["status"] = "warn"
    res["seconds"] = round(time.perf_counter() - t0, 2)
    return res


def _clean(x):
    """JSON without NaN/Infinity (they become the strings 'inf', '-inf', 'nan')."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def _g(x, fmt="{:.3g}") -> str:
    return "-" if x is None else fmt.format(x)


def text_report(rep: dict) -> str:
    L = []
    h = rep["header"]
    L.append(f"convgraph CUDA check  ({'CPU-ONLY DRY RUN' if h['cpu_only'] else 'CUDA'})  {h['started']}")
    L.append(f"onnxruntime {h['ort_version']} at {h['ort_file']}")
    L.append(f"available providers: {h['available_providers']}")
    L.append(f"CUDA probe: {h.get('cuda_probe')}")
    if h.get("gpu"):
        L.append(f"GPU: {h['gpu']}")
    L.append(f"python {h['python']}  jobs={h['jobs']}  threads/session={h['threads']}  rel_tol={h['rel_tol']:g}")
    L.append("")
    hdr = f"{'model':34} {'status':7} {'chk':>3} {'cpu err/tol':>11} {'cuda err/tol':>12} {'cuda ran':>8} " \
          f"{'|cu-cpu|':>9} {'rel':>9} {'rel noTF32':>10} {'!cuda':>5} {'sec':>5}"
    L.append(hdr)
    L.append("-" * len(hdr))
    for m in rep["models"]:
        chk = m.get("check", {})
        pp = chk.get("per_provider") or {}
        o = m.get("ort") or {}
        non = o.get("cuda_non_cuda_nodes")
        L.append(f"{m['name'][:34]:34} {m['status']:7} {chk.get('rc', '-')!s:>3} "
                 f"{_g((pp.get('cpu') or {}).get('worst_ratio')):>11} "
                 f"{_g((pp.get('cuda') or {}).get('worst_ratio')):>12} "
                 f"{','.join(x or '?' for x in (pp.get('cuda') or {}).get('ran', [])) or '-':>8} "
                 f"{_g(o.get('cuda_max_abs_err')):>9} {_g(o.get('cuda_rel_err')):>9} "
                 f"{_g(o.get('cuda_notf32_rel_err')):>10} "
                 f"{'-' if non is None else len(non):>5} {_g(m.get('seconds'), '{:.1f}'):>5}")
    L.append("")
    L.append("chk = convgraph check exit status; err/tol = worst max(err_ref, err_torch)/tol over its runs;")
    L.append("|cu-cpu| and rel = max |CUDA - CPU| and that over max |CPU| at the sizes run here "
             "(TF32 as ORT's default);")
    L.append("!cuda = nodes (after ORT's graph optimisation) whose kernels did not run on CUDAExecutionProvider.")
    details = [m for m in rep["models"] if m["problems"] or m["warnings"]]
    if details:
        L.append("")
        L.append("problems / warnings:")
        for m in details:
            for p in m["problems"]:
                L.append(f"  {m['name']}: FAIL: {p}")
            for w in m["warnings"]:
                L.append(f"  {m['name']}: warn: {w}")
    L.append("")
    s = rep["summary"]
    L.append(f"summary: {s['counts']}  total {s['seconds']:.1f} s  exit {s['exit']}")
    return "\n".join(L) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.environ.get("OUT") or "cuda_report",
                    help="report folder (default $OUT or ./cuda_report)")
    ap.add_argument("--work", default=None, help="scratch folder for exports and profiles (default: a temp dir)")
    ap.add_argument("--models", default=os.path.join(REPO, "models"), help="folder searched recursively for .cg")
    ap.add_argument("--only", action="append", default=[], help="substring of the model path to keep (repeatable)")
    ap.add_argument("--cpu-only", action="store_true", help="use CPU in place of CUDA (plumbing test)")
    ap.add_argument("--check-provider", default="all", choices=("cpu", "cuda", "all"))
    ap.add_argument("--jobs", type=int, default=max(1, min(5, (os.cpu_count() or 2) // 3)))
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads per ORT session (0: cores/jobs)")
    ap.add_argument("--timeout", type=float, default=90, help="seconds for each subprocess of a model")
    ap.add_argument("--budget", type=float, default=150, help="no new model starts after this many seconds")
    ap.add_argument("--hard-limit", type=float, default=225,
                    help="after this many seconds kill what still runs and write the report")
    ap.add_argument("--max-sizes", type=int, default=3)
    ap.add_argument("--rel-tol", type=float, default=1e-3, help="fail when max|CUDA-CPU|/max|CPU| exceeds this")
    ap.add_argument("--no-tf32-variant", action="store_true", help="skip the extra CUDA session with use_tf32=0")
    ap.add_argument("--keep-profiles", action="store_true")
    ap.add_argument("--_worker", help=argparse.SUPPRESS)
    ap.add_argument("--_result", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._worker:
        with open(args._worker) as f:
            spec = json.load(f)
        res = worker(spec)
        with open(args._result, "w") as f:
            json.dump(res, f, indent=1, default=str)
        return 0

    t_start = time.perf_counter()
    deadline = time.time() + args.budget
    import onnxruntime as ort

    print(f"onnxruntime {ort.__version__} at {ort.__file__}", flush=True)
    preload_msgs = [] if args.cpu_only else preload_cuda(ort)
    avail = ort.get_available_providers()
    print(f"available providers: {avail}", flush=True)
    header = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "cpu_only": args.cpu_only,
              "ort_version": ort.__version__, "ort_file": ort.__file__, "available_providers": avail,
              "ort_device": getattr(ort, "get_device", lambda: None)(),
              "ort_cuda_version": getattr(ort, "cuda_version", None), "preload": preload_msgs,
              "python": sys.version.split()[0], "executable": sys.executable, "platform": platform.platform(),
              "repo": REPO, "PYTHONPATH": os.environ.get("PYTHONPATH"), "rel_tol": args.rel_tol}
    with contextlib.suppress(Exception):
        header["build_info"] = ort.get_build_info()
    if shutil.which("nvidia-smi"):
        with contextlib.suppress(Exception):
            header["gpu"] = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                                            "--format=csv,noheader"], check=False, capture_output=True,
                                           text=True, timeout=20).stdout.strip()
    os.makedirs(args.out, exist_ok=True)

    fatal = None
    if not args.cpu_only:
        if CUDA not in avail:
            fatal = (f"{CUDA} is not among onnxruntime's available providers {avail} "
                     "(is onnxruntime-gpu first on PYTHONPATH?)")
        else:
            header["cuda_probe"] = probe_cuda(ort)
            print(f"CUDA probe: {header['cuda_probe']}", flush=True)
            if not header["cuda_probe"]["ok"]:
                fatal = f"a Conv session on {CUDA} did not run on CUDA: {header['cuda_probe']}"
    else:
        header["cuda_probe"] = "skipped (--cpu-only)"
    if fatal:
        print("FATAL: " + fatal, file=sys.stderr, flush=True)
        rep = {"header": header, "fatal": fatal, "models": [],
               "summary": {"counts": {}, "seconds": time.perf_counter() - t_start, "exit": 3}}
        with open(os.path.join(args.out, "report.json"), "w") as f:
            json.dump(_clean(rep), f, indent=1, default=str)
        with open(os.path.join(args.out, "report.txt"), "w") as f:
            f.write(f"FATAL: {fatal}\npreload:\n" + "\n".join(preload_msgs) + "\n")
        return 3

    # subprocess environment: the CUDA libraries findable by name (convgraph check does not preload)
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(x for x in [*(os.environ.get("PYTHONPATH", "").split(os.pathsep)), REPO] if x)
    if not args.cpu_only:
        libs = nvidia_lib_dirs()
        header["ld_library_path_added"] = libs
        env["LD_LIBRARY_PATH"] = os.pathsep.join([*libs, *filter(None, [os.environ.get("LD_LIBRARY_PATH")])])
    if args.work is None:
        args.work = tempfile.mkdtemp(prefix="cuda_check_")
    os.makedirs(args.work, exist_ok=True)
    args.work = os.path.abspath(args.work)
    if args.threads <= 0:
        args.threads = max(1, (os.cpu_count() or 2) // max(1, args.jobs))
    header.update(jobs=args.jobs, threads=args.threads, work=args.work, timeout=args.timeout, budget=args.budget,
                  hard_limit=args.hard_limit)

    files = sorted(glob.glob(os.path.join(os.path.abspath(args.models), "**", "*.cg"), recursive=True))
    if args.only:
        files = [f for f in files if any(s in f for s in args.only)]
    print(f"{len(files)} models, jobs={args.jobs}, threads/session={args.threads}, work={args.work}", flush=True)
    results: dict[str, dict] = {}

    def write_report(final: bool) -> tuple[dict, int]:
        models = [results.get(f) or {"model": os.path.relpath(f, REPO), "name": _model_name(f),
                                     "status": "pending" if not final else "timeout",
                                     "problems": [] if not final else ["not finished before --hard-limit"],
                                     "warnings": []} for f in files]
        counts: dict[str, int] = {}
        for m in models:
            counts[m["status"]] = counts.get(m["status"], 0) + 1
        code = 1 if any(m["status"] not in ("ok", "warn") for m in models) or not models else 0
        rep = {"header": header, "models": models, "partial": not final,
               "summary": {"counts": counts, "seconds": round(time.perf_counter() - t_start, 2), "exit": code}}
        with open(os.path.join(args.out, "report.json.tmp"), "w") as f:
            json.dump(_clean(rep), f, indent=1, default=str)
        os.replace(os.path.join(args.out, "report.json.tmp"), os.path.join(args.out, "report.json"))
        with open(os.path.join(args.out, "report.txt"), "w") as f:
            f.write(text_report(rep))
        return rep, code

    pool = cf.ThreadPoolExecutor(max_workers=args.jobs)
    futs = {pool.submit(model_task, f, args, env, deadline): f for f in files}
    hard_left = args.hard_limit - (time.perf_counter() - t_start)
    try:
        for fut in cf.as_completed(futs, timeout=max(1.0, hard_left)):
            f = futs[fut]
            try:
                r = fut.result()
            except Exception as e:
                r = {"model": os.path.relpath(f, REPO), "name": _model_name(f), "status": "fail",
                     "problems": [f"driver error {type(e).__name__}: {e}"], "warnings": []}
            results[f] = r
            o = r.get("ort") or {}
            print(f"[{len(results):2}/{len(files)}] {r['status']:7} {r['name']:32} "
                  f"check rc={r.get('check', {}).get('rc')} "
                  f"rel={_g(o.get('cuda_rel_err'))} !cuda={len(o.get('cuda_non_cuda_nodes') or [])} "
                  f"{_g(r.get('seconds'), '{:.1f}')}s", flush=True)
            write_report(final=False)
    except cf.TimeoutError:
        print(f"HARD LIMIT {args.hard_limit:g}s reached: killing the running subprocesses", flush=True)
        _STOPPING.set()
        for fut in futs:
            fut.cancel()
        with _CHILDREN_LOCK:
            for p in list(_CHILDREN):
                _kill(p)
    pool.shutdown(wait=True, cancel_futures=True)
    rep, code = write_report(final=True)
    print(text_report(rep), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
