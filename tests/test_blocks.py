"""The DSL as a language: constants, aliases, bounded integer arithmetic, blocks, Sequential and
module-path names; random block programs against their hand expansion; hostile programs (each one
positioned line, exit 2, within a second, nothing executed)."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convgraph as cg
from convgraph.cli import main
from convgraph.errors import ConvGraphError, GraphError, Loc
from convgraph.front.catalogue import construct
from convgraph.front.dsl import parse

ROOT = Path(__file__).resolve().parent.parent


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def layers(g):
    return [(n.name, n.layer_name, n.inputs) for n in g.nodes if n.op == "layer"]


# --------------------------------------------------------------------------------------------
# Constants, aliases, arithmetic
# --------------------------------------------------------------------------------------------


def test_constants_aliases_and_arithmetic_in_arguments_and_sizes():
    g = parse(src('''
        C = 4
        K, = (3,)
    ''').replace("K, = (3,)\n", "K = 3\n") + src('''
        x = input(N, C - 1, H, W)
        assume(H % (2 * C) == 0)
        h = Conv2d(C - 1, 2 * C, K, padding=K // 2, stride=(1, -(-3 // 2)))(x)
        a = h
        f = Flatten()(a)
        y = Linear(128 * 4 * 4, C * C % 7 + 1)(f)
        expect(h, N, 2 * C, H, (W - 1) // 2 + 1)
    '''))
    assert g.node("x").dims == ("N", 3, "H", "W")
    assert g.node("h").layer == construct("Conv2d", (3, 8, 3), {"padding": 1, "stride": (1, 2)})
    assert g.node("f").inputs == ("h",)  # the alias is the same value
    assert g.node("y").layer == construct("Linear", (2048, 3))


def test_or_picks_a_default_as_python_does():
    g = parse(src('''
        x = input(1, 4, 9)
        def B(x, cout, mid=None):
            c = Conv1d(4, mid or cout, 1)(x)
            return c
        a = B(x, 5)
        b = B(x, 5, 6)
        c = B(x, 5, mid=0)
    '''))
    assert [g.node(n).layer.out_channels for n in "abc"] == [5, 6, 5]


def test_constants_in_operators_and_slices():
    g = parse("C = 4\nS = 0.5\nx = input(1, 8, 9)\na = x * S\nb = x[:, :C]\nc = x * (C // 2)\nd = C * x\n")
    assert [(n.op, n.attrs) for n in g.nodes[1:3]] == [
        ("scalar", (("op", "mul"), ("value", 0.5))), ("slice", (("index", ((None, None), (None, 4))),))]
    assert g.node("c").attrs == (("op", "mul"), ("value", 2.0)) and g.node("d").attrs == (("op", "mul"), ("value", 4.0))
    with pytest.raises(ConvGraphError, match=r"^<string>:6:10: error: write one operator per statement"):
        parse("C = 4\nx = input(1, 8, 9)\ny = x + x\nz = (C + 1) * (C - 1)\nw = z * C\nv = y * (x * 2)")


def test_reassigning_constants_and_values():
    g = parse("C = 2\nx = input(1, C, 5)\nC = C * 3\ny = Conv1d(2, C, 1)(x)\ny = C")
    assert g.node("y").layer.out_channels == 6 and g.outputs == ("y",)


# --------------------------------------------------------------------------------------------
# Sequential and module paths
# --------------------------------------------------------------------------------------------


def test_sequential_children_are_numbered_like_torch(torch):
    g = parse(src('''
        x = input(N, 3, H, W)
        body = nn.Sequential(Conv2d(3, 8, 3), ReLU(), Sequential(Conv2d(8, 8, 1), Tanh()))(x)
        Sequential(BatchNorm2d(8), ReLU(), name="tail")
        BatchNorm2d(8)
    '''))
    assert layers(g) == [("body.0", "body.0", ("x",)), ("body.1", "body.1", ("body.0",)),
                         ("body.2.0", "body.2.0", ("body.1",)), ("body", "body.2.1", ("body.2.0",)),
                         ("tail.0", "tail.0", ("body",)), ("tail", "tail.1", ("tail.0",)), ("2", "2", ("tail",))]
    tm = torch.nn.Sequential()
    tm.add_module("body", torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(),
                                              torch.nn.Sequential(torch.nn.Conv2d(8, 8, 1), torch.nn.Tanh())))
    tm.add_module("tail", torch.nn.Sequential(torch.nn.BatchNorm2d(8), torch.nn.ReLU()))
    tm.add_module("2", torch.nn.BatchNorm2d(8))
    from convgraph.export.weights import param_specs

    want = {k: tuple(v.shape) for k, v in tm.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert param_specs(g) == want


def test_dotted_names_and_their_conflicts():
    g = parse("x = input(1, 2, 5)\ny = Conv1d(2, 2, 1, name='inc.double_conv.0')(x)")
    assert g.node("y").layer_name == "inc.double_conv.0"
    bad = [
        ("y = Conv1d(2, 2, 1, name='a')(x)\nz = Conv1d(2, 2, 1, name='a.0')(y)", "3:5",
         "layer name 'a.0' would be inside the layer 'a' (line 2): a layer has no children"),
        ("y = Conv1d(2, 2, 1, name='a.0')(x)\nz = Conv1d(2, 2, 1, name='a')(y)", "3:5",
         "layer name 'a' is already a module path (line 2): a layer has no children"),
        ("y = Sequential(ReLU(name='r'))(x)", "2:16", "a Sequential child is named by its index: drop name="),
        ("y = Sequential()(x)", "2:5", "Sequential takes 1 to 64 layers, got 0"),
        ("y = Sequential(ReLU(), p=1)(x)", "2:24", "Sequential takes layers and name= only"),
        ("y = Sequential(ReLU()(x))(x)", "2:16",
         'a Sequential child is a layer constructor, e.g. Sequential(Conv2d(3, 8, 3), ReLU()); '
         'a block is called with name=, e.g. B(x, name="seq.1")'),
    ]
    for text, pos, message in bad:
        with pytest.raises(ConvGraphError) as info:
            parse("x = input(1, 2, 5)\n" + text, "m.cg")
        assert info.value.render() == f"m.cg:{pos}: error: {message}"


# --------------------------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------------------------

BLOCKS = src('''
    """doc"""
    x = input(N, 3, H, W)

    def DoubleConv(x, cin, cout, mid=None):
        """(conv => BN => ReLU) * 2"""
        double_conv = Sequential(
            Conv2d(cin, mid or cout, 3, padding=1, bias=False), BatchNorm2d(mid or cout), ReLU(inplace=True),
            Conv2d(mid or cout, cout, 3, padding=1, bias=False), BatchNorm2d(cout), ReLU(inplace=True))(x)
        return double_conv

    def Down(x, cin, cout):
        p = MaxPool2d(2, name="maxpool_conv.0")(x)
        h = DoubleConv(p, cin, cout, name="maxpool_conv.1")
        return h

    def Split(x, c):
        a = Conv2d(c, c, 1)(x)
        b = Conv2d(c, c, 1)(x)
        return a, b

    inc = DoubleConv(x, 3, 8)
    down1 = Down(inc, 8, 16)
    l, r = Split(down1, 16, name="split")
    s = l + r
    same = DoubleConv(s, 16, 16, 4)
    same = DoubleConv(same, 16, 16)
''')


def test_block_calls_name_layers_by_module_path():
    g = parse(BLOCKS, "m.cg")
    names = [n.layer_name for n in g.layers()]
    assert names[:6] == [f"inc.double_conv.{i}" for i in range(6)]
    assert names[6:8] == ["down1.maxpool_conv.0", "down1.maxpool_conv.1.double_conv.0"]
    assert names[13:15] == ["split.a", "split.b"]
    assert names[15] == "same.double_conv.0" and names[21] == "same_1.double_conv.0"
    # what a block returns takes the name it is assigned to; the rest is <path>.<local>
    assert g.node("inc").layer_name == "inc.double_conv.5"
    assert g.node("down1").inputs == ("down1.maxpool_conv.1.double_conv.4",)
    assert g.node("down1.maxpool_conv.1.double_conv.0").inputs == ("down1.p",)
    assert (g.node("l").layer_name, g.node("r").layer_name, g.node("s").inputs) == ("split.a", "split.b", ("l", "r"))
    assert g.node("same.double_conv.0").layer.out_channels == 4
    assert g.outputs == ("same_1",)
    # positions: the line inside the block, and the call chain
    conv = g.node("down1.maxpool_conv.1.double_conv.0")
    assert conv.loc == Loc("m.cg", 7, 9, (("DoubleConv", Loc("m.cg", 13, 9)), ("Down", Loc("m.cg", 22, 9))))


def test_errors_inside_an_expansion_name_both_places(tmp_path, capsys):
    text = BLOCKS.replace("down1 = Down(inc, 8, 16)", "down1 = Down(inc, 7, 16)")
    with pytest.raises(ConvGraphError) as info:
        cg.parse(text, "m.cg")
    assert info.value.render() == (
        "m.cg:7:9: error: Conv2d 'down1.maxpool_conv.1.double_conv.0': expected 7 input channels (in_channels=7), "
        "got 8 (in DoubleConv, called at m.cg:13:9; in Down, called at m.cg:22:9)")
    text = BLOCKS.replace('p = MaxPool2d(2, name="maxpool_conv.0")(x)', 'p = MaxPool2d(2, stride=0)(x)')
    path = tmp_path / "m.cg"
    path.write_text(text)
    assert main(["shapes", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"{path}:12:9: error: MaxPool2d: stride must be positive, got 0 (in Down, called at {path}:22:9)\n"


def test_block_call_errors():
    head = "x = input(1, 2, 5)\ndef B(x, c, k=1):\n    y = Conv1d(c, c, k)(x)\n    return y\n"
    bad = [
        ("z = B(x)", "5:5", "block 'B': missing argument 'c'"),
        ("z = B(x, 2, 1, 1)", "5:5", "block 'B' takes 3 arguments, got 4"),
        ("z = B(x, 2, kk=3)", "5:13", "block 'B' has no parameter 'kk' (did you mean 'k'?)"),
        ("z = B(x, 2, c=3)", "5:13", "block 'B' got multiple values for 'c'"),
        ("z = B(x, 2, **{})", "5:13", "block 'B' has no parameter None"),
        ("a, b = B(x, 2)", "5:8", "a call of block 'B' assigned to several names needs name= for its module path, "
                                  "e.g. name=\"a\""),
        ("a, b = B(x, 2, name='q')", "5:8", "block 'B' returns 1 value, assigned to 2 names"),
        ("B(x, 2)", "5:1", "assign the result of block 'B' to a name, e.g. h = B(...)"),
        ("z = B(x, 2)\nw = B(z, 2, name='z')", "6:5", "module path 'z' is already used at line 5"),
        ("z = B(x, x)", "3:16", "'c' is a value, not a constant: layer arguments are numbers, strings, "
                               "True/False/None, constants or tuples of them (in B, called at m.cg:5:5)"),
        ("B = 3", "5:1", "'B' names a block (line 2) and cannot also name a value"),
        ("def B(x):\n    return x", "5:1", "block 'B' is already defined at line 2"),
        ("def C(x):\n    y = input(1, 2, 5)\n    return y\nz = C(x)", "6:9",
         "input() belongs at the top level of the file, not inside block 'C' (in C, called at m.cg:8:5)"),
        ("def C(y):\n    z = ReLU()(x)\n    return z\nw = C(x)", "6:16",
         "'x' is a value of the file, not of block 'C': pass it as a parameter (in C, called at m.cg:8:5)"),
    ]
    for text, pos, message in bad:
        with pytest.raises(ConvGraphError) as info:
            parse(head + text, "m.cg")
        assert info.value.render() == f"m.cg:{pos}: error: {message}", text


def test_a_value_returned_twice_takes_the_first_name():
    g = parse("x = input(1, 2, 5)\ndef B(x):\n    h = ReLU()(x)\n    return h, h\na, b = B(x, name='q')\nc = a + b")
    assert [(n.name, n.layer_name, n.inputs) for n in g.nodes] == [
        ("x", None, ()), ("a", "q.h", ("x",)), ("c", None, ("a", "a"))]


def test_block_parameters_see_file_constants_and_a_block_may_return_its_input():
    g = parse("C = 3\nx = input(1, C, 5)\ndef B(x, y):\n    h = Conv1d(C, C, 1)(y)\n    return x\nz = B(x, x)\n"
              "output(z)")
    assert g.outputs == ("x",) and g.node("z.h").layer.in_channels == 3  # z is another name of x


def test_block_calls_are_recorded_outside_equality():
    """Graph.blocks: each call (nested ones after their parent) with its constant and value arguments,
    what it returns under which names, and the values it made, contiguous in graph order."""
    g = parse(BLOCKS, "m.cg")
    assert [(b.path, b.block) for b in g.blocks] == [
        ("inc", "DoubleConv"), ("down1", "Down"), ("down1.maxpool_conv.1", "DoubleConv"), ("split", "Split"),
        ("same", "DoubleConv"), ("same_1", "DoubleConv")]
    down, inner, split = g.blocks[1:4]
    assert (down.consts, down.inputs, down.outputs, down.returns) == (
        (("cin", 8), ("cout", 16)), (("x", "inc"),), ("down1",), ("h",))
    assert (inner.inputs, inner.outputs, inner.consts[2]) == ((("x", "down1.p"),), ("down1",), ("mid", None))
    assert (split.outputs, split.returns, split.tuple_return) == (("l", "r"), ("a", "b"), True)
    names = [n.name for n in g.nodes]
    for b in g.blocks:
        start = names.index(b.nodes[0])
        assert names[start:start + len(b.nodes)] == list(b.nodes)
        assert all(g.node(n).layer_name is None or g.node(n).layer_name.startswith(b.path + ".") for n in b.nodes)
    assert set(inner.nodes) < set(down.nodes) and down.loc.line == 22
    assert dataclasses.replace(g, blocks=()) == g  # a record of the spelling, as Node.source


# --------------------------------------------------------------------------------------------
# The Python builder: scope and Sequential give the same names
# --------------------------------------------------------------------------------------------


def test_builder_scope_and_sequential_build_the_dsls_graph():
    def double_conv(x, cin, cout):
        return cg.Sequential(cg.Conv2d(cin, cout, 3, padding=1, bias=False), cg.BatchNorm2d(cout),
                             cg.ReLU(inplace=True), name="double_conv")(x)

    x = cg.input("N", 3, "H", "W")
    with cg.scope("inc"):
        inc = double_conv(x, 3, 8)
    with cg.scope("down1"):
        p = cg.MaxPool2d(2, name="maxpool_conv.0")(inc)
        with cg.scope("maxpool_conv.1"):
            down1 = double_conv(p, 8, 16)
    built = cg.build(down1)
    text = src('''
        x = input(N, 3, H, W)
        def DoubleConv(x, cin, cout):
            double_conv = Sequential(Conv2d(cin, cout, 3, padding=1, bias=False), BatchNorm2d(cout),
                                     ReLU(inplace=True))(x)
            return double_conv
        def Down(x, cin, cout):
            p = MaxPool2d(2, name="maxpool_conv.0")(x)
            h = DoubleConv(p, cin, cout, name="maxpool_conv.1")
            return h
        inc = DoubleConv(x, 3, 8)
        down1 = Down(inc, 8, 16)
    ''')
    parsed = parse(text)
    assert [(n.layer_name, n.layer) for n in built.layers()] == [(n.layer_name, n.layer) for n in parsed.layers()]
    unnamed = cg.build(cg.Sequential(cg.Conv2d(3, 4, 1), cg.ReLU())(cg.input(1, 3, "H", "W")))
    assert [n.layer_name for n in unnamed.layers()] == ["0", "1"]  # flat, as the DSL's shorthand
    with cg.scope("s"):
        scoped = cg.build(cg.ReLU()(cg.Tanh()(cg.input(1, 3, "H", "W"))))
    assert [n.layer_name for n in scoped.layers()] == ["s.0", "s.1"]
    child = cg.ReLU()
    cg.Sequential(child)
    with pytest.raises(GraphError, match="is child of the Sequential"):
        child(cg.input(1, 3, "H", "W"))


# --------------------------------------------------------------------------------------------
# Differential: random block programs == their expansion written by hand
# --------------------------------------------------------------------------------------------

C0 = 4  # every generated layer keeps the channel count, so any composition is valid


@dataclasses.dataclass
class _Prog:
    """A random program: blocks (each a list of statements) and the file's calls."""

    blocks: list[list[tuple]]
    calls: list[tuple[int, str | None]]  # (block index, name= or None)


@st.composite
def programs(draw):
    n_blocks = draw(st.integers(1, 3))
    blocks = []
    for i in range(n_blocks):
        stmts = draw(st.lists(st.one_of(
            st.tuples(st.just("conv"), st.sampled_from([1, 3, 5]), st.integers(1, 2)),
            st.tuples(st.just("bn")), st.tuples(st.just("act"), st.sampled_from(["ReLU", "Tanh", "SiLU"])),
            st.tuples(st.just("bare"), st.sampled_from(["ReLU", "BatchNorm2d"])),
            st.tuples(st.just("seq"), st.integers(1, 3)), st.tuples(st.just("add")),
            st.tuples(st.just("call"), st.integers(0, max(0, i - 1)), st.sampled_from([None, "sub", "sub.1"])),
        ), min_size=1, max_size=5))
        blocks.append([s for s in stmts if s[0] != "call" or i > 0])
    calls = draw(st.lists(st.tuples(st.integers(0, n_blocks - 1), st.sampled_from([None, "m", "m.0", "enc.1"])),
                          min_size=1, max_size=4))
    return _Prog(blocks, calls)


_STATEMENTS = {
    "conv": lambda s: f"h = Conv2d(c, c, {s[1]}, padding=({s[1]} - 1) // D * {s[2]}, dilation={s[2]})(x)",
    "bn": lambda s: "h = BatchNorm2d(c)(x)",
    "act": lambda s: f"h = {s[1]}()(x)",
    "bare": lambda s: f"{s[1]}({'c' if s[1] == 'BatchNorm2d' else ''})",
    "seq": lambda s: "h = Sequential(" + ", ".join(["Conv2d(c, c, k, padding=k // 2)"] * s[1]) + ")(x)",
    "add": lambda s: "h = x + x",
    "call": lambda s: f"h = B{s[1]}(x, c{', name=' + repr(s[2]) if s[2] else ''})",
}


def _block_text(prog: _Prog) -> str:
    out = [f"x = input(N, {C0}, H, W)", "D = 2"]
    for i, stmts in enumerate(prog.blocks):
        out.append(f"def B{i}(x, c, k=3):")
        for s in stmts:
            out.append("    " + _STATEMENTS[s[0]](s))
            if s[0] != "bare":
                out.append("    x = h")
        out.append("    return x")
    for j, (b, name) in enumerate(prog.calls):
        src_ = "x" if j == 0 else f"t{j - 1}"
        out.append(f"t{j} = B{b}({src_}, {C0}{', name=' + repr(name) if name else ''})")
    return "\n".join(out) + "\n"


class _Expander:
    """Writes the program with no blocks, following DESIGN's naming rules written out again:
    every layer with its full name=, values v0, v1, ..."""

    def __init__(self, prog: _Prog):
        self.prog, self.lines, self.n = prog, [f"v0 = input(N, {C0}, H, W)"], 0
        self.values: set[str] = set()  # value names the real parser would use
        self.modules: set[str] = set()  # layer names and module paths

    def emit(self, text: str) -> str:
        self.n += 1
        self.lines.append(f"v{self.n} = {text}")
        return f"v{self.n}"

    def fresh(self, base: str, as_layer: bool) -> str:
        suffixes = [base] + [f"{base}_{k}" for k in range(1, 999)]
        return next(n for n in suffixes if n not in self.values and not (as_layer and n in self.modules))

    def call(self, b: int, x: str, path: str) -> str:
        """Expand block ``b`` at module ``path`` on value ``x``; returns the value it returns."""
        cur, modules = x, 0
        for s in self.prog.blocks[b]:
            if s[0] == "bare":
                args = f"{C0}, " if s[1] == "BatchNorm2d" else ""
                cur = self.emit(f"{s[1]}({args}name='{path}.{modules}')({cur})")
                self.values.add(f"{path}.{modules}")
                self.modules.add(f"{path}.{modules}")
            elif s[0] == "add":
                self.values.add(self.fresh(f"{path}.h", False))
                x = cur = self.emit(f"{x} + {x}")
                continue
            elif s[0] == "call":
                x = cur = self.nested(s, x, path)
            else:
                x = cur = self.layer(s, x, self.fresh(f"{path}.h", True))
            modules += 1
        return x

    def nested(self, s: tuple, x: str, path: str) -> str:
        inner = f"{path}.{s[2]}" if s[2] else self.fresh(f"{path}.h", True)
        self.modules.add(inner)
        out = self.call(s[1], x, inner)
        if out != x:  # made by the call: takes the target's name
            self.values.add(self.fresh(f"{path}.h", False))
        return out

    def layer(self, s: tuple, x: str, name: str) -> str:
        self.values.add(name)
        if s[0] == "seq":
            self.modules.add(name)
            for i in range(s[1]):
                self.values.add(f"{name}.{i}")
                self.modules.add(f"{name}.{i}")
                x = self.emit(f"Conv2d({C0}, {C0}, 3, padding=1, name='{name}.{i}')({x})")
            return x
        self.modules.add(name)
        if s[0] == "conv":
            return self.emit(f"Conv2d({C0}, {C0}, {s[1]}, padding={(s[1] - 1) // 2 * s[2]}, dilation={s[2]}, "
                             f"name='{name}')({x})")
        if s[0] == "bn":
            return self.emit(f"BatchNorm2d({C0}, name='{name}')({x})")
        return self.emit(f"{s[1]}(name='{name}')({x})")

    def text(self) -> str:
        x = "v0"
        for j, (b, name) in enumerate(self.prog.calls):
            path = name if name else f"t{j}"
            self.modules.add(path)
            x = self.call(b, x, path)
        return "\n".join(self.lines) + "\n"


def _shape_of(g) -> list[tuple]:
    """The graph without value names or positions: ops, specs, layer names and wiring by index."""
    index = {n.name: i for i, n in enumerate(g.nodes)}
    return [(n.op, n.layer, n.layer_name, tuple(index[v] for v in n.inputs), n.dims) for n in g.nodes]


@settings(max_examples=60)
@given(programs())
def test_random_block_programs_expand_to_their_hand_expansion(prog):
    blocks = _block_text(prog)
    try:
        g = parse(blocks, "p.cg")
    except ConvGraphError as e:
        # the only refusal a generated program may meet: two calls claiming one module path
        assert "is already used" in e.message or "would be inside" in e.message or "already a module path" \
            in e.message, (blocks, e)
        return
    flat = parse(_Expander(prog).text(), "q.cg")
    assert _shape_of(g) == _shape_of(flat), blocks


# --------------------------------------------------------------------------------------------
# Hostile programs: one positioned line, exit 2, within a second, nothing executed
# --------------------------------------------------------------------------------------------

X = "x = input(N, 3, H, W)\n"
CANARY = "CANARY"
BOMB = "".join(f"def B{i}(x):\n" + "".join(f"    x = B{i - 1}(x)\n" for _ in range(10)) + "    return x\n"
               for i in range(1, 7))

HOSTILE = [
    ("recursion", X + "def A(x):\n    y = A(x)\n    return y\nz = A(x)\n", "3:9",
     "block 'A' calls itself: blocks are expanded at parse time and cannot recurse"),
    ("mutual recursion", X + "def A(x):\n    y = B(x)\n    return y\ndef B(x):\n    y = A(x)\n    return y\nz = A(x)\n",
     "3:9", "block 'B' is defined at line 5, after block 'A': a block calls only blocks defined before it "
            "(no recursion)"),
    ("expansion bomb", X + "def B0(x):\n    y = ReLU()(x)\n    return y\n" + BOMB + "z = B6(x)\n", "77:5",
     "too many block expansions: this call of 'B6' expands to more than 5000 statements, the file's calls to "
     "more than 5000 in all"),
    ("expansion bomb by many calls", X + "def B0(x):\n    y = ReLU()(x)\n    return y\n" + BOMB.split("def B3")[0]
     + "".join(f"z{i} = B2(x)\n" for i in range(250)), "40:7",
     "too many block expansions: this call of 'B2' expands to 432 statements, the file's calls to more than "
     "5000 in all"),
    ("power", X + "C = 10 ** 10 ** 10\n", "2:5", "'**' is not an operator of the DSL (its integer operators are "
                                                 "+ - * // %)"),
    ("power in a block", X + "def B(x):\n    C = 9 ** 9 ** 9\n    return x\n", "3:9",
     "'**' is not an operator of the DSL (its integer operators are + - * // %)"),
    ("multiplication bomb", X + "C = 65536\nC = C * C * C * C\n", "3:5", "integer result too large (at most 2**31 in "
                                                                          "magnitude)"),
    ("repetition bomb", X + "C = (1,) * 100000000\n", "2:5", "arithmetic works on ints only (+ - * // %), got (1,)"),
    ("string bomb", X + "C = 'a' * 1000000000\n", "2:5", "arithmetic works on ints only (+ - * // %), got 'a'"),
    ("__import__ in a default", X + f"def B(x, c=__import__('os').system('touch {CANARY}')):\n    return x\n", "2:12",
     "a default is a literal (a number, string, True/False/None or a tuple of them), got a call"),
    ("call in a default", X + f"def B(x, c=open('{CANARY}', 'w')):\n    return x\nz = B(x)\n", "2:12",
     "a default is a literal (a number, string, True/False/None or a tuple of them), got a call"),
    ("name in a default", X + "def B(x, c=x):\n    return x\n", "2:12",
     "a default is a literal (a number, string, True/False/None or a tuple of them), got the name 'x'"),
    ("decorator", X + f"@__import__('os').system('touch {CANARY}')\ndef B(x):\n    return x\n", "2:2",
     "block 'B' takes no decorators"),
    ("import in a block", X + "def B(x):\n    import os\n    return x\n", "3:5",
     "not allowed in a .cg file: an import (it is parsed, never run)"),
    ("lambda in a block", X + f"def B(x):\n    f = lambda: open('{CANARY}', 'w')\n    return x\n", "3:9",
     "not allowed in a .cg file: a lambda (it is parsed, never run)"),
    ("lambda as a default", X + "def B(x, f=lambda: 0):\n    return x\n", "2:12",
     "a default is a literal (a number, string, True/False/None or a tuple of them), got a lambda"),
    ("no return", X + "def B(x):\n    y = ReLU()(x)\nz = B(x)\n", "3:5",
     "block 'B' must end in a return of a value or a tuple of values"),
    ("return in the middle", X + "def B(x):\n    return x\n    y = ReLU()(x)\n    return y\n", "3:5",
     "return must be the last statement of a block"),
    ("used before its definition", X + "z = B(x)\ndef B(x):\n    return x\n", "2:5",
     "block 'B' is used before its definition (line 3): define blocks before using them"),
    ("nested def", X + "def B(x):\n    def C(y):\n        return y\n    return x\n", "3:5",
     "not allowed in a .cg file: a function definition (it is parsed, never run)"),
    ("class in a block", X + f"def B(x):\n    class A:\n        open('{CANARY}', 'w')\n    return x\n", "3:5",
     "not allowed in a .cg file: a class definition (it is parsed, never run)"),
    ("loop in a block", X + "def B(x):\n    while True:\n        pass\n    return x\n", "3:5",
     "not allowed in a .cg file: a 'while' loop (it is parsed, never run)"),
    ("generator", X + "def B(x):\n    y = yield x\n    return x\n", "3:9",
     "not allowed in a .cg file: 'yield' (it is parsed, never run)"),
    ("*args", X + "def B(*x):\n    return x\n", "2:8",
     "block 'B': parameters are plain names with optional literal defaults (no /, *, *args or **kwargs)"),
    ("annotation", X + f"def B(x: open('{CANARY}', 'w')):\n    return x\n", "2:10",
     "annotations are not allowed in a .cg file"),
    ("name parameter", X + "def B(x, name):\n    return x\n", "2:10",
     "'name' cannot be a block parameter: name= sets a block call's module path"),
    ("exec in a block", X + f"def B(x):\n    y = exec(\"open('{CANARY}', 'w')\")\n    return y\nz = B(x)\n", "3:9",
     "unknown layer or function 'exec' (did you mean 'expect'?) (in B, called at m.cg:5:5)"),
    ("return of a call", X + f"def B(x):\n    return __import__('os').system('touch {CANARY}')\n", "3:5",
     "block 'B' returns a value name or a tuple of them, e.g. return h or return a, b (at most 16)"),
    ("return at the top", X + "return x\n", "2:1", "not allowed in a .cg file: a 'return' statement (it is parsed, "
                                                   "never run)"),
    ("async block", X + "async def B(x):\n    return x\n", "2:1", "not allowed in a .cg file: a function definition "
                                                              "(it is parsed, never run)"),
    ("block as a value", X + "def B(x):\n    return x\nz = B\n", "4:5", "'B' is a block: call it, e.g. B(x, ...)"),
]


@pytest.mark.parametrize("case, text, pos, message", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_programs_one_line_exit_2_fast_nothing_run(case, text, pos, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "m.cg"
    path.write_text(text.replace("m.cg", str(path)))
    capsys.readouterr()
    start = time.perf_counter()
    code = main(["shapes", str(path)])
    took = time.perf_counter() - start
    err = capsys.readouterr().err
    assert code == 2 and err == f"{path}:{pos}: error: {message.replace('m.cg', str(path))}\n", err
    assert took < 1.0, f"{case}: {took:.2f} s"
    assert not (tmp_path / CANARY).exists()


def test_a_hostile_program_from_the_command_line(tmp_path):
    """The real process: exit status 2, one line on stderr, no traceback, the canary never written."""
    path = tmp_path / "m.cg"
    path.write_text(X + f"def B(x, c=__import__('os').system('touch {tmp_path / CANARY}')):\n    return x\n")
    run = subprocess.run([sys.executable, "-m", "convgraph", "shapes", str(path)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and run.stderr.startswith(f"{path}:2:12: error: a default is a literal")
    assert not (tmp_path / CANARY).exists()
