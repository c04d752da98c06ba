"""Animations: the geometry against an independent oracle, the rendering, and the CLI's errors.

The oracle: for every input cell e, run the layer on a one-hot input at e with an all-ones kernel;
output cell j depends on e exactly when the result at j is positive. Every frame's highlighted
cells must be exactly that set.
"""
from __future__ import annotations

import itertools
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from convgraph.animate_geometry import effective_kernel, geometry
from convgraph import reference
from convgraph.errors import Loc
from convgraph.ir import Conv, ConvTranspose, Graph, Node, Pool

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
    return Conv(f"Conv{nd}d", nd, 1, 1, ks, ss, ps, ds, padding_mode=mode), sizes


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
    spec = ConvTranspose(f"ConvTranspose{nd}d", nd, 1, 1, tuple(ks), tuple(ss), tuple(ps), tuple(ops), tuple(ds))
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
    spec = Pool(name, nd, mode, tuple(ks), tuple(ss), tuple(ps), tuple(ds), ceil_mode=ceil)
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
    return tuple(Graph((x, y), ("y",)).shapes()["y"][2:])


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
