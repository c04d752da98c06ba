"""The Python builder's functions (issue 9) build exactly the DSL's IR: softmax, flatten, mean,
unsqueeze, squeeze, reshape and the ``cg.F.`` / ``cg.torch.`` spellings, bound through the same
``front.functions`` table as the DSL."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import convgraph as cg
from convgraph.errors import ConvGraphError, Loc
from convgraph.front.functions import FUNCTIONAL, TORCH_FUNCTIONS

HERE = __file__

# (DSL call on the value x, the builder's call on x; both name their value y)
CASES = [
    ("F.relu(x)", lambda x: cg.F.relu(x, name="y")),
    ("F.leaky_relu(x, 0.2)", lambda x: cg.F.leaky_relu(x, 0.2, name="y")),
    ("F.gelu(x, approximate='tanh')", lambda x: cg.F.gelu(x, approximate="tanh", name="y")),
    ("F.max_pool2d(x, 2)", lambda x: cg.F.max_pool2d(x, 2, name="y")),
    ("F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)",
     lambda x: cg.F.avg_pool2d(x, 3, 1, 1, count_include_pad=False, name="y")),
    ("F.adaptive_avg_pool2d(x, 1)", lambda x: cg.F.adaptive_avg_pool2d(x, 1, name="y")),
    ("F.adaptive_max_pool2d(x, (2, 3))", lambda x: cg.F.adaptive_max_pool2d(x, (2, 3), name="y")),
    ("F.dropout(x, 0.3, training=False)", lambda x: cg.F.dropout(x, 0.3, training=False, name="y")),
    ("F.pad(x, (1, 2))", lambda x: cg.F.pad(x, (1, 2), name="y")),
    ("F.pad(x, (2, 1, 1, 0), mode='replicate')", lambda x: cg.F.pad(x, (2, 1, 1, 0), mode="replicate", name="y")),
    ("F.pad(x, (1, 0, 0, 2), value=0.5)", lambda x: cg.F.pad(x, (1, 0, 0, 2), value=0.5, name="y")),
    ("F.interpolate(x, scale_factor=2)", lambda x: cg.F.interpolate(x, scale_factor=2, name="y")),
    ("F.interpolate(x, size=(5, 7), mode='bilinear', align_corners=True)",
     lambda x: cg.F.interpolate(x, size=(5, 7), mode="bilinear", align_corners=True, name="y")),
    ("F.pixel_shuffle(x, 1)", lambda x: cg.F.pixel_shuffle(x, 1, name="y")),
    ("F.softmax(x, dim=1)", lambda x: cg.F.softmax(x, dim=1, name="y")),
    ("F.log_softmax(x, -1)", lambda x: cg.F.log_softmax(x, -1, name="y")),
    ("softmax(x, dim=1)", lambda x: cg.softmax(x, dim=1, name="y")),
    ("torch.softmax(x, 2)", lambda x: cg.torch.softmax(x, 2, name="y")),
    ("flatten(x)", lambda x: cg.flatten(x, name="y")),
    ("torch.flatten(x, 1)", lambda x: cg.torch.flatten(x, 1, name="y")),
    ("F.flatten(x, start_dim=1, end_dim=2)", lambda x: cg.F.flatten(x, start_dim=1, end_dim=2, name="y")),
    ("torch.sigmoid(x)", lambda x: cg.torch.sigmoid(x, name="y")),
    ("mean(x, dim=(2, 3), keepdim=True)", lambda x: cg.mean(x, dim=(2, 3), keepdim=True, name="y")),
    ("torch.mean(x, -1)", lambda x: cg.torch.mean(x, -1, name="y")),
    ("mean(x, 1)", lambda x: cg.mean(x, 1, name="y")),
    ("unsqueeze(x, 1)", lambda x: cg.unsqueeze(x, 1, name="y")),
    ("torch.unsqueeze(x, dim=-1)", lambda x: cg.torch.unsqueeze(x, dim=-1, name="y")),
    ("reshape(x, (N, 2, -1, W))", lambda x: cg.reshape(x, ("N", 2, -1, "W"), name="y")),
    ("torch.reshape(x, (N, -1))", lambda x: cg.torch.reshape(x, ("N", -1), name="y")),
    ("reshape(x, (N, 1, 2 * H, W * 2))", lambda x: cg.reshape(x, ("N", 1, "2 * H", "W*2"), name="y")),
    ("reshape(x, shape=(-1,))", lambda x: cg.reshape(x, shape=(-1,), name="y")),
]


def without_locs(graph):
    return [dataclasses.replace(n, loc=None) for n in graph.nodes], graph.outputs


@pytest.mark.parametrize(("call", "make"), CASES, ids=[c for c, _ in CASES])
def test_builder_function_equals_the_dsl(call, make):
    parsed = cg.parse(f"x = input(N, 4, H, W)\ny = {call}\noutput(y)\n")
    built = cg.build(make(cg.input("N", 4, "H", "W")))
    assert without_locs(built) == without_locs(parsed)
    assert built.output_shapes() == parsed.output_shapes()


@pytest.mark.parametrize(("call", "make"), [
    ("squeeze(x)", lambda x: cg.squeeze(x, name="y")),
    ("torch.squeeze(x, (0, 2))", lambda x: cg.torch.squeeze(x, (0, 2), name="y")),
    ("squeeze(x, dim=-1)", lambda x: cg.squeeze(x, dim=-1, name="y")),
])
def test_builder_squeeze_equals_the_dsl(call, make):
    parsed = cg.parse(f"x = input(1, 4, 1, 1)\ny = {call}\noutput(y)\n")
    built = cg.build(make(cg.input(1, 4, 1, 1)))
    assert without_locs(built) == without_locs(parsed)
    assert built.output_shapes() == parsed.output_shapes()


def test_unnamed_functions_take_the_builders_names():
    x = cg.input("N", 4, "H", "W")
    a = cg.F.relu(x)
    b = cg.Conv2d(4, 4, 1)(a)
    m = cg.mean(b, (2, 3))
    g = cg.build(cg.reshape(m, ("N", 2, 2)))
    # a functional layer is a layer (numbered by position); the node ops are suffixed by their op
    assert [(n.name, n.op) for n in g.nodes] == [("x", "input"), ("0", "layer"), ("1", "layer"),
                                                ("mean", "mean"), ("reshape", "reshape")]
    with cg.scope("head"):
        h = cg.F.relu(x)
    assert cg.build(h).nodes[-1].name == "head.0"


def test_every_dsl_spelling_has_a_builder_function():
    assert set(vars(cg.F)) == {*FUNCTIONAL, "pad"}
    assert set(vars(cg.torch)) == set(TORCH_FUNCTIONS)
    assert cg.torch.cat is cg.cat and cg.torch.chunk is cg.chunk and cg.torch.split is cg.split
    for name in ("softmax", "flatten", "mean", "unsqueeze", "squeeze", "reshape"):
        assert callable(getattr(cg, name))


BAD = [
    (lambda x: cg.F.relu(x, True, 3), "F.relu: takes at most 1 argument(s) after the value, got 2"),
    (lambda x: cg.F.max_pool2d(x, "a"), "MaxPool2d: kernel_size must be an int or a tuple of 2 ints, got 'a'"),
    (lambda x: cg.F.max_pool2d(x), "F.max_pool2d: missing required argument(s) 'kernel_size'"),
    (lambda x: cg.F.softmax(x, dims=1), "F.softmax: unexpected keyword argument 'dims' (did you mean 'dim'?)"),
    (lambda x: cg.torch.softmax(x), "torch.softmax: missing required argument 'dim'"),
    (lambda x: cg.F.pad(x, (1,)), "F.pad: pad must be a tuple of an even number (2 to 10) of ints, got (1,)"),
    (lambda x: cg.F.dropout(x, 0.5, training=1), "F.dropout: training must be True or False (inference drops "
                                                 "nothing), got 1"),
    (lambda x: cg.mean(x, dim=1.5), "mean: dim must be an int or a tuple of ints, got 1.5"),
    (lambda x: cg.mean(x, 1, keepdim=1), "mean: keepdim must be True or False and dtype None"),
    (lambda x: cg.unsqueeze(x, (1,)), "unsqueeze: dim must be an int, got (1,)"),
    (lambda x: cg.torch.squeeze(x, "a"), "torch.squeeze: dim must be an int or a tuple of ints, got 'a'"),
    (lambda x: cg.reshape(x, (-1, -1)), "only one dimension can be -1"),
    (lambda x: cg.reshape(x, (1, 0)), "a reshape entry is a positive int, -1, a size symbol or a size symbol "
                                      "times an int"),
    (lambda x: cg.reshape(x, ("N", "Q")), "a reshape entry string is a size symbol of the inputs or a symbol "
                                          "times an int ('L', '2 * L'), got 'Q' (the inputs declare: H, N, W)"),
    (lambda x: cg.reshape(x, (1, 2, 3, 4, 5, 6)), "the shape is a tuple of 1 to 5 entries"),
    (lambda x: cg.reshape(x), "reshape takes a value and a shape: reshape(v, ('N', -1, 'L'))"),
    (lambda x: cg.F.relu(3), "F.relu expects convgraph values, got int 3"),
    (lambda x: cg.F.relu(x, name="a..b"), "name= must be"),
]


@pytest.mark.parametrize(("make", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_arguments_are_located_at_the_call(make, message):
    x = cg.input("N", 4, "H", "W")
    with pytest.raises(ConvGraphError) as info:
        make(x)
    assert info.value.message.startswith(message)
    # the position is the caller's: the line of the lambda that makes the call
    assert (info.value.loc.file, info.value.loc.line) == (HERE, make.__code__.co_firstlineno)


def test_a_bad_argument_points_at_the_callers_line_and_column():
    x = cg.input("N", 4, "H", "W")
    with pytest.raises(ConvGraphError) as info:
        cg.F.max_pool2d(x, 2, stride=0)  # marker: bad-stride
    text = Path(HERE).read_text(encoding="utf-8").splitlines()
    lines = [i for i, ln in enumerate(text, 1) if ln.rstrip().endswith("marker: bad-stride")]
    assert info.value.loc == Loc(HERE, lines[0], 9)
