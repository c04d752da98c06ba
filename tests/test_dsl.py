"""The text DSL: every grammar feature, the IR it produces, and every kind of bad input with its
exact message and position (1-based line and column). Nothing in a .cg file is ever executed."""
from __future__ import annotations

import sys
import textwrap

import pytest

from convgraph import dims as D
from convgraph.errors import ConvGraphError, DSLSyntaxError, GraphError, LayerConfigError, Loc, ShapeError
from convgraph.front.catalogue import construct
from convgraph.front.dsl import load, parse, parse_layer
from convgraph.ir import Assume, Conv, ConvTranspose, Elementwise, Expect


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def names(g):
    return [(n.name, n.op, n.layer_name) for n in g.nodes]


# --------------------------------------------------------------------------------------------
# Grammar
# --------------------------------------------------------------------------------------------


def test_design_example_parses_to_the_expected_ir():
    g = parse(src('''
        """A model description."""
        x = input(N, 3, H, W)                   # an input: int literals or symbol names
        h = Conv2d(3, 16, 3, padding=1)(x)      # layer(constructor args)(values)
        h = nn.ReLU()(h)                        # optional `nn.` or `torch.nn.` prefix
        d = MaxPool2d(2)(h)
        u = ConvTranspose2d(16, 16, 2, stride=2)(d)
        c = cat([u, h], dim=1)                  # also torch.cat
        r = c + c                               # elementwise add (residual)
        k = crop(h, like=u)                     # center-crop spatial dims to another value's size
        output(c)
    '''), filename="unet.cg")
    assert g.doc == "A model description."
    assert g.filename == "unet.cg"
    assert names(g) == [("x", "input", None), ("h", "layer", "h"), ("h_1", "layer", "h_1"), ("d", "layer", "d"),
                        ("u", "layer", "u"), ("c", "cat", None), ("r", "add", None), ("k", "crop", None)]
    assert g.node("x").dims == ("N", 3, "H", "W")
    assert g.node("h_1").inputs == ("h",) and g.node("d").inputs == ("h_1",)
    assert g.node("c").inputs == ("u", "h_1") and g.node("c").dim == 1
    assert g.node("r").inputs == ("c", "c")
    assert g.node("k").inputs == ("h_1", "u")
    assert g.outputs == ("c",)
    assert g.node("h").layer == construct("Conv2d", (3, 16, 3), {"padding": 1})
    assert g.node("h").loc == Loc("unet.cg", 3, 5)
    assert g.node("r").loc == Loc("unet.cg", 8, 5)


def test_sequential_shorthand_names_layers_like_nn_sequential(torch):
    g = parse(src('''
        input(1, 1, 4, 4)
        Conv2d(1, 2, 3)
        BatchNorm2d(2)
        ReLU()
        Conv2d(2, 1, 1, bias=False)
    '''))
    assert names(g) == [("x", "input", None), ("0", "layer", "0"), ("1", "layer", "1"), ("2", "layer", "2"),
                        ("3", "layer", "3")]
    assert [n.inputs for n in g.nodes[1:]] == [("x",), ("0",), ("1",), ("2",)]
    assert g.outputs == ("3",)
    seq = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.ReLU(),
                              torch.nn.Conv2d(2, 1, 1, bias=False))
    assert [n.layer_name for n in g.layers()] == [name for name, _ in seq.named_children()]


def test_shorthand_counts_every_layer_and_follows_the_current_value():
    g = parse(src('''
        x = input(N, 3, L)
        h = Conv1d(3, 4, 3)(x)
        ReLU()
        Dropout(0.1, name="drop")
        Identity()
        y = Conv1d(3, 4, 1)(x)
        Sigmoid()
    '''))
    assert names(g) == [("x", "input", None), ("h", "layer", "h"), ("1", "layer", "1"), ("drop", "layer", "drop"),
                        ("3", "layer", "3"), ("y", "layer", "y"), ("5", "layer", "5")]
    assert g.node("1").inputs == ("h",) and g.node("5").inputs == ("y",)


def test_prefixes_and_torch_cat():
    g = parse(src('''
        x = input(2, 3, 8)
        a = nn.Conv1d(3, 2, 1)(x)
        b = torch.nn.Conv1d(3, 2, 1)(x)
        c = torch.cat((a, b), 1)
        d = cat([a, b], -1)
        e = cat([a])
    '''))
    assert g.node("a").layer == g.node("b").layer == construct("Conv1d", (3, 2, 1))
    assert (g.node("c").inputs, g.node("c").dim) == (("a", "b"), 1)
    assert (g.node("d").inputs, g.node("d").dim) == (("a", "b"), -1)
    assert g.node("e").dim == 0  # torch.cat's default


def test_crop_positional_and_keyword():
    g = parse("x = input(1, 1, 9)\ny = Conv1d(1, 1, 3)(x)\na = crop(x, like=y)\nb = crop(x, y)")
    assert g.node("a").inputs == g.node("b").inputs == ("x", "y")


def test_outputs_explicit_and_default():
    text = "x = input(1, 2, H)\na = ReLU()(x)\nb = Tanh()(x)\n"
    assert parse(text).outputs == ("b",)
    assert parse(text + "output(a, b)").outputs == ("a", "b")
    assert parse(text + "output(x)").outputs == ("x",)


def test_two_inputs_and_symbols():
    g = parse("a = input(N, 3, H, W)\nb = input(N, 1, H, W)\nc = cat([a, b], dim=1)")
    assert [n.name for n in g.inputs] == ["a", "b"]
    assert g.symbols == ("N", "H", "W")


def test_reassigned_names_get_the_first_free_suffix():
    g = parse(src('''
        x = input(N, 4, H, W)
        h = ReLU()(x)
        h_1 = Tanh()(x)
        h = Sigmoid()(h)
        h = Conv2d(4, 4, 1, name="h_3")(h)
        h = GELU()(h)
        h = h + h_1
    '''))
    assert names(g)[1:] == [("h", "layer", "h"), ("h_1", "layer", "h_1"), ("h_2", "layer", "h_2"),
                            ("h_3", "layer", "h_3"), ("h_4", "layer", "h_4"), ("h_5", "add", None)]
    assert g.node("h_2").inputs == ("h",)
    assert g.node("h_4").inputs == ("h_3",)
    assert g.node("h_5").inputs == ("h_4", "h_1")


def test_reassigning_an_input_name_suffixes_the_new_value():
    g = parse("x = input(1, 3, 5, 5)\nx = ReLU()(x)\nx = ReLU()(x)")
    assert [n.name for n in g.nodes] == ["x", "x_1", "x_2"]


def test_name_keyword_overrides_the_layer_name_only():
    g = parse("x = input(1, 3, H, W)\ny = Conv2d(3, 8, 3, name='stem-conv_1')(x)")
    assert (g.node("y").name, g.node("y").layer_name) == ("y", "stem-conv_1")


def test_argument_literals():
    g = parse(src('''
        x = input(N, 4, H, W)
        a = Conv2d(4, 4, (3, 1), stride=[2, 1], padding=(1, 0), bias=False, padding_mode='reflect')(x)
        b = LeakyReLU(-0.25)(a)
        c = Upsample(None, (2, 1.5), "nearest", None)(b)
        d = Flatten(-3, -1)(c)
        e = Dropout(p=+0.5, inplace=True)(d)
    '''))
    a = g.node("a").layer
    assert isinstance(a, Conv) and (a.kernel_size, a.stride, a.padding, a.bias, a.padding_mode) == (
        (3, 1), (2, 1), ((1, 1), (0, 0)), False, "reflect")
    assert g.node("b").layer.params == (("negative_slope", -0.25),)
    assert g.node("c").layer.scale_factor == (2.0, 1.5)
    assert (g.node("d").layer.start_dim, g.node("d").layer.end_dim) == (-3, -1)
    assert g.node("e").layer.params == (("p", 0.5),)


def test_assume_and_expect():
    g = parse(src('''
        x = input(N, 3, H, W)
        assume(H % 16 == 0, H >= 64, 32 <= W <= 512 and W % 2 != 0)
        y = Conv2d(3, 8, 3, stride=2, padding=1)(x)
        expect(y, N, 8, (H - 1) // 2 + 1, -(-W // 2))
    '''))
    (a,) = g.assumes
    H, W = D.sym("H"), D.sym("W")
    assert isinstance(a, Assume) and a.loc == Loc("<string>", 2, 1)
    assert a.text == "H % 16 == 0, H >= 64, 32 <= W <= 512 and W % 2 != 0"
    assert a.conds == ((H % 16, "==", 0), (H, ">=", 64), (32, "<=", W), (W, "<=", 512), (W % 2, "!=", 0))
    (e,) = g.expects
    assert isinstance(e, Expect) and e.value == "y" and e.text == "y, N, 8, (H - 1) // 2 + 1, -(-W // 2)"
    assert e.dims == (D.sym("N"), 8, (H - 1) // 2 + 1, D.ceildiv(W, 2))
    assert D.evaluate(e.dims[3], {"W": 7}) == 4


def test_whitespace_comments_semicolons_and_multiline_calls():
    g = parse("x = input(1, 2, 6)  # the input\n\n\ny = Conv1d(2, 2,\n    3,\n    padding=1)(x); z = ReLU()(y)\n")
    assert [n.name for n in g.nodes] == ["x", "y", "z"]
    assert g.node("y").loc == Loc("<string>", 4, 5) and g.node("z").loc == Loc("<string>", 6, 24)


def test_parse_layer():
    spec = parse_layer("ConvTranspose2d(1, 1, 3, stride=2, padding=1)")
    assert isinstance(spec, ConvTranspose) and spec.stride == (2, 2) and spec.padding == ((1, 1), (1, 1))
    assert parse_layer("  nn.ReLU()  ") == Elementwise(type_name="ReLU")
    with pytest.raises(LayerConfigError, match=r"^<layer>:1:1: error: Conv2d: missing required argument"):
        parse_layer("Conv2d(1, 1)")
    with pytest.raises(DSLSyntaxError, match=r"^<layer>:1:1: error: expected one layer constructor call"):
        parse_layer("input(1, 1, 3)")
    with pytest.raises(DSLSyntaxError, match=r"^<layer>:1:17: error: not allowed in a .cg file: a lambda"):
        parse_layer("Conv2d(1, 1, 3, lambda: 0)")


def test_load_reads_a_file_and_reports_its_path(tmp_path):
    f = tmp_path / "m.cg"
    f.write_text('"""Doc."""\nx = input(1, 1, 5)\nConv1d(1, 1, 3, padding=4)\n', encoding="utf-8")
    g = load(f)
    assert g.filename == str(f) and g.node("0").loc == Loc(str(f), 3, 1)
    missing = tmp_path / "nope.cg"
    with pytest.raises(ConvGraphError) as info:
        load(missing)
    assert str(info.value) == f"{missing}:0:0: error: cannot read {missing}: No such file or directory"
    bad = tmp_path / "bad.cg"
    bad.write_bytes(b"x = input(1, 1, 5)\n# caf\xe9\n")
    with pytest.raises(DSLSyntaxError, match=r"bad\.cg:2:6: error: the file is not UTF-8 text \(byte 0xe9\)"):
        load(bad)


def test_columns_count_characters_not_bytes():
    with pytest.raises(DSLSyntaxError) as info:
        parse("x = input(1, 1, 5)\ny = Identity('ééé')(x); z = Bogus()(y)")
    assert info.value.loc == Loc("<string>", 2, 29)  # é is one column


# --------------------------------------------------------------------------------------------
# Bad input: message and exact position
# --------------------------------------------------------------------------------------------

X = "x = input(N, 3, H, W)\n"

ERRORS = [
    # unknown layers, with a did-you-mean
    (X + "y = Conv2D(3, 8, 3)(x)", DSLSyntaxError, "2:5",
     "unknown layer or function 'Conv2D' (did you mean 'Conv2d'?)"),
    (X + "y = nn.Conv2D(3, 8, 3)(x)", DSLSyntaxError, "2:5", "unknown layer 'nn.Conv2D' (did you mean 'Conv2d'?)"),
    (X + "y = Conv3x3(3, 8)(x)", DSLSyntaxError, "2:5", "unknown layer or function 'Conv3x3' (did you mean 'Conv3d'?)"),
    # argument count, types, keywords: re-anchored at the layer call
    (X + "y = ReLU()(x)\nz = Conv2d(3, 8)(y)", LayerConfigError, "3:5",
     "Conv2d: missing required argument 'kernel_size'"),
    (X + "y = ReLU(False, 1)(x)", LayerConfigError, "2:5", "ReLU: takes at most 1 positional argument, got 2"),
    (X + "y = Conv2d(3, 8, 2.5)(x)", LayerConfigError, "2:5",
     "Conv2d: kernel_size must be an int or a tuple of 2 ints, got 2.5"),
    (X + "y = Conv2d(3, 8, 3, bias='no')(x)", LayerConfigError, "2:5", "Conv2d: bias must be True or False, got 'no'"),
    (X + "y = Conv2d(3, 8, 3, padd=1)(x)", LayerConfigError, "2:5",
     "Conv2d: unexpected keyword argument 'padd' (did you mean 'padding'?)"),
    (X + "y = Conv2d(3, 8, 3, in_channels=3)(x)", LayerConfigError, "2:5",
     "Conv2d: got multiple values for argument 'in_channels'"),
    # PyTorch's rules
    (X + "y = Conv2d(3, 8, 3, groups=2)(x)", LayerConfigError, "2:5",
     "Conv2d: in_channels (3) must be divisible by groups (2)"),
    (X + "y = ConvTranspose2d(3, 3, 3, stride=(2, 1), output_padding=(2, 1))(x)", LayerConfigError, "2:5",
     "ConvTranspose2d: output_padding (2, 1) must be smaller than either stride (2, 1) "
     "or dilation (1, 1) on every axis"),
    (X + "y = nn.Conv2d(3, 8, 3, stride=2, padding='same')(x)", LayerConfigError, "2:5",
     "Conv2d: padding='same' is not supported for strided convolutions (stride (2, 2))"),
    (X + "y = ConvTranspose2d(3, 8, 3, padding='same')(x)", LayerConfigError, "2:5",
     "ConvTranspose2d: string padding ('same') is not supported for transposed convolutions; give the padding as ints"),
    ("input(1, 3, 8)\nConv1d(3, 3, 3, padding=-1)", LayerConfigError, "2:1",
     "Conv1d: padding must be non-negative, got -1"),
    # values
    (X + "y = Conv2d(3, 8, 3)(z)", GraphError, "2:21", "undefined value 'z'"),
    (X + "y = ReLU()(x)\nz = cat([y, w], dim=1)", GraphError, "3:13", "undefined value 'w'"),
    (X + "y = ReLU()(x)\nz = y + yy", GraphError, "3:9", "undefined value 'yy' (did you mean 'y'?)"),
    (X + "x = input(N, 3, H, W)", GraphError, "2:5", "reused value 'x': already defined at line 1"),
    (X + "input(1, 3, 5, 5)", GraphError, "2:1", "reused value 'x': already defined at line 1"),
    (X + "y = ReLU()(x)\noutput(y, x, y)", GraphError, "3:14", "reused value 'y': listed twice in output()"),
    (X + "output(x)\noutput(x)", DSLSyntaxError, "3:1", "output() is given twice (first at line 2)"),
    (X + "a = ReLU(name='r')(x)\nb = ReLU(name='r')(x)", GraphError, "3:5", "layer name 'r' is already used at line 2"),
    # empty file, no input, syntax errors
    ("", DSLSyntaxError, "1:1", "no input: a .cg file starts with an input, e.g. x = input(N, 3, H, W)"),
    ('"""Only a docstring."""\n# and a comment\n', DSLSyntaxError, "1:1",
     "no input: a .cg file starts with an input, e.g. x = input(N, 3, H, W)"),
    ("Conv2d(1, 1, 3)", DSLSyntaxError, "1:1",
     "no current value for this layer: declare an input first, e.g. input(1, 3, H, W)"),
    ("x = input(N, 3, H, W\ny = ReLU()(x)\n", DSLSyntaxError, "1:10", "invalid syntax: '(' was never closed"),
    (X + "y = Conv2d(3, 8, 3)(x) z", DSLSyntaxError, "2:24", "invalid syntax"),
    (X + "  y = ReLU()(x)", DSLSyntaxError, "2:2", "invalid syntax: unexpected indent"),  # as Python reports it
    # input()
    ("x = input(N, 3)", DSLSyntaxError, "1:5", "input() takes N, C and 1 to 3 spatial sizes (3 to 5 entries), got 2"),
    ("x = input(N, 3, 0, W)", DSLSyntaxError, "1:17", "an input size is a positive int or a symbol name, got 0"),
    ("x = input(N, 3, H, 2.5)", DSLSyntaxError, "1:20", "an input size is a positive int or a symbol name, got 2.5"),
    ("x = input(N, 3, Conv2d, W)", DSLSyntaxError, "1:17", "'Conv2d' cannot be a size symbol: it is a reserved name"),
    (X + "H = ReLU()(x)", DSLSyntaxError, "2:1", "'H' is a size symbol (line 1) and cannot also name a value"),
    (X + "cat = cat([x, x])", DSLSyntaxError, "2:1", "'cat' cannot name a value: it is a reserved name"),
    # statement forms
    (X + "a, b = x, x", DSLSyntaxError, "2:1", "assign to exactly one plain name, e.g. h = ..."),
    (X + "y = Conv2d(3, 8, 3)", DSLSyntaxError, "2:5", "apply the layer to a value: y = Conv2d(...)(x)"),
    (X + "Conv2d(3, 8, 3)(x)", DSLSyntaxError, "2:1",
     "assign an applied layer to a name, e.g. h = Conv2d(...)(x); a bare Conv2d(...) applies to the current value"),
    (X + "cat([x, x], dim=1)", DSLSyntaxError, "2:1", "assign the result of cat(...) to a name"),
    (X + "y = x / x", DSLSyntaxError, "2:5", "values combine with +, - or * (elementwise, with broadcasting)"),
    (X + "y = x + x + x", DSLSyntaxError, "2:5", "write one operator per statement: name the partial result first"),
    (X + "y = cat([x, x], dim=1, out=x)", DSLSyntaxError, "2:24",
     "cat takes a list of values and dim: cat([a, b], dim=1)"),
    (X + "y = cat(x, dim=1)", DSLSyntaxError, "2:9", "cat takes a list of values and dim: cat([a, b], dim=1)"),
    (X + "y = crop(x)", DSLSyntaxError, "2:5", "crop takes a value and a target: crop(v, like=w)"),
    (X + "y = Conv2d(3, 8, 3)(x, x)", DSLSyntaxError, "2:5",
     "a layer is applied to exactly one value, e.g. Conv2d(3, 8, 3)(x)"),
    (X + "y = Conv2d(3, 8, H)(x)", DSLSyntaxError, "2:18",
     "'H' is not a literal: layer arguments are numbers, strings, True/False/None or tuples of them "
     "(size symbols belong in input(), assume() and expect())"),
    (X + "y = ReLU(name='a..b')(x)", DSLSyntaxError, "2:15",
     "name= must be a module path: names of letters, digits, '_' or '-' joined by '.', e.g. 'inc.double_conv.0' "
     "(at most 256 characters)"),
    (X + "'a stray string'", DSLSyntaxError, "2:1", "a string statement is only allowed as the module docstring"),
    (X + "assume(Q > 1)", DSLSyntaxError, "2:8", "unknown size symbol 'Q' (the inputs declare: N, H, W)"),
    (X + "assume(H or W)", DSLSyntaxError, "2:8", "a condition compares size expressions, e.g. H % 16 == 0 or H >= 64"),
    (X + "assume(H in W)", DSLSyntaxError, "2:8", "conditions use ==, !=, <, <=, > or >="),
    (X + "assume(H // W == 1)", DSLSyntaxError, "2:8",
     "cannot use 'H // W' as a size: floor division by QA(m=1, n=0, base=Var(name='W')): need a positive int"),
    (X + "assume(H % 0 == 1)", DSLSyntaxError, "2:8",
     "cannot use 'H % 0' as a size: floor division by 0: need a positive int"),
    (X + "assume(H * 1.5 > 2)", DSLSyntaxError, "2:12", "size expressions use ints, size symbols and + - * // %"),
    (X + "expect(x, N, 3)\nexpect(z, N)", GraphError, "3:8", "undefined value 'z'"),
]

INJECTIONS = [
    (X + "__import__('os').system('touch PWNED')", "2:1",
     "attribute access is not allowed (only the nn. and torch.nn. layer prefixes)"),
    (X + "y = __import__('os')", "2:5", "unknown layer or function '__import__'"),
    (X + "os.system('touch PWNED')", "2:1",
     "attribute access is not allowed: 'os.system' (only the nn. and torch.nn. layer prefixes, "
     "F./torch.nn.functional. functions and torch.cat, torch.flatten, ...)"),
    (X + "y = x.__class__", "2:5", "not allowed in a .cg file: attribute access (it is parsed, never run)"),
    (X + "y = x.__class__.__base__.__subclasses__()", "2:5",
     "attribute access is not allowed: 'x.__class__.__base__.__subclasses__' "
     "(only the nn. and torch.nn. layer prefixes, F./torch.nn.functional. functions and torch.cat, "
     "torch.flatten, ...)"),
    (X + "y = nn.ReLU.__init__(x)", "2:5",
     "attribute access is not allowed: 'nn.ReLU.__init__' (only the nn. and torch.nn. layer prefixes, "
     "F./torch.nn.functional. functions and torch.cat, torch.flatten, ...)"),
    (X + "y = (lambda: __import__('os').system('touch PWNED'))()", "2:6",
     "not allowed as a callee: a lambda; call a layer or a DSL function"),
    (X + "f = lambda: 0", "2:5", "not allowed in a .cg file: a lambda (it is parsed, never run)"),
    (X + "y = [ReLU()(x) for i in range(3)]", "2:5",
     "not allowed in a .cg file: a comprehension (it is parsed, never run)"),
    (X + "y = Conv2d(3, 8, [k for k in (3, 3)])(x)", "2:18",
     "not allowed in a .cg file: a comprehension (it is parsed, never run)"),
    (X + "y = ReLU(name=f\"{__import__('os').system('touch PWNED')}\")(x)", "2:15",
     "name= must be a module path: names of letters, digits, '_' or '-' joined by '.', e.g. 'inc.double_conv.0' "
     "(at most 256 characters)"),
    (X + "y = Conv2d(3, 8, f'{3}')(x)", "2:18", "not allowed in a .cg file: an f-string (it is parsed, never run)"),
    (X + "y = Conv2d(3, 8, 99999999999999999999)(x)", "2:18", "integer literal too large (at most 2**31 in magnitude)"),
    (X + "y = Conv2d(3, 8, -2147483649)(x)", "2:18", "integer literal too large (at most 2**31 in magnitude)"),
    (X + "y = Conv2d(3, 8, 3, padding=1e999)(x)", "2:29", "float literal out of range"),
    (X + "y = Identity('" + "a" * 300 + "')(x)", "2:14", "string literal too long (300 characters, at most 256)"),
    (X + "y = Identity(" + repr(tuple(range(100))) + ")(x)", "2:14",
     "literal too large or nested too deeply (at most 64 items, 4 levels)"),
    (X + "y = Identity(((((((1,),),),),),))(x)", "2:18",
     "literal too large or nested too deeply (at most 64 items, 4 levels)"),
    (X + "y = Conv2d(3, 8, 3 ** 99999)(x)", "2:18",
     "'**' is not an operator of the DSL (its integer operators are + - * // %)"),
    (X + "y = Conv2d(3, 8, b'3')(x)", "2:18", "bytes literals are not allowed"),
    (X + "while True:\n    pass", "2:1", "not allowed in a .cg file: a 'while' loop (it is parsed, never run)"),
    (X + "def f():\n    return __import__('os').system('touch PWNED')\nf()", "3:5",
     "block 'f' returns a value name or a tuple of them, e.g. return h or return a, b (at most 16)"),
    (X + "@__import__('os').system\ndef f(): pass", "2:2", "block 'f' takes no decorators"),
    (X + "class A:\n    __import__('os').system('touch PWNED')", "2:1",
     "not allowed in a .cg file: a class definition (it is parsed, never run)"),
    ("import os\n" + X, "1:1", "not allowed in a .cg file: an import (it is parsed, never run)"),
    ("from os import system\n" + X, "1:1", "not allowed in a .cg file: an import (it is parsed, never run)"),
    (X + "y = x[0]", "2:7", "index with slices such as v[:, :16] or v[:, :, :-2] (a single index would drop the dim)"),
    (X + "y = Conv2d(*[3, 8, 3])(x)", "2:12",
     "not allowed in a .cg file: a starred argument (it is parsed, never run)"),
    (X + "y = Conv2d(3, 8, **{'kernel_size': 3})(x)", "2:18", "**keyword unpacking is not allowed"),
    (X + "(y := ReLU()(x))", "2:2",
     "not allowed in a .cg file: an assignment expression (:=) (it is parsed, never run)"),
    (X + "y = eval('1')", "2:5", "unknown layer or function 'eval'"),
    (X + "exec(\"open('PWNED', 'w')\")", "2:1", "unknown layer or function 'exec' (did you mean 'expect'?)"),
    (X + "y = open('PWNED', 'w')", "2:5", "unknown layer or function 'open'"),
    (X + "y = Conv2d(3, 8, __import__('os').system('touch PWNED'))(x)", "2:18",
     "not allowed in a .cg file: a call (it is parsed, never run)"),
    (X + "assume(__import__('os').system('touch PWNED') == 0)", "2:8",
     "size expressions use ints, size symbols and + - * // %"),
    ("x = input(N, 3, __import__('os').system('touch PWNED'), W)", "1:17",
     "not allowed in a .cg file: a call (it is parsed, never run)"),
    (X + "with open('PWNED', 'w'):\n    pass", "2:1",
     "not allowed in a .cg file: a 'with' statement (it is parsed, never run)"),
    (X + "y = globals()", "2:5", "unknown layer or function 'globals'"),
    (X + "x += x", "2:1", "not allowed in a .cg file: an augmented assignment (it is parsed, never run)"),
    (X + "for i in []: pass", "2:1", "not allowed in a .cg file: a 'for' loop (it is parsed, never run)"),
    (X + "y = ReLU()(x) if True else x", "2:5",
     "not allowed in a .cg file: a conditional expression (it is parsed, never run)"),
    ("x = input(1, 1, 5)\x00", "1:19", "the source contains a NUL character"),
]


def test_parse_validates_through_the_shape_stage(monkeypatch):
    import convgraph.api

    def fail(graph):
        raise ShapeError("from the shape stage", graph.node("y").loc)

    monkeypatch.setattr(convgraph.api, "infer", fail)
    with pytest.raises(ShapeError, match=r"^m.cg:2:5: error: from the shape stage$"):
        convgraph.api.parse(X + "y = ReLU()(x)", filename="m.cg")


def _check(text, cls, pos, message):
    with pytest.raises(ConvGraphError) as info:
        parse(text, filename="m.cg")
    err = info.value
    assert isinstance(err, cls), err
    rendered = err.render()
    assert "\n" not in rendered
    assert rendered == f"m.cg:{pos}: error: {message}"


@pytest.mark.parametrize("text, cls, pos, message", ERRORS, ids=[f"{i}:{e[3]}"[:60] for i, e in enumerate(ERRORS)])
def test_bad_input_message_and_position(text, cls, pos, message):
    _check(text, cls, pos, message)


@pytest.mark.parametrize("text, pos, message", INJECTIONS, ids=[f"{i}:{e[2]}"[:60] for i, e in enumerate(INJECTIONS)])
def test_injection_attempts_are_rejected(text, pos, message):
    _check(text, DSLSyntaxError, pos, message)


def test_huge_source_and_deep_nesting_are_rejected():
    with pytest.raises(DSLSyntaxError, match=r"1:1: error: the source is too large"):
        parse("#" * 1_000_001)
    with pytest.raises(DSLSyntaxError):
        parse(X + "y = Identity(" + "(" * 300 + ")" * 300 + ")(x)")
    with pytest.raises(DSLSyntaxError, match="nested too deeply"):
        parse(X + "assume(" + "-" * 100 + "H > 0)")
    with pytest.raises(DSLSyntaxError, match="nested too deeply"):
        parse(X + "assume(" + " + ".join(["H"] * 200) + " > 0)")


_WATCHED = ("exec", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen", "os.remove")


@pytest.fixture
def audit_events():
    """The audit events (PEP 578) raised while the test body runs."""
    events: list[str] = []
    state = {"on": False}

    def hook(event, args):
        if state["on"] and event.startswith(_WATCHED):
            events.append(event)

    sys.addaudithook(hook)  # hooks cannot be removed; this one is inert outside the window
    state["on"] = True
    yield events
    state["on"] = False


def test_no_payload_ever_runs(tmp_path, monkeypatch, audit_events):
    monkeypatch.chdir(tmp_path)
    exec("pass")  # the hook is live: this one is seen
    assert audit_events == ["exec"]
    audit_events.clear()
    target = tmp_path / "PWNED"
    payloads = [text for text, _, _ in INJECTIONS] + [
        X + "y = ReLU()(x)\nassume(open('PWNED', 'w') == 0)",
        X + "expect(x, __import__('os').system('touch PWNED'))",
        X + "y = Conv2d(3, 8, 3, name=exec(\"open('PWNED', 'w')\"))(x)",
        X + "y = cat([x, x], dim=__import__('os').system('touch PWNED'))",
        X + "output(__import__('os').system('touch PWNED'))",
        X + "try:\n    open('PWNED', 'w')\nfinally:\n    pass",
        X + "if open('PWNED', 'w'):\n    pass",
        X + "y = [open('PWNED', 'w')][0]",
        X + "del x",
    ]
    for text in payloads:
        with pytest.raises(ConvGraphError):
            parse(text.replace("PWNED", str(target)))
        assert not target.exists(), text
    assert audit_events == []
