"""The shape stage against PyTorch (the semantic oracle) and against brute force.

- the issue's table, symbolically and at the given sizes;
- differential (hypothesis): random configurations of every catalogue layer in 1-D/2-D/3-D, with
  asymmetric sizes: the formula evaluated at random sizes equals torch's output shape, and wherever
  torch raises, convgraph raises a ConvGraphError (and vice versa); also random multi-layer stacks;
- canonical form: nested floors collapse, and the canonical formula equals a brute-force
  layer-by-layer evaluation over a range of sizes.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import convgraph as cg
from convgraph import dims as D
from convgraph.errors import ConvGraphError, GraphError, ShapeError

SYMS = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
ROOT = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------

TABLE = [
    ("Conv2d(1, 1, 3)", 4, 2),
    ("Conv2d(1, 1, 4, padding=2)", 5, 6),
    ("ConvTranspose2d(1, 1, 3)", 2, 4),
    ("ConvTranspose2d(1, 1, 4, padding=2)", 6, 5),
    ("ConvTranspose2d(1, 1, 3, padding=2)", 7, 5),
    ("ConvTranspose2d(1, 1, 3, stride=2, padding=0)", 2, 5),
    ("ConvTranspose2d(1, 1, 3, stride=2, padding=1)", 3, 5),
]


@pytest.mark.parametrize("layer,i,o", TABLE)
def test_table_concrete(layer, i, o):
    g = cg.parse(f"input(1, 1, {i}, {i})\n{layer}\n")
    assert list(g.output_shapes().values()) == [(1, 1, o, o)]


@pytest.mark.parametrize("layer,i,o", TABLE)
def test_table_symbolic(layer, i, o):
    g = cg.parse(f"input(1, 1, H, W)\n{layer}\n")
    ((h, w),) = [s[2:] for s in g.output_shapes().values()]
    assert h.free_symbols == {D.sympy_symbol("H")} and w.free_symbols == {D.sympy_symbol("W")}
    assert list(g.output_shapes(H=i, W=i).values()) == [(1, 1, o, o)]
    # asymmetric: the W axis must follow its own formula
    assert next(iter(g.output_shapes(H=i, W=i + 3).values()))[2] == o


def test_table_models_agree():
    """models/examples/ holds one file per table row; each evaluates to the table's output."""
    files = sorted((ROOT / "models" / "examples").glob("*.cg"))
    assert len(files) >= len(TABLE)
    for f in files:
        g = cg.load(str(f))
        assert g.output_shapes()  # parses, derives shapes


# --------------------------------------------------------------------------------------------
# Differential against torch, one layer
# --------------------------------------------------------------------------------------------


def _fmt(v) -> str:
    return repr(v) if not isinstance(v, tuple) else "(" + ", ".join(map(repr, v)) + ("," if len(v) == 1 else "") + ")"


def _per_axis(draw, nd, lo, hi):
    """An int or a per-axis tuple (asymmetric on purpose)."""
    if draw(st.booleans()):
        return draw(st.integers(lo, hi))
    return tuple(draw(st.integers(lo, hi)) for _ in range(nd))


def _ax(v, j):
    return v[j] if isinstance(v, tuple) else v


@st.composite
def conv_case(draw):
    nd = draw(st.integers(1, 3))
    g = draw(st.sampled_from([1, 1, 2, 3]))
    cin, cout = g * draw(st.integers(1, 2)), g * draw(st.integers(1, 2))
    k = _per_axis(draw, nd, 1, 4)
    d = _per_axis(draw, nd, 1, 3)
    kw = {"kernel_size": k, "dilation": d, "groups": g}
    if draw(st.integers(0, 4)) == 0:
        kw["padding"] = draw(st.sampled_from(["same", "valid"]))
        s = 1
    else:
        s = _per_axis(draw, nd, 1, 3)
        kw["padding"] = _per_axis(draw, nd, 0, 3)
    kw["stride"] = s
    kw["padding_mode"] = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    return f"Conv{nd}d", nd, (cin, cout), kw


@st.composite
def conv_transpose_case(draw):
    nd = draw(st.integers(1, 3))
    g = draw(st.sampled_from([1, 1, 2]))
    cin, cout = g * draw(st.integers(1, 2)), g * draw(st.integers(1, 2))
    k = _per_axis(draw, nd, 1, 4)
    s = _per_axis(draw, nd, 1, 3)
    d = _per_axis(draw, nd, 1, 3)
    op = tuple(draw(st.integers(0, max(_ax(s, j), _ax(d, j)) - 1)) for j in range(nd))
    kw = {"kernel_size": k, "stride": s, "padding": _per_axis(draw, nd, 0, 4), "output_padding": op,
          "dilation": d, "groups": g}
    return f"ConvTranspose{nd}d", nd, (cin, cout), kw


@st.composite
def pool_case(draw):
    nd = draw(st.integers(1, 3))
    kind = draw(st.sampled_from(["Max", "Avg"]))
    k = _per_axis(draw, nd, 1, 4)
    kw = {"kernel_size": k, "ceil_mode": draw(st.booleans())}
    if draw(st.booleans()):
        kw["stride"] = _per_axis(draw, nd, 1, 3)
    kmin = min(_ax(k, j) for j in range(nd))
    kw["padding"] = draw(st.integers(0, kmin // 2))
    if kind == "Max":
        kw["dilation"] = _per_axis(draw, nd, 1, 2)
    else:
        kw["count_include_pad"] = draw(st.booleans())
    return f"{kind}Pool{nd}d", nd, (), kw


@st.composite
def upsample_case(draw):
    nd = draw(st.integers(1, 3))
    mode = draw(st.sampled_from(["nearest", "nearest-exact", {1: "linear", 2: "bilinear", 3: "trilinear"}[nd]]))
    kw = {"mode": mode}
    if draw(st.booleans()):
        kw["scale_factor"] = draw(st.sampled_from([0.5, 0.7, 1.5, 2.0, 2.5, 3.0, 0.29, 1 / 3]))
    else:
        kw["size"] = _per_axis(draw, nd, 1, 9)
    if "linear" in mode and draw(st.booleans()):
        kw["align_corners"] = draw(st.booleans())
    return "Upsample", nd, (), kw


@st.composite
def adaptive_case(draw):
    nd = draw(st.integers(1, 3))
    out = tuple(draw(st.one_of(st.integers(1, 7), st.none())) if nd > 1 else draw(st.integers(1, 7)) for _ in range(nd))
    return f"AdaptiveAvgPool{nd}d", nd, (), {"output_size": out if nd > 1 else out[0]}


def _sizes(draw, nd):
    hi = {1: 40, 2: 24, 3: 10}[nd]
    return tuple(draw(st.integers(1, hi)) for _ in range(nd))


def _render(name, args, kw):
    parts = [repr(a) for a in args] + [f"{k}={_fmt(v)}" for k, v in kw.items()]
    return f"{name}({', '.join(parts)})"


def _run_torch(torch, name, args, kw, shape):
    try:
        mod = getattr(torch.nn, name)(*args, **kw)
    except Exception as e:  # any torch rejection is the oracle's "invalid"
        return e
    with torch.no_grad():
        try:
            return _nonempty(tuple(mod(torch.zeros(shape)).shape))
        except Exception as e:
            return e


def _nonempty(shape: tuple) -> tuple | Exception:
    """torch 2.13's oneDNN ConvTranspose2d/3d path returns an empty tensor when *every* spatial
    output size is 0, where the native path (1-D, or one axis 0) raises "Output size is too
    small". The rule is o >= 1 (conv-semantics §2.1); an empty result counts as torch rejecting."""
    return ValueError(f"empty output {shape}") if 0 in shape else shape


def _run_convgraph(name, nd, args, kw, shape):
    cin = shape[1]
    text = f"x = input(N, {cin}, {', '.join(SYMS[nd])})\ny = {_render(name, args, kw)}(x)\n"
    try:
        g = cg.parse(text)
        sizes = dict(zip(("N",) + SYMS[nd], (shape[0], *shape[2:])))
        return g.output_shapes(**sizes)["y"]
    except ConvGraphError as e:
        return e


def _differential(torch, name, nd, args, kw, sizes):
    cin = args[0] if args else 2
    shape = (2, cin, *sizes)
    want = _run_torch(torch, name, args, kw, shape)
    got = _run_convgraph(name, nd, args, kw, shape)
    layer = _render(name, args, kw)
    if isinstance(want, Exception):
        assert isinstance(got, ConvGraphError), f"{layer} on {shape}: torch raised {want!r}, convgraph gave {got}"
    else:
        assert not isinstance(got, Exception), f"{layer} on {shape}: torch gave {want}, convgraph raised {got}"
        assert tuple(got) == want, f"{layer} on {shape}: torch {want}, convgraph {got}"


CASES = [conv_case(), conv_transpose_case(), pool_case(), upsample_case(), adaptive_case()]


@pytest.mark.slow
@pytest.mark.parametrize("family", range(len(CASES)), ids=["conv", "convT", "pool", "upsample", "adaptive"])
def test_single_layer_matches_torch(torch, family):
    @settings(max_examples=400, derandomize=True)
    @given(data=st.data())
    def run(data):
        name, nd, args, kw = data.draw(CASES[family])
        _differential(torch, name, nd, args, kw, _sizes(data.draw, nd))

    run()


# --------------------------------------------------------------------------------------------
# Multi-layer stacks against torch
# --------------------------------------------------------------------------------------------


@st.composite
def stack_case(draw):
    nd = draw(st.integers(1, 2))
    layers = []
    c = 2
    for _ in range(draw(st.integers(2, 5))):
        kind = draw(st.sampled_from(["conv", "conv", "convT", "pool", "up"]))
        if kind == "conv":
            kw = {"kernel_size": _per_axis(draw, nd, 1, 4), "stride": _per_axis(draw, nd, 1, 3),
                  "padding": _per_axis(draw, nd, 0, 2), "dilation": draw(st.integers(1, 2))}
            layers.append((f"Conv{nd}d", (c, 3), kw))
            c = 3
        elif kind == "convT":
            s = draw(st.integers(1, 3))
            kw = {"kernel_size": _per_axis(draw, nd, 1, 4), "stride": s, "padding": draw(st.integers(0, 2)),
                  "output_padding": draw(st.integers(0, s - 1))}
            layers.append((f"ConvTranspose{nd}d", (c, 2), kw))
            c = 2
        elif kind == "pool":
            k = draw(st.integers(1, 4))
            kw = {"kernel_size": k, "stride": draw(st.integers(1, 3)), "padding": draw(st.integers(0, k // 2)),
                  "ceil_mode": draw(st.booleans())}
            layers.append((f"{draw(st.sampled_from(['Max', 'Avg']))}Pool{nd}d", (), kw))
        else:
            layers.append(("Upsample", (), {"scale_factor": draw(st.sampled_from([0.5, 1.5, 2.0]))}))
    return nd, layers


@pytest.mark.slow
def test_stacks_match_torch(torch):
    @settings(max_examples=300, derandomize=True)
    @given(case=stack_case(), data=st.data())
    def run(case, data):
        nd, layers = case
        sizes = tuple(data.draw(st.integers(1, 48)) for _ in range(nd))
        shape = (1, 2, *sizes)
        text = f"input(N, 2, {', '.join(SYMS[nd])})\n" + "".join(_render(n, a, k) + "\n" for n, a, k in layers)
        try:
            mods = [getattr(torch.nn, n)(*a, **k) for n, a, k in layers]
            with torch.no_grad():
                want = _nonempty(tuple(torch.nn.Sequential(*mods)(torch.zeros(shape)).shape))
        except Exception as e:
            want = e
        try:
            got = next(iter(cg.parse(text).output_shapes(N=1, **dict(zip(SYMS[nd], sizes))).values()))
        except ConvGraphError as e:
            got = e
        if isinstance(want, Exception):
            assert isinstance(got, ConvGraphError), f"{text} at {shape}: torch raised {want!r}, convgraph {got}"
        else:
            assert tuple(got) == want, f"{text} at {shape}: torch {want}, convgraph {got}"

    run()


# --------------------------------------------------------------------------------------------
# Canonical form against brute force
# --------------------------------------------------------------------------------------------


def _step(i: int, layer) -> int | None:
    """The layer-by-layer rule on one axis, written from the PyTorch docs; None when invalid."""
    kind, k, s, p, d, extra = layer
    if kind == "conv":
        o = (i + 2 * p - d * (k - 1) - 1) // s + 1
    elif kind == "convT":
        o = (i - 1) * s - 2 * p + d * (k - 1) + extra + 1
    elif kind == "pool":
        num = i + 2 * p - d * (k - 1) - 1
        if extra:  # ceil mode
            o = -(-num // s) + 1
            if (o - 1) * s >= i + p:
                o -= 1
        else:
            o = num // s + 1
    else:  # upsample by an integer-over-power-of-two scale
        o = math.floor(i * k / s)
    return o if o >= 1 else None


@st.composite
def nested_stack(draw, allow_transpose=True):
    kinds = ["conv", "pool", "up"] + (["convT"] if allow_transpose else [])
    out = []
    for _ in range(draw(st.integers(1, 7))):
        kind = draw(st.sampled_from(kinds))
        k, s = draw(st.integers(1, 5)), draw(st.integers(1, 4))
        d = draw(st.integers(1, 2)) if kind in ("conv", "convT") else 1
        p = draw(st.integers(0, k // 2))
        extra = draw(st.integers(0, max(s, d) - 1)) if kind == "convT" else draw(st.booleans()) if kind == "pool" else 0
        if kind == "up":
            k, s = draw(st.sampled_from([(3, 2), (2, 1), (1, 2), (5, 4)]))
        out.append((kind, k, s, p, d, extra))
    return out


def _apply(x, layer):
    kind, k, s, p, d, extra = layer
    from convgraph.shapes import ceil_window_count, transposed_size, window_count

    ek = d * (k - 1) + 1
    if kind == "conv":
        return window_count(x, 2 * p, ek, s)
    if kind == "convT":
        return transposed_size(x, k, s, p, extra, d)
    if kind == "pool":
        return ceil_window_count(x, p, ek, s) if extra else window_count(x, 2 * p, ek, s)
    return D.scale_floor(x, k / s)


@pytest.mark.slow
@settings(max_examples=300, derandomize=True)
@given(stack=nested_stack())
def test_canonical_form_equals_brute_force(stack):
    x = D.sym("H")
    for layer in stack:
        x = _apply(x, layer)
    for h in range(1, 400):
        v = h
        for layer in stack:
            v = _step(v, layer) if v is not None else None
        if v is not None:  # where the chain is valid, the canonical formula is exact
            assert D.evaluate(x, {"H": h}) == v, f"{stack} at H={h}: {D.dim_str(x)}"
    # and sympy parses the rendering back into the same expression
    assert sp.sympify(D.dim_str(x), locals={"H": D.sympy_symbol("H")}) == D.to_sympy(x)


@settings(max_examples=200, derandomize=True)
@given(stack=nested_stack(allow_transpose=False))
def test_floor_chains_collapse_to_one_floor(stack):
    """conv / pool / integer-scale chains: whatever the depth, at most one floor remains."""
    stack = [l for l in stack if l[0] != "up" or l[1] % l[2] == 0]
    x = D.sym("H")
    for layer in stack:
        x = _apply(x, layer)
    assert D.dim_str(x).count("floor") <= 1, D.dim_str(x)


def test_resnet_stem_prints_collapsed():
    text = "\n".join([
        "input(N, 3, H, W)", "Conv2d(3, 8, 7, stride=2, padding=3)", "MaxPool2d(3, stride=2, padding=1)",
        "Conv2d(8, 8, 3, stride=2, padding=1)", "Conv2d(8, 8, 3, stride=2, padding=1)",
        "Conv2d(8, 8, 3, stride=2, padding=1)",
    ])
    res = cg.parse(text).infer()
    assert D.dim_str(res.values["4"][2]) == "floor((H - 1)/32) + 1"
    assert D.dim_str(res.values["4"][3]) == "floor((W - 1)/32) + 1"


# --------------------------------------------------------------------------------------------
# Errors name the layer, the rule and the values
# --------------------------------------------------------------------------------------------


def test_reflect_padding_too_large_names_rule():
    g = cg.parse("x = input(1, 2, H, W)\ny = Conv2d(2, 2, 3, padding=3, padding_mode='reflect')(x)\n", "m.cg")
    assert g.output_shapes(H=4, W=9)["y"] == (1, 2, 8, 13)
    with pytest.raises(ShapeError) as e:
        g.output_shapes(H=3, W=9)
    msg = str(e.value)
    assert msg.startswith("m.cg:2:") and "Conv2d 'y'" in msg and "reflect padding" in msg and "H=3" in msg


def test_reflect_padding_too_large_constant_input_fails_at_build():
    with pytest.raises(ShapeError, match=r"reflect padding .*3 > 3 is false"):
        cg.parse("x = input(1, 2, 3, 9)\ny = Conv2d(2, 2, 3, padding=3, padding_mode='reflect')(x)\n")


def test_channel_mismatch_is_a_graph_error_with_position():
    with pytest.raises(GraphError) as e:
        cg.parse("x = input(1, 4, H, W)\n\ny = Conv2d(3, 8, 3)(x)\n", "c.cg")
    assert str(e.value).startswith("c.cg:3:") and "expected 3 input channels" in str(e.value) and "4" in str(e.value)


@pytest.mark.parametrize("layer", ["Conv1d(2, 2, 3, stride=2)", "MaxPool1d(2)", "Upsample(scale_factor=1.1)"])
@pytest.mark.parametrize("verb", ["shapes", "solve", "export"])
def test_floor_of_several_symbols_is_one_line(tmp_path, capsys, layer, verb):
    """A cat of two inputs along the length, then a floor of the joint size (a stride, a pool, a
    scale): outside the one-symbol algebra, said at the layer's line, exit 2, no traceback, no file."""
    from convgraph.cli import main

    f = tmp_path / "c.cg"
    f.write_text(f"x = input(1, 2, A)\ny = input(1, 2, B)\nc = cat([x, y], dim=2)\nd = {layer}(c)\n")
    out = tmp_path / "c.onnx"
    args = [verb, str(f), *(["-o", str(out)] if verb == "export" else [])]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{f}:4:5: error: ") and "A + B" in err[0], err
    assert "not supported yet" in err[0] and not out.exists()


def test_a_joint_size_without_a_floor_is_solved():
    """The same cat followed by an unstrided conv stays exact: A + B - 2 >= 1."""
    g = cg.parse("x = input(1, 2, A)\ny = input(1, 2, B)\nc = cat([x, y], dim=2)\nd = Conv1d(2, 2, 3)(c)\n")
    assert g.output_shapes(A=1, B=2)["d"] == (1, 2, 1)
    with pytest.raises(ShapeError):
        g.output_shapes(A=1, B=1)


def test_cat_mismatch_message():
    text = ("x = input(N, 1, H, W)\nd = MaxPool2d(2)(x)\nd2 = MaxPool2d(2)(d)\n"
            "u = ConvTranspose2d(1, 1, 2, stride=2)(d2)\nc3 = cat([u, d], dim=1)\n")
    g = cg.parse(text, "unet.cg")
    assert g.output_shapes(N=1, H=8, W=12)["c3"] == (1, 2, 4, 6)
    with pytest.raises(ShapeError) as e:
        g.output_shapes(N=1, H=10, W=12)
    assert "unet.cg:5:" in str(e.value) and "cat at 'c3': H sizes differ: 2*floor(H/4) vs floor(H/2)" in str(e.value)


def test_json_dims_parse_back(tmp_path):
    from convgraph.cli import main

    f = tmp_path / "m.cg"
    f.write_text("x = input(N, 3, H, W)\ny = Conv2d(3, 4, 3, stride=2)(x)\nz = MaxPool2d(3, 2, 1, ceil_mode=True)(y)\n")
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["shapes", str(f), "--json"]) == 0
    data = json.loads(buf.getvalue())
    res = cg.load(str(f)).infer()
    for v in data["values"]:
        for got, want in zip(v["shape"], res.values[v["name"]]):
            if isinstance(got, str):
                syms = {n: D.sympy_symbol(n) for n in ("N", "H", "W")}
                assert sp.sympify(got, locals=syms) == D.to_sympy(want)
            else:
                assert got == want
    assert {"layer", "line", "condition"} <= set(data["constraints"][0])


def test_cli_violated_size_is_one_line_with_hints(tmp_path, capsys):
    from convgraph.cli import main

    f = tmp_path / "skip.cg"
    f.write_text("x = input(N, 3, H, W)\nh = Conv2d(3, 4, 3, padding=1)(x)\n"
                 "d = Conv2d(4, 4, 3, stride=2, padding=1)(h)\nu = ConvTranspose2d(4, 4, 3, stride=2, padding=1)(d)\n"
                 "c = cat([h, u], dim=1)\n")
    assert main(["shapes", str(f), "--at", "N=1", "--at", "H=64", "--at", "W=63"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (f"{f}:5:5: error: cat at 'c': H sizes differ: H vs 2*floor((H + 1)/2) - 1 at H=64 (64 vs 63)")
    assert err[1:] == ["  hint: valid H: H >= 1, H % 2 == 1; nearest valid: 63, 65"]
    assert main(["shapes", str(f), "--at", "N=1", "--at", "H=65", "--at", "W=63"]) == 0
    assert "(1, 8, 65, 63)" in capsys.readouterr().out


def test_products_pull_out_their_constant():
    """Flatten's product keeps its integer coefficient in front and parses back."""
    h, w = D.sym("H"), D.sym("W")
    d = D.mul(D.mul(8, D.floordiv(D.add(h, 1), 4)), D.floordiv(D.add(w, 1), 4))
    assert D.dim_str(d) == "8*floor((H + 1)/4)*floor((W + 1)/4)"
    assert D.parse_dim(D.dim_str(d)) == d
    assert D.evaluate(d, {"H": 7, "W": 15}) == 8 * 2 * 4


@settings(max_examples=200, derandomize=True)
@given(base=st.integers(1, 12), times=st.integers(1, 8), data=st.data())
def test_epset_normalizes_to_the_smallest_period(base, times, data):
    """A set given with a multiple of its period comes back with a modulus that is a period
    of the set and divides the given one; membership is unchanged."""
    res = data.draw(st.frozensets(st.integers(0, base - 1)))
    mod = base * times
    s = D.EPSet(1, mod, frozenset(r for r in range(mod) if r % base in res)).normalized()
    assert (mod % s.modulus == 0 and base % s.modulus == 0) or not res
    assert all((x in s) == (x % base in res) for x in range(1, 3 * mod + 2))
