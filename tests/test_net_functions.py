"""The DSL's functions (issue 9) against PyTorch: pad/interpolate to another value's size, F.pad,
F.interpolate, broadcasting + - *, scalar arithmetic, slicing, chunk/split and the functional
spellings. Each drawn case (asymmetric sizes, 1-D/2-D/3-D) is DSL text and the torch expression a
PyTorch user writes: convgraph raises (a positioned ConvGraphError) exactly where torch raises,
else the shapes are torch's, and onnxruntime's values on the export equal torch's and the numpy
reference's. Deliberate differences: an empty result is refused; ``pad(v, like=w)`` needs w >= v
(the U-Net idiom would crop otherwise); a slice on a size symbol must not need clamping.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convgraph as cg
from convgraph.cli import main
from convgraph.errors import ConvGraphError
from convgraph.export import to_onnx
from convgraph.export.weights import init_params
from convgraph.validate import accumulation, reference, tolerance

SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))


def _shape(draw, nd: int, c: int | None = None, lo: int = 1, hi: int = 8) -> tuple[int, ...]:
    n = draw(st.sampled_from([1, 2]))
    return (n, c if c is not None else draw(st.integers(1, 3)), *(draw(st.integers(lo, hi)) for _ in range(nd)))


def _inputs(*shapes: tuple[int, ...]) -> str:
    return "".join(f"{name} = input({', '.join(map(str, s))})\n" for name, s in zip("vw", shapes))


@st.composite
def like_cases(draw):
    nd = draw(st.integers(1, 3))
    c = draw(st.integers(1, 3))
    v, w = _shape(draw, nd, c, 1, 6), _shape(draw, nd, draw(st.integers(1, 3)), 1, 9)
    w = (v[0], *w[1:])
    if draw(st.booleans()):
        mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
        text = _inputs(v, w) + f"y = pad(v, like=w, mode={mode!r})\n"

        def torch_fn(F, tv, tw):
            flat = []
            for a, b in reversed(list(zip(tv.shape[2:], tw.shape[2:]))):
                flat += [(b - a) // 2, (b - a) - (b - a) // 2]
            if any(p < 0 for p in flat):
                raise ValueError("convgraph: pad needs like >= v")  # deliberately stricter
            return F.pad(tv, flat, mode=mode)
        return text, (v, w), torch_fn
    mode = draw(st.sampled_from(["nearest", "nearest-exact", ["linear", "bilinear", "trilinear"][nd - 1]]))
    ac = draw(st.sampled_from([None, True, False])) if "linear" in mode else None
    text = _inputs(v, w) + f"y = interpolate(v, like=w, mode={mode!r}, align_corners={ac!r})\n"
    return text, (v, w), lambda F, tv, tw: F.interpolate(tv, size=tw.shape[2:], mode=mode, align_corners=ac)


@st.composite
def binary_cases(draw):
    nd = draw(st.integers(1, 3))
    a = list(_shape(draw, nd, None, 1, 4))
    b = [x if draw(st.integers(0, 3)) else draw(st.sampled_from([1, 1, x + 1])) for x in a]
    if draw(st.booleans()):
        a[draw(st.integers(0, len(a) - 1))] = 1
    op = draw(st.sampled_from(["+", "-", "*"]))
    text = _inputs(tuple(a), tuple(b)) + f"y = v {op} w\n"
    fns = {"+": lambda F, x, z: x + z, "-": lambda F, x, z: x - z, "*": lambda F, x, z: x * z}
    return text, (tuple(a), tuple(b)), fns[op]


@st.composite
def scalar_cases(draw):
    v = _shape(draw, draw(st.integers(1, 3)))
    expr, fn = draw(st.sampled_from([("v * 0.5", lambda F, x: x * 0.5), ("2 * v", lambda F, x: 2 * x),
                                     ("v + 1.0", lambda F, x: x + 1.0), ("1.5 - v", lambda F, x: 1.5 - x),
                                     ("v - -2", lambda F, x: x - -2), ("v / 4.0", lambda F, x: x / 4.0)]))
    return _inputs(v) + f"y = {expr}\n", (v,), fn


@st.composite
def slice_cases(draw):
    v = _shape(draw, draw(st.integers(1, 3)), None, 1, 7)
    bound = st.one_of(st.none(), st.integers(-8, 8))
    index = [(draw(bound), draw(bound)) for _ in range(draw(st.integers(1, len(v))))]
    text = ", ".join(f"{'' if a is None else a}:{'' if z is None else z}" for a, z in index)
    return _inputs(v) + f"y = v[{text}]\n", (v,), lambda F, x: x[tuple(slice(a, z) for a, z in index)]


@st.composite
def part_cases(draw):
    v = _shape(draw, draw(st.integers(1, 2)), draw(st.integers(1, 7)), 1, 5)
    dim = draw(st.integers(-len(v), len(v) - 1))
    count = draw(st.integers(2, 4))
    names = ", ".join(f"p{k}" for k in range(count))
    pick = draw(st.integers(0, count - 1))
    if draw(st.booleans()):
        chunks = draw(st.integers(1, 5))
        text = _inputs(v) + f"{names} = chunk(v, {chunks}, dim={dim})\noutput(p{pick})\n"
        fn = lambda F, x: _unpack(x.chunk(chunks, dim), count)[pick]  # noqa: E731
    else:
        n = v[dim]
        sizes = draw(st.one_of(st.integers(1, 4), st.lists(st.integers(1, 4), min_size=count, max_size=count)
                               .map(lambda s: s if draw(st.booleans()) else [*s[:-1], max(1, n - sum(s[:-1]))])))
        text = _inputs(v) + f"{names} = split(v, {sizes!r}, dim={dim})\noutput(p{pick})\n"
        fn = lambda F, x: _unpack(x.split(sizes, dim), count)[pick]  # noqa: E731
    return text, (v,), fn


def _unpack(parts, count: int):
    if len(parts) != count:
        raise ValueError(f"not enough values to unpack (expected {count}, got {len(parts)})")
    return parts


FUNCTIONAL = [
    ("F.relu(v)", lambda F, x: F.relu(x)), ("torch.sigmoid(v)", lambda F, x: x.sigmoid()),
    ("F.relu6(v)", lambda F, x: F.relu6(x)), ("F.hardswish(v)", lambda F, x: F.hardswish(x)),
    ("F.leaky_relu(v, 0.2)", lambda F, x: F.leaky_relu(x, 0.2)), ("F.elu(v, alpha=0.5)", lambda F, x: F.elu(x, 0.5)),
    ("torch.flatten(v, 1)", lambda F, x: x.flatten(1)), ("flatten(v)", lambda F, x: x.flatten()),
    ("F.max_pool{nd}d(v, 2)", lambda F, x: getattr(F, f"max_pool{x.dim() - 2}d")(x, 2)),
    ("F.avg_pool{nd}d(v, 2, 1, 1)", lambda F, x: getattr(F, f"avg_pool{x.dim() - 2}d")(x, 2, 1, 1)),
    ("F.adaptive_avg_pool{nd}d(v, 1)", lambda F, x: getattr(F, f"adaptive_avg_pool{x.dim() - 2}d")(x, 1)),
    ("F.adaptive_max_pool{nd}d(v, 2)", lambda F, x: getattr(F, f"adaptive_max_pool{x.dim() - 2}d")(x, 2)),
    ("softmax(v, dim=1)", lambda F, x: F.softmax(x, dim=1)),
    ("F.log_softmax(v, -1)", lambda F, x: F.log_softmax(x, -1)),
    ("torch.softmax(v, 2)", lambda F, x: torch_softmax(x, 2)),
    ("F.dropout(v, 0.3, training=False)", lambda F, x: F.dropout(x, 0.3, training=False)),
    ("F.pad(v, (1, 2))", lambda F, x: F.pad(x, (1, 2))),
    ("F.pad(v, (2, -1, 1, 0), mode='replicate')", lambda F, x: F.pad(x, (2, -1, 1, 0), mode="replicate")),
    ("F.pad(v, (1, 1), 'reflect')", lambda F, x: F.pad(x, (1, 1), "reflect")),
    ("F.pad(v, (1, 0, 0, 2, 1, 1), value=0.5)", lambda F, x: F.pad(x, (1, 0, 0, 2, 1, 1), value=0.5)),
    ("F.interpolate(v, scale_factor=2)", lambda F, x: F.interpolate(x, scale_factor=2)),
    ("F.interpolate(v, size=5, mode='nearest-exact')", lambda F, x: F.interpolate(x, size=5, mode="nearest-exact")),
    ("F.interpolate(v, scale_factor=0.5, mode='linear')",
     lambda F, x: F.interpolate(x, scale_factor=0.5, mode="linear")),
    ("F.pixel_shuffle(v, 2)", lambda F, x: F.pixel_shuffle(x, 2)),
    ("mean(v, dim=(2,), keepdim=True)", lambda F, x: x.mean((2,), keepdim=True)),
    ("torch.mean(v, -1)", lambda F, x: x.mean(-1)), ("mean(v, (1, -1))", lambda F, x: x.mean((1, -1))),
    ("unsqueeze(v, 1)", lambda F, x: x.unsqueeze(1)), ("torch.unsqueeze(v, -1)", lambda F, x: x.unsqueeze(-1)),
    ("squeeze(v, 1)", lambda F, x: x.squeeze(1)), ("squeeze(v)", lambda F, x: x.squeeze()),
    ("squeeze(v, (0, 2))", lambda F, x: x.squeeze((0, 2))),
    ("reshape(v, (-1,))", lambda F, x: x.reshape(-1)), ("torch.reshape(v, (2, -1))", lambda F, x: x.reshape(2, -1)),
    ("reshape(v, (4, 1, -1, 2))", lambda F, x: x.reshape(4, 1, -1, 2)),
]


def torch_softmax(x, dim):
    import torch

    return torch.softmax(x, dim)


@st.composite
def functional_cases(draw):
    nd = draw(st.integers(1, 3))
    v = _shape(draw, nd, draw(st.sampled_from([1, 4, 8])), 1, 7)
    call, fn = draw(st.sampled_from(FUNCTIONAL))
    return _inputs(v) + f"y = {call.replace('{nd}', str(nd))}\n", (v,), fn


CASES = st.one_of(like_cases(), binary_cases(), scalar_cases(), slice_cases(), part_cases(), functional_cases())


def torch_outcome(torch, fn, shapes):
    import torch.nn.functional as F

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn(F, *[torch.randn(s) for s in shapes])
    except (RuntimeError, ValueError, IndexError, NotImplementedError, TypeError):
        return None
    return None if 0 in out.shape else tuple(out.shape)  # an empty result: refused on purpose


def convgraph_outcome(text: str):
    try:
        g = cg.parse(text)
        (shape,) = g.output_shapes().values()
        return tuple(shape)
    except ConvGraphError as e:
        assert "\n" not in e.message and e.loc.line >= 1
        return None


@SETTINGS
@given(case=CASES)
def test_shapes_and_errors_agree_with_torch(torch, case):
    text, shapes, fn = case
    assert convgraph_outcome(text) == torch_outcome(torch, fn, shapes), text


@SETTINGS
@given(case=CASES)
def test_values_agree_with_torch_and_reference(torch, case):
    import onnxruntime as ort

    text, shapes, fn = case
    if convgraph_outcome(text) is None:
        return
    g = cg.parse(text)
    params = init_params(g, seed=1)
    rng = np.random.default_rng(3)
    xs = {name: rng.standard_normal(s).astype(np.float32) for name, s in zip("vw", shapes)}
    model = to_onnx(g, params=params)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {i.name: xs[i.name] for i in sess.get_inputs()}
    (got,) = sess.run(None, feeds)
    out = g.outputs[0]
    used = {n.name: xs[n.name] for n in g.inputs}
    ref = reference.run(g, used, params)[out]
    import torch.nn.functional as F

    tv = fn(F, *[torch.from_numpy(xs[name]) for name in "vw"[:len(shapes)]]).numpy()
    tol = tolerance(accumulation(g, g.shapes())[out], ref)
    assert got.shape == ref.shape == tv.shape, text
    assert np.abs(got - tv).max(initial=0) <= tol, text
    assert np.abs(ref - tv).max(initial=0) <= tol, text


def test_pad_like_is_an_exact_formula_of_both_operands():
    g = cg.parse("x = input(1, 2, H)\nw = input(1, 2, L)\nd = MaxPool1d(2)(x)\np = pad(d, like=w, mode='reflect')\n")
    assert g.output_shapes()["p"][2] == cg.parse("w = input(1, 2, L)\n").output_shapes()["w"][2]
    assert g.output_shapes(H=9, L=10)["p"] == (1, 2, 10)
    with pytest.raises(cg.ShapeError, match="at least as large"):
        g.output_shapes(H=9, L=3)
    with pytest.raises(cg.ShapeError, match="reflect padding"):
        g.output_shapes(H=4, L=7)  # d has 2, the end pad would be 3


# --------------------------------------------------------------------------------------------
# Bad input: one positioned line, exit status 2
# --------------------------------------------------------------------------------------------

X = "x = input(1, 4, H, W)\nz = input(1, 4, 9)\n"
BAD = [
    (X + "y = pad(x, like=z)\n", "3:5",
     "pad at 'y': needs two values of the same rank with spatial dims, got 4-D and 3-D"),
    ("x = input(1, 4, 9)\nz = input(1, 4, 5)\ny = pad(x, like=z)\n", "3:5",
     "pad at 'y': dim 2: the target must be at least as large as the padded value, 9 <= 5 is false"),
    (X + "y = interpolate(x, like=z, mode='bilinear')\n", "3:5",
     "interpolate at 'y': needs two values of the same rank with spatial dims, got 4-D and 3-D"),
    (X + "y = interpolate(x, like=x, mode='bicubic')\n", "3:5",
     "interpolate: mode 'bicubic' is not supported; convgraph supports 'nearest', 'nearest-exact', 'linear', "
     "'bilinear', 'trilinear'"),
    (X + "y = pad(x, like=x, mod='reflect')\n", "3:5", "pad: unexpected keyword argument 'mod' (did you mean 'mode'?)"),
    (X + "y = x[:, :, ::2]\n", "3:15", "slicing with a step is not supported"),
    (X + "y = x[:, :, :H]\n", "3:14", "slice bounds are int literals or constants (size symbols are not allowed here)"),
    (X + "y = x[:, 5:]\n", "3:5", "slice at 'y': the slice [5:] of dim 1 (size 4) is empty"),
    (X + "w = input(1, 3, 9)\ny = z * w\n", "4:5",
     "'*' at 'y': C sizes 4 and 3 differ and neither is 1 (broadcasting)"),
    (X + "y = x * 'a'\n", "3:9", "an operand is a value or a number, got 'a'"),
    (X + "y = 2 * 0.5\n", "3:9", "arithmetic works on ints only (+ - * // %), got 0.5"),
    (X + "y = F.relu(x, True, 3)\n", "3:5", "F.relu: takes at most 1 argument(s) after the value, got 2"),
    (X + "y = F.max_pool2d(x, 'a')\n", "3:5", "MaxPool2d: kernel_size must be an int or a tuple of 2 ints, got 'a'"),
    (X + "y = F.softmax(x, dim=1.0)\n", "3:5", "Softmax: dim must be an int, got 1.0"),
    (X + "y = F.relu()\n", "3:5", "F.relu takes a value first, e.g. F.relu(x, ...)"),
    (X + "y = F.conv2d(x)\n", "3:5", "attribute access is not allowed: 'F.conv2d' (only the nn. and torch.nn. layer "
     "prefixes, F./torch.nn.functional. functions and torch.cat, torch.flatten, ...)"),
    (X + "a, b = chunk(x, 4, dim=1)\n", "3:8", "slice at 'a': chunk of a dim of size 4 gives 4 outputs here, but 2 "
     "names unpack it"),
    (X + "a, b = chunk(x, 2, dim=2)\n", "3:8",
     "slice at 'a': chunk along dim 2 of size H: convgraph splits dims of a known size only"),
    (X + "a, b = split(x, [1, 2], dim=1)\n", "3:8", "slice at 'a': split: split sizes [1, 2] sum to 3, but the dim "
     "has size 4"),
    (X + "y = chunk(x, 2)\n", "3:5", "chunk returns several values: unpack them, e.g. a, b = chunk(v, ..., dim=1)"),
    (X + "a, a = chunk(x, 2, dim=1)\n", "3:1", "the unpacked names must differ"),
    (X + "y = squeeze(x)\n", "3:5", "squeeze at 'y': dim 2 has size H: name the dims to squeeze"),
    (X + "y = mean(x, dim=1.5)\n", "3:5", "mean: dim must be an int or a tuple of ints, got 1.5"),
    (X + "y = unsqueeze(x, 7)\n", "3:5", "unsqueeze at 'y': dim 7 out of range for a 4-D value"),
    (X + "y = reshape(x, (1, 3, H, W))\n", "3:5", "reshape at 'y': the sizes do not multiply up to the value's size"),
    (X + "y = reshape(x, (1, -1, 8 * H))\n", "3:5",
     "reshape at 'y': the -1 would be a fraction (1/2) of the value's remaining dims"),
    (X + "y = reshape(x, (1, 4, W))\n", "3:5", "reshape at 'y': the sizes do not multiply up to the value's size"),
    (X + "y = reshape(x, (-1, -1))\n", "3:16", "only one dimension can be -1"),
    (X + "y = reshape(x, (1, H + 1))\n", "3:20",
     "a reshape entry is a positive int, -1, a size symbol or a size symbol times an int"),
    (X + "y = F.interpolate(x, size=z.shape[2:])\n", "3:27",
     "F.interpolate: a size read from another value is written interpolate(v, like=w, mode=...)"),
    (X + "y = F.pad(x, (1, 2, 3))\n", "3:5", "F.pad: pad must be a tuple of an even number (2 to 10) of ints, "
     "got (1, 2, 3)"),
]


@pytest.mark.parametrize("text, pos, message", BAD, ids=[m[:40] for _, _, m in BAD])
def test_bad_input_is_one_positioned_line(tmp_path, capsys, text, pos, message):
    path = tmp_path / "m.cg"
    path.write_text(text)
    assert main(["shapes", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == f"{path}:{pos}: error: {message}"


@pytest.mark.parametrize("sizes", [{"N": 1, "L": 5}, {"N": 3, "L": 1}, {"N": 2, "L": 8}])
def test_reshape_with_carried_dims_matches_torch(torch, sizes):
    from torch_equiv import run_torch

    text = ("x = input(N, 32, L)\nr = reshape(x, (N, 2, 16, L))\nq = torch.reshape(r, (N, -1))\n"
            "s = reshape(x, (-1, 16, L))\nt = reshape(x, (N, 4, 8 * L))\noutput(r, q, s, t)\n")
    g = cg.parse(text)
    x = np.random.default_rng(0).standard_normal((sizes["N"], 32, sizes["L"]))
    want = run_torch(g, {"x": x}, {})
    got = reference.run(g, {"x": x}, {})
    for name, shape in g.output_shapes(**sizes).items():
        assert want[name].shape == shape == got[name].shape
        np.testing.assert_array_equal(want[name], got[name])


def test_builder_builds_the_same_ir_as_the_dsl():
    text = ("x = input(N, 4, H, W)\ns = input(N, 8, H2, W2)\nh = Conv2d(4, 8, 3)(x)\n"
            "p = pad(h, like=s, mode='reflect')\ni = interpolate(h, like=s, mode='bilinear')\nm = p * i\n"
            "k = 0.5 * s\nd = m - k\na, b = chunk(d, 2, dim=1)\nc = a[:, :, :-2]\ny = 1.0 - c\noutput(y, b)\n")
    x = cg.input("N", 4, "H", "W")
    s = cg.input("N", 8, "H2", "W2", name="s")
    h = cg.Conv2d(4, 8, 3, name="h")(x)
    m = cg.pad(h, like=s, mode="reflect") * cg.interpolate(h, like=s, mode="bilinear")
    a, b = cg.chunk(m - 0.5 * s, 2, dim=1)
    y = 1.0 - a[:, :, :-2]
    built, parsed = cg.build(y, b), cg.parse(text)
    strip = lambda g: [(n.op, n.attrs, n.layer) for n in g.nodes]  # noqa: E731
    assert strip(built) == strip(parsed)
    assert list(built.output_shapes().values()) == list(parsed.output_shapes().values())


def test_builder_rejects_bad_arguments():
    x = cg.input(1, 4, "H", "W")
    with pytest.raises(ConvGraphError, match="slices of int bounds and no step"):
        x[:, :, ::2]
    with pytest.raises(ConvGraphError, match="mode must be one of"):
        cg.pad(x, like=x, mode="bogus")
    with pytest.raises(ConvGraphError, match="divided by a number only"):
        x / x
    with pytest.raises(ConvGraphError, match="chunks must be a positive int"):
        cg.chunk(x, 0)


def test_chunk_exports_as_one_split_with_an_output_per_value():
    g = cg.parse("x = input(N, 6, L)\na, b, c = chunk(x, 3, dim=1)\nd, e = split(x, [2, 4], dim=1)\n"
                 "output(a, b, c, d, e)\n")
    model = to_onnx(g)
    splits = [(list(n.output), n) for n in model.graph.node if n.op_type == "Split"]
    assert [outs for outs, _ in splits] == [["a", "b", "c"], ["d", "e"]]
    import onnxruntime as ort

    x = np.arange(2 * 6 * 5, dtype=np.float32).reshape(2, 6, 5)
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    want = [x[:, 0:2], x[:, 2:4], x[:, 4:6], x[:, 0:2], x[:, 2:6]]
    assert all(np.array_equal(g_, w) for g_, w in zip(got, want))
