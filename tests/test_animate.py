"""Animations: the geometry against an independent oracle, the rendering, and the CLI's errors.

The oracle: for every input cell e, run the layer on a one-hot input at e with an all-ones kernel;
output cell j depends on e exactly when the result at j is positive. Every frame's highlighted
cells must be exactly that set.
"""
from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import convgraph as cg
from convgraph.animate import animate, render_frames
from convgraph.animate._caption import formula_lines
from convgraph.animate._draw import CURRENT, KERNEL, FrameRenderer, build_scene
from convgraph.animate._geometry import CROP, OUT, OUTPAD, effective_kernel, geometry
from convgraph.animate._text import typeface
from convgraph.errors import Loc
from convgraph.ir import Conv, ConvTranspose, Node, Pool
from convgraph.validate import reference

# --------------------------------------------------------------------------------------------
# Random layer configurations (asymmetric per axis by construction: each axis draws its own values)
# --------------------------------------------------------------------------------------------


@st.composite
def conv_axis(draw):
    i, k, s, d = draw(st.integers(1, 7)), draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    pads = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    assume(i + sum(pads) >= effective_kernel(k, d))
    return i, k, s, d, pads


@st.composite
def conv_specs(draw):
    nd = draw(st.sampled_from((1, 2)))
    axes = [draw(conv_axis()) for _ in range(nd)]
    sizes, ks, ss, ds, ps = (tuple(a[j] for a in axes) for j in range(5))
    mode = draw(st.sampled_from(("zeros", "reflect", "replicate", "circular")))
    if mode == "reflect":
        assume(all(max(p) < i for p, i in zip(ps, sizes)))
    if mode == "circular":
        assume(all(max(p) <= i for p, i in zip(ps, sizes)))
    return Conv(type_name=f"Conv{nd}d", nd=nd, in_channels=1, out_channels=1, kernel_size=ks, stride=ss, padding=ps,
                dilation=ds, padding_mode=mode), sizes


@st.composite
def conv_transpose_specs(draw):
    nd = draw(st.sampled_from((1, 2)))
    sizes, ks, ss, ds, ps, ops = [], [], [], [], [], []
    for _ in range(nd):
        i, k, s, d = draw(st.integers(1, 5)), draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
        p, op = draw(st.integers(0, 4)), draw(st.integers(0, max(s, d) - 1))
        assume((i - 1) * s - 2 * p + d * (k - 1) + op + 1 >= 1)
        for lst, v in zip((sizes, ks, ss, ds, ps, ops), (i, k, s, d, p, op)):
            lst.append(v)
    spec = ConvTranspose(type_name=f"ConvTranspose{nd}d", nd=nd, in_channels=1, out_channels=1, kernel_size=tuple(ks),
                         stride=tuple(ss), padding=tuple((q, q) for q in ps), output_padding=tuple(ops),
                         dilation=tuple(ds))
    return spec, tuple(sizes)


@st.composite
def pool_specs(draw):
    nd, mode = draw(st.sampled_from((1, 2))), draw(st.sampled_from(("max", "avg")))
    ceil = draw(st.booleans())
    sizes, ks, ss, ds, ps = [], [], [], [], []
    for _ in range(nd):
        i, k, s = draw(st.integers(1, 7)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
        d = draw(st.integers(1, 3)) if mode == "max" else 1
        p = draw(st.integers(0, k // 2))
        assume(i + 2 * p >= effective_kernel(k, d))
        for lst, v in zip((sizes, ks, ss, ds, ps), (i, k, s, d, p)):
            lst.append(v)
    name = f"{'Max' if mode == 'max' else 'Avg'}Pool{nd}d"
    spec = Pool(type_name=name, nd=nd, mode=mode, kernel_size=tuple(ks), stride=tuple(ss),
                padding=tuple((q, q) for q in ps), dilation=tuple(ds), ceil_mode=ceil)
    return spec, tuple(sizes)


any_spec = st.one_of(conv_specs(), conv_transpose_specs(), pool_specs())

# --------------------------------------------------------------------------------------------
# The oracle
# --------------------------------------------------------------------------------------------


def run_layer(spec, x: np.ndarray) -> np.ndarray:
    """The numpy reference of the layer on x of shape (1, 1, *sizes), weights all ones, no bias."""
    params = {} if isinstance(spec, Pool) else {"weight": np.ones((1, 1, *spec.kernel_size))}
    return reference.LAYER_IMPLS[type(spec)](spec, x, params)


def shape_stage_sizes(spec, sizes) -> tuple[int, ...]:
    """The layer's output spatial sizes from the shape stage (graph.shapes at ``sizes``)."""
    x = Node("x", "input", (), Loc("<test>", 1, 1), dims=(1, 1, *sizes))
    y = Node("y", "layer", ("x",), Loc("<test>", 2, 1), layer=spec, layer_name="y")
    return tuple(cg.Graph((x, y), ("y",)).shapes()["y"][2:])


def one_hot_responses(spec, sizes) -> tuple[tuple[int, ...], dict]:
    """(output sizes, {input cell: set of output cells with a positive response})."""
    out: dict = {}
    for e in itertools.product(*map(range, sizes)):
        x = np.zeros((1, 1, *sizes), dtype=np.float64)
        x[(0, 0, *e)] = 1.0
        y = run_layer(spec, x)[0, 0]
        out[e] = {tuple(int(v) for v in j) for j in zip(*np.nonzero(y > 0))}
    return y.shape, out


# --------------------------------------------------------------------------------------------
# Geometry properties
# --------------------------------------------------------------------------------------------


@settings(max_examples=150)
@given(any_spec)
def test_gather_frames_highlight_exactly_the_contributing_inputs(case):
    spec, sizes = case
    out_shape, resp = one_hot_responses(spec, sizes)
    g = geometry(spec, sizes)
    assert g.out_sizes == out_shape == shape_stage_sizes(spec, sizes)
    frames = list(g.frames())
    assert len(frames) == int(np.prod(out_shape))
    assert [f.position for f in frames] == list(itertools.product(*map(range, out_shape)))
    for f in frames:
        expected = {e for e, outs in resp.items() if f.position in outs}
        assert f.cells == expected, (spec, sizes, f.position)


@settings(max_examples=80)
@given(conv_transpose_specs())
def test_scatter_frames_stamp_exactly_the_outputs_each_input_reaches(case):
    spec, sizes = case
    out_shape, resp = one_hot_responses(spec, sizes)
    g = geometry(spec, sizes, scatter=True)
    assert g.out_sizes == out_shape == shape_stage_sizes(spec, sizes)
    frames = list(g.frames())
    assert len(frames) == int(np.prod(sizes))
    for f in frames:
        assert f.cells == resp[f.position], (spec, sizes, f.position)


# --------------------------------------------------------------------------------------------
# Drawing: the highlighted cells in the pixels are the geometry's
# --------------------------------------------------------------------------------------------


def _interior(im, box, inset=2):
    x0, y0, x1, y1 = box
    return im.crop((x0 + inset, y0 + inset, x1 + 1 - inset, y1 + 1 - inset)).tobytes()


def highlighted_input_cells(renderer, im) -> set:
    """Input cells (original coordinates) whose drawn cells show the kernel state in ``im``."""
    sc, lay, painter = renderer.scene, renderer.layout, renderer.painter
    axes = [sc.geometry.axes[a] for a in sc.drawn_axes]
    rows_src = axes[0].src if len(axes) == 2 else (0,)
    found = set()
    for r, c in itertools.product(*map(range, sc.source.shape)):
        kind, label = sc.source.kinds[r][c], sc.source.labels[r][c]
        tile = painter.p_tile(kind, KERNEL, label)
        box = lay.cell_box(lay.src_xy, r, c)
        if _interior(im, box) == _interior(tile, (0, 0, tile.width - 1, tile.height - 1)):
            sr, scol = rows_src[r], axes[-1].src[c]
            if sr is not None and scol is not None:
                found.add((sr, scol) if len(axes) == 2 else (scol,))
    return found


def current_output_cells(renderer, im) -> set:
    sc, lay, painter = renderer.scene, renderer.layout, renderer.painter
    tile = painter.p_tile(OUT, CURRENT, "")
    want = _interior(tile, (0, 0, tile.width - 1, tile.height - 1))
    cells = set()
    for r, c in itertools.product(*map(range, sc.target.shape)):
        if _interior(im, lay.cell_box(lay.dst_xy, r, c)) == want:
            cells.add((r, c) if len(sc.drawn_axes) == 2 else (c,))
    return cells


@pytest.mark.slow
@settings(max_examples=40)
@given(st.one_of(conv_specs(), conv_transpose_specs(), pool_specs()))
def test_drawn_frames_highlight_the_contributing_inputs_and_the_current_output(case):
    spec, sizes = case
    _, resp = one_hot_responses(spec, sizes)
    renderer = FrameRenderer(build_scene(geometry(spec, sizes), "test"))
    images = renderer.frames()
    assert len(images) == len(renderer.scene.frames) == int(np.prod(geometry(spec, sizes).out_sizes))
    for frame, im in zip(renderer.scene.frames, images):
        expected = {e for e, outs in resp.items() if frame.position in outs}
        assert highlighted_input_cells(renderer, im) == expected, (spec, sizes, frame.position)
        assert current_output_cells(renderer, im) == {frame.position}


@settings(max_examples=30)
@given(conv_transpose_specs())
def test_drawn_scatter_frames_stamp_the_outputs_each_input_reaches(case):
    spec, sizes = case
    _, resp = one_hot_responses(spec, sizes)
    renderer = FrameRenderer(build_scene(geometry(spec, sizes, scatter=True), "test"))
    sc, lay, painter = renderer.scene, renderer.layout, renderer.painter
    axes = [sc.geometry.axes[a] for a in sc.drawn_axes]
    for frame, im in zip(sc.frames, renderer.frames()):
        stamped = set()
        for r, c in itertools.product(*map(range, sc.target.shape)):
            kind = sc.target.kinds[r][c]
            if kind == OUTPAD:
                continue  # output_padding cells: no stamp reaches them, they have no stamped look
            tile = painter.p_tile(kind, KERNEL, "")
            if _interior(im, lay.cell_box(lay.dst_xy, r, c)) == _interior(tile, (0, 0, tile.width - 1,
                                                                                   tile.height - 1)):
                full = (r, c) if len(axes) == 2 else (c,)
                if kind != CROP:
                    stamped.add(tuple(f - ax.padding for f, ax in zip(full, axes)))
        assert stamped == resp[frame.position], (spec, sizes, frame.position)


def test_3d_layer_draws_one_slice_with_a_note():
    spec = Conv(type_name="Conv3d", nd=3, in_channels=1, out_channels=1, kernel_size=(3, 2, 3), stride=(1, 2, 1),
                padding=((1, 1), (0, 0), (1, 1)), dilation=(1, 1, 1))
    g = geometry(spec, (4, 5, 6))
    scene = build_scene(g, "Conv3d")
    assert len(scene.frames) == g.out_sizes[1] * g.out_sizes[2]
    assert {f.position[0] for f in scene.frames} == {g.out_sizes[0] // 2}
    assert any("3-D layer: one slice" in t for t in scene.text)
    _, resp = one_hot_responses(spec, (4, 5, 6))
    for f in scene.frames[:10]:
        assert f.cells == {e for e, outs in resp.items() if f.position in outs}


def test_gif_round_trip_and_png_strip(tmp_path):
    from PIL import Image

    spec = ConvTranspose(type_name="ConvTranspose2d", nd=2, in_channels=1, out_channels=1, kernel_size=(3, 3),
                         stride=(2, 1), padding=((1, 1), (0, 0)), output_padding=(1, 0), dilation=(1, 1))
    gif, png = tmp_path / "t.gif", tmp_path / "t.png"
    res = animate(spec, (3, 4), str(gif))
    frames = render_frames(spec, (3, 4))
    assert res.frames == len(frames) == 6 * 6
    with Image.open(gif) as im:  # every decoded frame (deltas composed) is the rendered one
        assert im.n_frames == len(frames) and im.info["loop"] == 0
        for n, want in enumerate(frames):
            im.seek(n)
            assert im.convert("RGB").tobytes() == want.convert("RGB").tobytes(), n
    animate(spec, (3, 4), str(png), png=True)
    with Image.open(png) as im:
        assert im.format == "PNG" and im.width == 4 * frames[0].width


def test_caption_formula_with_values():
    spec = Conv(type_name="Conv1d", nd=1, in_channels=1, out_channels=1, kernel_size=(4,), stride=(1,),
                padding=((2, 2),), dilation=(1,))
    assert formula_lines(geometry(spec, (5,))) == [
        "o = ⌊(i + 2p − d(k−1) − 1)/s⌋ + 1 = ⌊(5 + 4 − 3 − 1)/1⌋ + 1 = 6"]
    pool = Pool(type_name="MaxPool1d", nd=1, mode="max", kernel_size=(2,), stride=(3,), padding=((1, 1),),
                dilation=(1,), ceil_mode=True)
    lines = formula_lines(geometry(pool, (4,)))
    assert lines[0].endswith("⌈(4 + 2 − 1 − 1)/3⌉ + 1 = 3") and "dropped, o = 2" in lines[1]
    asym = Conv(type_name="Conv2d", nd=2, in_channels=1, out_channels=1, kernel_size=(3, 3), stride=(1, 2),
                padding=((1, 1), (1, 1)), dilation=(1, 1))
    assert [line[:3] for line in formula_lines(geometry(asym, (5, 7)))] == ["H: ", "W: "]


def test_default_font_glyphs_are_drawn_or_substituted():
    from PIL import Image, ImageDraw

    face = typeface(12)
    im = Image.new("L", (200, 20), 255)
    face.draw(ImageDraw.Draw(im), (0, 0), "⌊−⌋", 0)
    assert im.getextrema()[0] < 128  # something dark was drawn
    assert face.width("⌊(5 − 1)/2⌋") > face.width("(5 1)/2")


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

CG = '''"""A small model with symbolic sizes."""
x = input(N, 1, H, W)
c1 = Conv2d(1, 4, 3, stride=(1, 2), padding=(1, 0))(x)
r = ReLU()(c1)
p = MaxPool2d(2, ceil_mode=True)(r)
u = ConvTranspose2d(4, 1, 3, stride=2, padding=1, output_padding=1)(p)
'''


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    from convgraph.cli import main

    code = main(["animate", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_user_error(code: int, err: str, *words: str) -> None:
    import re

    assert code == 2, err
    lines = err.strip().splitlines()
    # one error line; a size outside the valid set adds hint lines (issue 11: hints in every verb)
    assert len(lines) == 1 or all(line.startswith("  hint: ") for line in lines[1:]), err
    assert re.match(r"^[^\n]*:\d+:\d+: error: ", lines[0]), err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, err)


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "m.cg"
    path.write_text(CG)
    return path


def test_cli_layer_string(tmp_path, capsys):
    out = tmp_path / "t.gif"
    code, stdout, err = run_cli(capsys, "ConvTranspose2d(1, 1, 3, stride=2, padding=1)", "--input", "3x3",
                                "-o", str(out))
    assert code == 0, err
    assert out.exists() and "25 frames" in stdout


def test_cli_file_layer_at_sizes(model, tmp_path, capsys):
    from convgraph.api import load

    g = load(str(model))
    for name in ("c1", "p", "u"):
        out = tmp_path / f"{name}.gif"
        # N has no --at: the layer's input size does not depend on it
        code, stdout, err = run_cli(capsys, str(model), "--layer", name, "--at", "H=7", "--at", "W=6",
                                    "-o", str(out))
        assert code == 0, err
        shapes = g.shapes(N=1, H=7, W=6)
        node = next(n for n in g.layers() if n.layer_name == name)
        spatial_in, spatial_out = shapes[node.inputs[0]][2:], shapes[node.name][2:]
        geo = geometry(node.layer, tuple(spatial_in))
        assert geo.out_sizes == tuple(spatial_out)
        assert f"{int(np.prod(spatial_out))} frames" in stdout


def test_cli_png_strip(tmp_path, capsys):
    out = tmp_path / "s.png"
    code, _stdout, err = run_cli(capsys, "MaxPool1d(2, stride=3, padding=1, ceil_mode=True)", "--input", "4",
                                "--png", "-o", str(out))
    assert code == 0, err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv, words", [
    (("Conv2d(1, 1, 3", "--input", "5x5"), ("<layer>",)),  # outside the grammar
    (("__import__('os').system('true')", "--input", "5x5"), ("<layer>",)),
    (("Conv2d(1, 1, 5)", "--input", "3x4"), ()),  # kernel larger than the input
    (("Conv2d(1, 1, 3)", "--input", "5"), ("2 spatial axes",)),  # wrong number of axes
    (("Conv2d(1, 1, 3)", "--input", "5xa"), ("--input",)),
    (("Conv2d(1, 1, 3)",), ("--input",)),
    (("ReLU()", "--input", "5x5"), ("ReLU", "no sliding window")),
    (("Linear(3, 4)", "--input", "5"), ("Linear",)),
    (("Conv2d(1, 1, 3)", "--input", "5x5", "--scatter"), ("--scatter",)),
    (("MaxPool2d(3, padding=2)", "--input", "5x5"), ()),  # invalid layer configuration
    (("no_such_file.cg", "--layer", "c1"), ("no such file",)),
    (("Conv2d(1, 1, 1)", "--input", "30x30"), ("too many",)),
])
def test_cli_bad_layer_input_is_one_line_exit_2(tmp_path, capsys, argv, words):
    code, _, err = run_cli(capsys, *argv, "-o", str(tmp_path / "x.gif"))
    assert_user_error(code, err, *words)
    assert not (tmp_path / "x.gif").exists()


@pytest.mark.parametrize("extra, words", [
    (("--layer", "nope", "--at", "H=7", "--at", "W=6"), ("nope", "c1")),  # not in the file
    (("--layer", "c1"), ("--at H=INT", "--at W=INT")),  # symbols without --at
    (("--layer", "r", "--at", "H=7", "--at", "W=6"), ("ReLU",)),  # no window
    (("--layer", "c1", "--at", "H=7"), ("--at W=INT",)),
    (("--layer", "u", "--at", "H=7", "--at", "W=2"), ("c1",)),  # sizes violate a constraint
    (("--layer", "c1", "--at", "Q=3"), ("Q",)),
    (("--layer", "c1", "--input", "5x5"), ("--input",)),
])
def test_cli_bad_file_input_is_one_line_exit_2(model, tmp_path, capsys, extra, words):
    code, _, err = run_cli(capsys, str(model), *extra, "-o", str(tmp_path / "x.gif"))
    assert_user_error(code, err, *words)


def test_cli_subprocess_exit_code(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "convgraph", "animate", "Conv2d(1, 1, 3, stride=0)", "--input",
                           "5x5", "-o", str(tmp_path / "x.gif")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and ": error: " in proc.stderr


def test_cli_size_outside_the_valid_set_gets_the_hints(model, tmp_path, capsys):
    code, _, err = run_cli(capsys, str(model), "--layer", "u", "--at", "H=7", "--at", "W=2",
                           "-o", str(tmp_path / "x.gif"))
    assert_user_error(code, err)
    assert "  hint: valid W: " in err and "nearest valid: " in err
