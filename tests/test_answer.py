"""One exact answer in every verb (issue 11): the valid sizes that shapes / solve / the API report
are exactly the sizes ``shapes --at`` accepts; fixes pasted into the file make their merge hold;
``convgraph fix`` writes a file whose merges are all proved; every user error has a JSON object.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convgraph as cg
from convgraph import dims as D
from convgraph.cli import main
from convgraph.cli._main import check_at
from convgraph.cli.fix import apply_edits
from convgraph.errors import ConvGraphError
from convgraph.solve import solve
from convgraph.solve._report import sets_json, valid_lines

MODELS = Path(__file__).resolve().parent.parent / "models"
MODEL_FILES = sorted(MODELS.glob("**/*.cg"))


# --------------------------------------------------------------------------------------------
# The reported set, read back from its JSON description
# --------------------------------------------------------------------------------------------


def in_set(js: dict, x: int) -> bool:
    """Membership in the one JSON shape of a set (see ``set_json``)."""
    if x in js["exceptions"]:
        return True
    start = js.get("periodic_from", js["min"])
    return bool(js["residues"]) and x >= start and x % js["modulus"] in js["residues"]


def reported_valid(sol, data: dict, env: dict) -> bool:
    """Valid per the description: every symbol in its set, every coupling satisfied (its exact
    tuples, or its stated condition)."""
    if not all(in_set(data[n]["runs"], env[n]) for n in data):
        return False
    for cp in sol.couplings:
        js = next(c for c in data[cp.symbols[0]]["coupled"] if c["condition"] == cp.constraint.condition())
        if "tuples" in js:
            if not any(all(in_set(t[n], env[n]) for n in t) for t in js["tuples"]):
                return False
        elif "pairs" in js:  # exact: each symbol in its projection, and the stated relation
            if not (js["exact"] and all(in_set(p, env[n]) for n, p in js["pairs"]["projections"].items())
                    and relation_holds(js["pairs"], env)):
                return False
        elif "relation" in js:  # a relation on monotone terms: the same, for any number of symbols
            rel = js["relation"]
            if not (js["exact"] and all(in_set(p, env[n]) for n, p in rel["projections"].items())
                    and relation_holds({**rel, "relation": rel["text"]}, env)):
                return False
        elif not cp.constraint.holds(env):
            return False
    return True


def relation_holds(pairs: dict, env: dict) -> bool:
    """``f(A) op g(B)`` as the JSON states it, evaluated at env."""
    lhs, rhs = D.parse_dim(pairs["lhs"]), D.parse_dim(pairs["rhs"])
    assert pairs["relation"] == f"{pairs['lhs']} {pairs['op']} {pairs['rhs']}"
    return D.compare(D.evaluate(lhs, env), pairs["op"], D.evaluate(rhs, env))


def at_succeeds(graph, env: dict) -> bool:
    try:
        check_at(graph, env)  # what `convgraph shapes --at` runs
    except ConvGraphError:
        return False
    return True


def grid(sol, name: str) -> list[int]:
    s = sol.symbols[name].runs
    near = s.first(6) + [x + 1 for x in s.first(6)] + [x - 1 for x in s.first(6) if x > 1]
    return sorted(set(range(1, 12)) | set(near))[:28]


def assert_one_answer(graph) -> None:
    sol = solve(graph, tiling=False)
    if sol.no_valid_size() is not None:
        pytest.skip("no valid size")  # pragma: no cover - covered by the no-valid-size tests
    data = sets_json(sol)
    names = list(sol.symbols)
    for combo in itertools.product(*(grid(sol, n) for n in names)):
        env = dict(zip(names, combo))
        assert reported_valid(sol, data, env) == at_succeeds(graph, env), env
        assert sol.valid_at(env) == at_succeeds(graph, env), env


@pytest.mark.parametrize("path", MODEL_FILES, ids=[p.stem for p in MODEL_FILES])
def test_models_valid_iff_at_succeeds(path: Path):
    graph = cg.load(str(path))
    sol = solve(graph, tiling=False)
    names = list(sol.symbols)
    data = sets_json(sol)
    picks = {n: grid(sol, n) for n in names}
    for i, combo in enumerate(itertools.product(*picks.values())):
        if i % 7:  # a thinned grid: big models have 3-4 symbols
            continue
        env = dict(zip(names, combo))
        assert reported_valid(sol, data, env) == at_succeeds(graph, env), env


# --------------------------------------------------------------------------------------------
# Random graphs with couplings, assumes and expects
# --------------------------------------------------------------------------------------------


@st.composite
def coupled_graphs(draw) -> str:
    lines = ["x = input(N, 2, H, W)"]
    if draw(st.booleans()):
        lines.append(draw(st.sampled_from(["assume(W == H)", "assume(H % 2 == 0)", "assume(W >= H)",
                                           "assume(H + W <= 40)", "assume(H + W == 30)", "assume(H != W)",
                                           "assume(H * W >= 300)", "assume(2*H - W > 5)"])))
    k, s = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    p = draw(st.integers(0, (k - 1) // 2 + 1)) if k > 1 else 0
    lines.append(f"h = Conv2d(2, 3, ({k}, {k + 1}), stride=({s}, {3 - s + 1}), padding={min(p, k // 2)})(x)")
    tail = draw(st.sampled_from(["none", "linear", "expect", "skip"]))
    if tail == "linear":
        lines += ["f = Flatten()(h)", f"y = Linear({3 * draw(st.sampled_from([4, 6, 12]))}, 5)(f)"]
    elif tail == "expect":
        lines.append(draw(st.sampled_from(["expect(h, N, 3, H // 2, W // 2)", "expect(h, N, 3, H, W)",
                                           "expect(h, N, 3, (H + 1) // 2, W)"])))
    elif tail == "skip":
        lines += ["u = Upsample(scale_factor=2)(h)", "g = Conv2d(2, 3, 1)(x)", "y = cat([g, u], dim=1)"]
    return "\n".join(lines) + "\n"


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(coupled_graphs())
def test_random_graphs_valid_iff_at_succeeds(text: str):
    try:
        graph = cg.parse(text)
        sol = solve(graph, tiling=False)
    except ConvGraphError:
        return  # an assume with no valid size: an error at parse / solve time, as it should be
    if sol.no_valid_size() is not None:
        names = list(sol.symbols)
        assert not any(sol.valid_at(dict(zip(names, c))) for c in itertools.product(range(1, 14), repeat=3))
        assert not at_succeeds(graph, {n: 8 for n in names})
        return
    assert_one_answer(graph)


@st.composite
def two_input_graphs(draw) -> str:
    """Two inputs through different layer chains, then a cat: ``f(A) == g(B)``, solved exactly."""
    lines = ["x = input(N, 2, A)", "y = input(N, 2, B)"]
    if draw(st.booleans()):
        lines.append(draw(st.sampled_from(["assume(A % 3 == 1)", "assume(B >= 9)", "assume(A <= 40)",
                                           "assume(B >= A)", "assume(A > 2*B)"])))
    for v in "xy":
        for _ in range(draw(st.integers(0, 2))):
            k, s = draw(st.integers(1, 4)), draw(st.sampled_from([1, 2, 3]))
            layer = draw(st.sampled_from([f"Conv1d(2, 2, {k}, stride={s}, padding={k // 2})",
                                          f"MaxPool1d({k}, stride={s}, padding={k // 2}, ceil_mode=True)",
                                          f"ConvTranspose1d(2, 2, {k}, stride={s}, output_padding={s - 1})"]))
            lines.append(f"{v} = {layer}({v})")
    lines.append("c = cat([x, y], dim=1)")
    return "\n".join(lines) + "\n"


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(two_input_graphs())
def test_two_inputs_through_layers_valid_iff_at_succeeds(text: str):
    try:
        graph = cg.parse(text)
        sol = solve(graph, tiling=False)
    except ConvGraphError:
        return  # an assume with no valid size
    assert all(cp.exact and "not exact" not in cp.message for cp in sol.couplings)
    data = sets_json(sol)
    envs = [{"N": 1, "A": a, "B": b} for a in grid(sol, "A") for b in grid(sol, "B")]
    for cp in sol.couplings:
        envs += [{"N": 2, **e} for e in cp.examples] + [{"N": 1, **e, "B": e["B"] + 1} for e in cp.examples]
    for env in envs:
        assert reported_valid(sol, data, env) == at_succeeds(graph, env) == sol.valid_at(env), env
    if not sol.notes:  # no cycle of couplings: each coupling's smallest solutions run
        assert all(at_succeeds(graph, {"N": 1, **e}) for cp in sol.couplings for e in cp.examples)
    else:
        assert len(sol.couplings) > 1 and "form a cycle" in sol.text()


@st.composite
def three_input_graphs(draw) -> str:
    """A cat of two inputs along the length meets a third input: ``f(A) + g(B) == h(C)``."""
    lines = ["x = input(N, 2, A)", "y = input(N, 2, B)", "z = input(N, 2, C)"]
    if draw(st.booleans()):
        lines.append(draw(st.sampled_from(["assume(A % 3 == 1)", "assume(C <= 40)", "assume(B >= A)"])))
    for v in "xyz":
        for _ in range(draw(st.integers(0, 1))):
            k, s = draw(st.integers(1, 4)), draw(st.sampled_from([1, 2, 3]))
            lines.append(f"{v} = " + draw(st.sampled_from([f"Conv1d(2, 2, {k}, stride={s}, padding={k // 2})",
                                                           f"ConvTranspose1d(2, 2, {k}, stride={s})"])) + f"({v})")
    lines += ["c = cat([x, y], dim=2)", "d = cat([c, z], dim=1)"]
    return "\n".join(lines) + "\n"


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(three_input_graphs())
def test_three_inputs_valid_iff_at_succeeds(text: str):
    try:
        graph = cg.parse(text)
        sol = solve(graph, tiling=False)
    except ConvGraphError:
        return  # an assume with no valid size
    if sol.no_valid_size() is not None:
        return
    data = sets_json(sol)
    rel = next(cp for cp in sol.couplings if len(cp.symbols) == 3)
    assert rel.exact and "not exact" not in rel.message
    envs = [{"N": 1, "A": a, "B": b, "C": c} for a in grid(sol, "A")[:12] for b in grid(sol, "B")[:12]
            for c in grid(sol, "C")[:12]]
    for cp in sol.couplings:
        envs += [{"N": 1, **e} for e in cp.examples] + [{"N": 1, **e, "C": e["C"] + 1} for e in cp.examples
                                                       if "C" in e]
    for env in envs:
        env = {"N": 1, "A": 1, "B": 1, "C": 1, **env}
        assert reported_valid(sol, data, env) == at_succeeds(graph, env) == sol.valid_at(env), env
    if not sol.notes:  # every smallest solution, pasted into shapes --at, runs
        assert all(at_succeeds(graph, {"N": 1, **e}) for e in rel.examples)


def test_coupled_symbols_never_shown_as_independent_ranges():
    text = ("x = input(N, 3, H, W)\nh = Conv2d(3, 8, 3, padding=1)(x)\nh = MaxPool2d(2)(h)\n"
            "h = MaxPool2d(2)(h)\nf = Flatten()(h)\ny = Linear(128, 10)(f)\n")
    sol = solve(cg.parse(text), tiling=False)
    lines = valid_lines(sol)
    assert lines[0] == "N: N >= 1"
    assert lines[1].startswith("H, W (coupled): (H in {4..7} and W in {64..67}) or ")
    assert not any(line.startswith("H:") for line in lines)
    text = solve(cg.parse(text)).text()
    assert "H, W (coupled) tile exactly for: (H in {4} and W in {64}) or (H in {8} and W in {32})" in text


def test_refuted_expect_and_assume_take_part(tmp_path: Path, capsys):
    refuted = tmp_path / "r.cg"
    refuted.write_text("x = input(N, 3, H, W)\nh = Conv2d(3, 8, 3, stride=2)(x)\nexpect(h, N, 8, H, W)\n")
    for verb in ("shapes", "solve"):
        assert main([verb, str(refuted)]) == 2
        assert "r.cg:3:1: error: no valid size: expect(h, N, 8, H, W)" in capsys.readouterr().err
    cond = tmp_path / "c.cg"
    cond.write_text("x = input(N, 3, H, W)\nassume(W == H)\nh = Conv2d(3, 8, 3, stride=2, padding=1)(x)\n"
                    "expect(h, N, 8, H // 2, W // 2)\n")
    assert main(["shapes", str(cond)]) == 0
    out = capsys.readouterr().out
    assert "H, W (coupled): (H >= 2, H % 2 == 0), (W >= 2, W % 2 == 0), and W == H" in out


# --------------------------------------------------------------------------------------------
# No valid size: exit 2 in every verb, export writes nothing
# --------------------------------------------------------------------------------------------

NEVER = "x = input(N, 3, H, W)\na = Conv2d(3, 8, 3)(x)\nb = Conv2d(3, 8, 5)(x)\ny = a + b\n"


def test_no_valid_size_is_exit_2_everywhere(tmp_path: Path, capsys):
    src = tmp_path / "never.cg"
    src.write_text(NEVER)
    out = tmp_path / "never.onnx"
    for argv in (["shapes", str(src)], ["solve", str(src)], ["export", str(src), "-o", str(out)],
                 ["check", str(src)]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "never.cg:4:5: error: no valid size" in err and "set `padding=1` on Conv2d 'b' (line 3)" in err
    assert not out.exists()
    with pytest.raises(ConvGraphError, match="no valid size"):
        cg.load(str(src)).export(str(out))
    assert not out.exists()


# --------------------------------------------------------------------------------------------
# Fixes: in the file's names, one per skip, pasteable; `convgraph fix`
# --------------------------------------------------------------------------------------------

TWO_SKIPS = """\
x = input(N, 3, L)
d = Conv1d(3, 3, 3, stride=2, padding=1)(x)
u = ConvTranspose1d(3, 3, 3, stride=2, padding=1)(d)
c = cat([x, u], dim=1)   # odd L only
m = MaxPool1d(2)(x)
v = Upsample(scale_factor=2)(m)
e = cat([x, v], dim=1)   # even L only: together, no valid size
"""

REASSIGNED = """\
x = input(N, 3, H, W)
x = Conv2d(3, 8, 3, padding=1)(x)   # reassigned: internally x_1
d = Conv2d(8, 8, 3, stride=2, padding=1)(x)
u = ConvTranspose2d(8, 8, 3, stride=2, padding=1)(d)
c = cat([x, u], dim=1)
"""


def _fix_sources() -> list[tuple[str, str]]:
    out = [("reassigned.cg", REASSIGNED), ("never.cg", NEVER), ("positional.cg", NEVER.replace("5)(x)", "5, 1, 0)(x)")),
           ("two_skips.cg", TWO_SKIPS)]
    for name in ("needs_output_padding.cg", "unet.cg", "encdec1d_stride4.cg", "unet_strided.cg", "fpn_lite.cg",
                 "unet3d.cg"):
        out.append((name, (MODELS / name).read_text()))
    return out


@pytest.mark.parametrize("name,text", _fix_sources(), ids=[n for n, _ in _fix_sources()])
def test_every_printed_fix_pasted_makes_its_merge_hold(name: str, text: str):
    sol = solve(cg.parse(text, filename=name))
    assert sol.skip_fixes, "expected a fix"
    for f in sol.skip_fixes:
        edited = apply_edits(text, list(f.edits), name)
        new = solve(cg.parse(edited, filename=name))
        assert new.no_valid_size() is None
        merges = [m for m in new.merges if m.constraint.value == f.value and m.constraint.kind == "merge"]
        # proved, or identical on both sides (then the shape stage records no condition at all)
        assert all(m.verdict == "proved" for m in merges), (f.edit, [m.message for m in merges])
        assert f.value in {n.name for n in new.graph.nodes}
        for e in f.edits:  # the names in the printed edit are the file's
            if e.kind == "crop":
                assert f"= crop({e.operand}, like={e.like})" in edited
                assert e.operand in text and e.like in text


def test_fix_names_are_the_files(capsys, tmp_path: Path):
    src = tmp_path / "r.cg"
    src.write_text(REASSIGNED)
    assert main(["solve", str(src)]) == 0
    out = capsys.readouterr().out
    assert "x_1" not in out.split("fixes")[1]
    assert "crop(x, like=u)" in out


def test_one_fix_per_layer_covering_both_axes():
    sol = solve(cg.parse(NEVER))
    (first, *_) = sol.skip_fixes
    assert first.edit == "set `padding=1` on Conv2d 'b' (line 3)"
    assert len({f.value for f in sol.skip_fixes}) == 1


@pytest.mark.parametrize("name,text", _fix_sources(), ids=[n for n, _ in _fix_sources()])
def test_fix_verb_output_resolves_with_every_merge_proved(name: str, text: str, tmp_path: Path, capsys):
    src, out = tmp_path / name, tmp_path / ("fixed_" + name)
    src.write_text(text)
    assert main(["fix", str(src), "-o", str(out)]) == 0, capsys.readouterr().err
    fixed = out.read_text()
    sol = solve(cg.load(str(out)))
    assert all(m.verdict == "proved" for m in sol.merges if m.constraint.kind == "merge")
    kept = [line for line in text.splitlines() if line.strip().startswith("#") or "#" in line]
    assert all(line in fixed.splitlines() or "(" in line for line in kept)  # comments kept
    assert src.read_text() == text


def test_fix_keeps_layout_and_refuses_the_input(tmp_path: Path, capsys):
    src = tmp_path / "m.cg"
    src.write_text("x = input(N, 3, H, W)   # the input\na = nn.Conv2d(3, 8, 3)(x)\n"
                   "b = nn.Conv2d(3, 8, 5, padding=(0, 0))(x)  # keep me\n\ny = a + b\n")
    out = tmp_path / "o.cg"
    assert main(["fix", str(src), "-o", str(out)]) == 0
    assert out.read_text() == ("x = input(N, 3, H, W)   # the input\na = nn.Conv2d(3, 8, 3)(x)\n"
                               "b = nn.Conv2d(3, 8, 5, padding=1)(x)  # keep me\n\ny = a + b\n")
    assert main(["fix", str(src), "-o", str(src)]) == 2
    assert "never overwrites its input" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# JSON errors, hints, help
# --------------------------------------------------------------------------------------------


def _json_error(capsys, argv) -> dict:
    assert main(argv) == 2, argv
    out = capsys.readouterr()
    data = json.loads(out.out)
    assert set(data["error"]) == {"file", "line", "col", "message", "hints"}
    return data["error"]


@pytest.mark.parametrize("text,line,words", [
    ("x = input(N, 3, H, W\n", 1, "syntax"),
    ("x = input(N, 3, H, W)\ny = Conv2d(3, 8, 0)(x)\n", 2, "kernel_size"),
    ("x = input(N, 3, H, W)\ny = Conv2d(3, 8, 3)(z)\n", 2, "undefined value 'z'"),
    ("x = input(N, 3, H, W)\ny = Conv2d(4, 8, 3)(x)\n", 2, "4"),
    ("x = input(N, 3, H, W)\nassume(H % 2 == 0, H % 2 == 1)\n", 2, "no valid size"),
    (NEVER, 4, "no valid size"),
])
def test_json_errors_for_file_errors(tmp_path: Path, capsys, text: str, line: int, words: str):
    src = tmp_path / "e.cg"
    src.write_text(text)
    for verb in ("shapes", "solve", "check"):
        err = _json_error(capsys, [verb, str(src), "--json"])
        assert err["file"] == str(src) and err["line"] == line and words.lower() in err["message"].lower(), err


def test_json_errors_for_command_line_errors(tmp_path: Path, capsys):
    unet = str(MODELS / "unet.cg")
    err = _json_error(capsys, ["shapes", unet, "--json", "--at", "H=17", "--at", "W=16", "--at", "N=1"])
    assert err["line"] > 0 and any("valid H: H >= 16, H % 16 == 0; nearest valid: 16, 32" in h for h in err["hints"])
    assert "bad" in _json_error(capsys, ["shapes", unet, "--json", "--at", "bad"])["message"]
    assert "Q" in _json_error(capsys, ["shapes", unet, "--json", "--at", "Q=3"])["message"]
    assert "cannot read" in _json_error(capsys, ["shapes", str(tmp_path / "missing.cg"), "--json"])["message"]
    assert _json_error(capsys, ["solve", "--json"])["file"] == "<command line>"
    assert "--sizes" in _json_error(capsys, ["check", unet, "--json", "--sizes", "0"])["message"]


def test_size_hints_in_every_verb(tmp_path: Path, capsys):
    unet = str(MODELS / "unet.cg")
    for argv in (["shapes", unet], ["export", unet, "-o", str(tmp_path / "u.onnx")], ["check", unet]):
        assert main([*argv, "--at", "H=17"]) == 2
        assert "hint: valid H: H >= 16, H % 16 == 0; nearest valid: 16, 32" in capsys.readouterr().err
    assert not (tmp_path / "u.onnx").exists()


def test_help_has_text_for_every_option_and_an_example(capsys):
    from convgraph.cli._main import _subparsers, build_parser

    parser = build_parser()
    for sub in _subparsers(parser):
        for action in sub._actions:
            assert action.help, (sub.prog, action.dest)
        assert "example:" in sub.description, sub.prog
    solve_help = next(p for p in _subparsers(parser) if p.prog.endswith("solve")).description
    assert "runs:" in solve_help and "tiles exactly:" in solve_help


def test_animate_refuses_other_extensions(tmp_path: Path, capsys):
    assert main(["animate", "Conv2d(1, 1, 3)", "--input", "5x5", "-o", str(tmp_path / "a.mp4")]) == 2
    assert "animate writes a .gif file" in capsys.readouterr().err
    assert not (tmp_path / "a.mp4").exists()


def test_api_solve_and_json_shape():
    g = cg.load(str(MODELS / "unet.cg"))
    sol = cg.solve(g)
    shapes_valid = sets_json(solve(g, tiling=False))
    solve_symbols = sol.to_json()["symbols"]
    for n in shapes_valid:
        assert shapes_valid[n]["runs"] == solve_symbols[n]["runs"]
    assert sol.metadata()["convgraph.valid_sizes.H"] == "H >= 16, H % 16 == 0"


# --------------------------------------------------------------------------------------------
# Dims simplified on the valid sizes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", MODEL_FILES, ids=[p.stem for p in MODEL_FILES])
def test_simplified_dims_agree_on_valid_sizes(path: Path):
    import sympy as sp

    from convgraph import dims as D
    from convgraph.solve import check_sizes
    from convgraph.solve._simplify import simplified, valid_sets

    graph = cg.load(str(path))
    sets = valid_sets(solve(graph, tiling=False))
    envs = check_sizes(graph, 6)
    for dims in graph.infer().values.values():
        for d in dims:
            if isinstance(d, int):
                continue
            text = simplified(d, sets)
            expr = sp.sympify(text, locals={n: sp.Symbol(n) for n in graph.symbols})
            for env in envs:
                got = expr.subs({sp.Symbol(k): v for k, v in env.items()})
                assert got == D.evaluate(d, env), (D.dim_str(d), text, env)


def test_simplified_dims_in_table_and_json(capsys):
    assert main(["shapes", str(MODELS / "unet.cg")]) == 0
    out = capsys.readouterr().out
    assert "H/2" in out and "floor(H/2)" not in out.split("constraints:")[0]
    assert main(["shapes", str(MODELS / "unet.cg"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    simplified = [v for v in data["values"] if "shape_on_valid" in v]
    assert simplified and all("floor" in " ".join(map(str, v["shape"])) for v in simplified)
    assert not any("floor" in str(d) for v in simplified for d in v["shape_on_valid"])


# --------------------------------------------------------------------------------------------
# check: --sizes, streaming, progress, random weights; export says so too
# --------------------------------------------------------------------------------------------

TINY = "x = input(N, 1, H, W)\nh = Conv2d(1, 2, 3, stride=2)(x)\n"


def test_check_sizes_streams_rows_and_says_weights_are_random(tmp_path: Path, capsys):
    src = tmp_path / "t.cg"
    src.write_text(TINY)
    assert main(["check", str(src), "--sizes", "3"]) == 0
    out, err = capsys.readouterr()
    rows = [line for line in out.splitlines() if line.startswith("N=")]
    assert len(rows) == 3 and out.index(rows[-1]) < out.index("ok: 3 runs")
    assert "the weights are random" in out and "check: exporting" in err
    assert main(["check", str(src), "--sizes", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["results"]) == 2 and any("weights are random" in n for n in data["notes"])
    assert main(["export", str(src), "-o", str(tmp_path / "t.onnx")]) == 0
    assert "the weights are random" in capsys.readouterr().err


def test_check_reports_each_run_as_it_ends_and_names_the_size(capsys):
    seen = []
    report = cg.check(cg.parse(TINY), sizes=4, progress=True, on_result=seen.append)  # DESIGN: cg.check(g, sizes=6)
    assert len(report.results) == 4
    assert [r.sizes for r in seen] == [r.sizes for r in report.results]
    err = capsys.readouterr().err
    last = report.results[-1].sizes
    assert f"check N={last['N']} H={last['H']} W={last['W']} on cpu" in err


def test_onnx_dim_names_simplified_general_formulas_in_metadata():
    import onnx

    model = cg.load(str(MODELS / "unet.cg")).to_onnx()
    params = {d.dim_param for vi in list(model.graph.value_info) + list(model.graph.output)
              for d in vi.type.tensor_type.shape.dim if d.dim_param}
    assert "H/2" in params and not any("floor" in p for p in params)
    meta = {p.key: p.value for p in model.metadata_props}
    formulas = json.loads(meta["convgraph.formulas"])
    assert any("floor(H/2)" in d for dims in formulas.values() for d in dims if isinstance(d, str))
    onnx.checker.check_model(model)
