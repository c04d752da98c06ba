"""The Python builder builds the same IR as the text DSL."""
from __future__ import annotations

import dataclasses
import inspect
import sys

import pytest

import convgraph as cg
from convgraph import dims as D
from convgraph.errors import GraphError, LayerConfigError, Loc
from convgraph.front.catalogue import CATALOGUE

HERE = __file__


def without_locs(graph):
    """Nodes, outputs, assumptions and expectations with every source position removed."""
    nodes = [dataclasses.replace(n, loc=None) for n in graph.nodes]
    assumes = [(a.text, a.conds) for a in graph.assumes]
    expects = [(e.value, e.dims) for e in graph.expects]
    return nodes, graph.outputs, graph.doc, assumes, expects


def col_of(line: int, col: int) -> int:
    """The column the builder records for a call at ``col`` on ``line``: Python 3.10 records no columns,
    so there it is the statement's first column."""
    if sys.version_info >= (3, 11):
        return col
    with open(HERE, encoding="utf-8") as f:
        text = f.read().splitlines()[line - 1]
    return len(text) - len(text.lstrip()) + 1


def line_of(marker: str) -> int:
    """The line of this file that holds ``marker`` (once)."""
    with open(HERE, encoding="utf-8") as f:
        lines = [i for i, ln in enumerate(f, 1) if marker in ln and "line_of(" not in ln]
    assert len(lines) == 1, marker
    return lines[0]


def test_shorthand_stack_equals_the_dsl():
    text = '"""A stack."""\ninput(1, 1, H, W)\nConv2d(1, 4, 3, padding=1)\nBatchNorm2d(4)\nReLU()\nMaxPool2d(2)\n'
    x = cg.input(1, 1, "H", "W")
    y = cg.Conv2d(1, 4, 3, padding=1)(x)
    y = cg.BatchNorm2d(4)(y)
    y = cg.ReLU()(y)
    y = cg.MaxPool2d(2)(y)
    assert without_locs(cg.build(y, doc="A stack.")) == without_locs(cg.parse(text))


def test_dag_with_cat_add_crop_equals_the_dsl():
    text = '''
x = input(N, 3, H, W)
assume(H % 2 == 0, W >= 8)
h = Conv2d(3, 16, 3, padding=1)(x)
d = MaxPool2d(2)(h)
u = ConvTranspose2d(16, 16, 2, stride=2, name="up")(d)
k = crop(h, like=u)
c = cat([u, k], dim=1)
r = c + c
s = Conv2d(32, 8, 1)(r)
expect(s, N, 8, 2 * (H // 2), 2 * (W // 2))
output(s, c)
'''
    x = cg.input("N", 3, "H", "W")
    h = cg.Conv2d(3, 16, 3, padding=1, name="h")(x)
    d = cg.MaxPool2d(2, name="d")(h)
    u = cg.ConvTranspose2d(16, 16, 2, stride=2, name="up")(d)
    k = cg.crop(h, like=u, name="k")
    c = cg.cat([u, k], dim=1, name="c")
    r = (c + c).named("r")
    s = cg.Conv2d(32, 8, 1, name="s")(r)
    built = cg.build(s, c, assume=[cg.assume("H % 2 == 0", "W >= 8")],
                     expect=[cg.expect(s, "N", 8, "2 * (H // 2)", "2 * (W // 2)")])
    parsed = cg.parse(text)
    # the DSL names the ConvTranspose's value 'u' and its layer 'up'; the builder has one name
    parsed_nodes = [dataclasses.replace(n, name="up") if n.name == "u" else n for n in parsed.nodes]
    parsed_nodes = [dataclasses.replace(n, inputs=tuple("up" if i == "u" else i for i in n.inputs))
                    for n in parsed_nodes]
    assert without_locs(built) == without_locs(dataclasses.replace(parsed, nodes=tuple(parsed_nodes)))
    assert built.output_shapes() == parsed.output_shapes()


def test_unnamed_values_are_numbered_and_suffixed():
    x = cg.input("N", 2, "L", name="sig")
    a = cg.Conv1d(2, 2, 3, padding=1)(x)
    b = cg.ReLU(name="act")(a)
    c = cg.Conv1d(2, 2, 1)(b)
    s1 = a + c
    s2 = s1 + b
    j = cg.cat([s1, s2], dim=1)
    g = cg.build(j)
    assert [(n.name, n.op, n.layer_name) for n in g.nodes] == [
        ("sig", "input", None), ("0", "layer", "0"), ("act", "layer", "act"), ("2", "layer", "2"),
        ("add", "add", None), ("add_1", "add", None), ("cat", "cat", None)]
    assert g.node("add_1").inputs == ("add", "act") and g.node("cat").dim == 1
    assert g.filename == "<builder>" and g.outputs == ("cat",)


def test_only_reachable_values_in_definition_order():
    x = cg.input(1, 3, 8, 8)
    unused = cg.Tanh()(x)
    a = cg.ReLU()(x)
    g = cg.build(a)
    assert [n.name for n in g.nodes] == ["x", "0"] and unused.op == "layer"


def test_positions_are_the_callers_file_and_line():
    x = cg.input(1, 3, "H", "W")  # marker: input-line
    y = cg.Conv2d(3, 8, 3)(x)  # marker: conv-line
    g = cg.build(y)
    assert g.node("x").loc == Loc(HERE, line_of("marker: input-line"), col_of(line_of("marker: input-line"), 9))
    assert g.node("0").loc == Loc(HERE, line_of("marker: conv-line"), col_of(line_of("marker: conv-line"), 9))


def test_layer_errors_are_located_at_the_call():
    with pytest.raises(LayerConfigError) as info:
        cg.ConvTranspose2d(3, 3, 3, stride=(2, 1), output_padding=(2, 1))  # marker: bad-layer
    assert info.value.loc == Loc(HERE, line_of("marker: bad-layer"), col_of(line_of("marker: bad-layer"), 9))
    assert info.value.message == ("ConvTranspose2d: output_padding (2, 1) must be smaller than either stride (2, 1) "
                                  "or dilation (1, 1) on every axis")


def test_every_catalogue_class_is_a_builder_function_with_torchs_parameters():
    from convgraph.front import builder

    for name in CATALOGUE:
        assert getattr(cg, name) is getattr(builder, name)
    assert cg.Identity(1, 2, anything=3)  # accepts anything, as torch does
    assert cg.Conv2d(3, 8, 3, 2, 1, 1, 1, False).spec.bias is False


def test_graph_errors():
    x = cg.input("N", 3, "H", "W")
    relu = cg.ReLU()
    relu(x)
    with pytest.raises(GraphError, match="already applied"):
        relu(x)
    with pytest.raises(GraphError, match=r"ReLU expects convgraph values, got int 3"):
        cg.ReLU()(3)
    with pytest.raises(GraphError, match="reused value 'x'"):
        cg.build(cg.cat([x, cg.input("N", 3, "H", "W")], dim=1))
    with pytest.raises(GraphError, match="reused value 'x': listed twice in build"):
        cg.build(x, x)
    with pytest.raises(GraphError, match=r"an input size is a positive int or a symbol name, got 0"):
        cg.input("N", 3, 0)
    with pytest.raises(GraphError, match=r"3 to 5 entries"):
        cg.input("N", 3)
    with pytest.raises(GraphError, match=r"name= must be"):
        cg.Conv2d(3, 8, 3, name="a..b")
    with pytest.raises(GraphError, match="named\\(\\) is for cat, crop and \\+ values"):
        cg.ReLU()(x).named("r")
    with pytest.raises(GraphError, match="reused value 'r'"):
        cg.build(cg.ReLU(name="r")(x) + cg.Tanh(name="r")(x))


def test_assume_and_expect_errors_point_at_the_builder_call():
    x = cg.input("N", 3, "H", "W")
    with pytest.raises(Exception) as info:
        cg.build(x, assume=[cg.assume("Q > 1")])  # marker: bad-assume
    assert info.value.loc == Loc(HERE, line_of("marker: bad-assume"), col_of(line_of("marker: bad-assume"), 29))
    assert info.value.message == "in 'Q > 1': unknown size symbol 'Q' (the inputs declare: N, H, W)"
    g = cg.build(x, expect=[cg.expect(x, "N", 3, "H", "W")])
    assert g.expects[0].dims == (D.sym("N"), 3, D.sym("H"), D.sym("W"))


def test_builder_module_has_no_side_effects_on_import():
    from convgraph.front import builder

    assert "input" in builder.__all__ and inspect.isfunction(builder.Conv2d)
