"""A bounded mutation fuzzer over the models in models/ (issue 15): whatever the text, the
in-process API answers with a graph or a ConvGraphError whose message is one line with a valid
position, within a time budget per case. Hypothesis draws the mutations (derandomised in CI)."""
from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convgraph as cg
from convgraph.errors import ConvGraphError

MODELS = sorted((Path(__file__).parent.parent / "models").glob("*.cg"))
#: fragments a mutation inserts: line ends ast does not know, huge and odd numbers, syntax, non-ASCII
FRAGMENTS = ["\f", "\v", "\x1c", "\x85", "\u2028", "\r", "\n", "#", "(", ")", ",", "=", "[", "]", ":", "'", '"',
             "2147483648", "2147483647", "0", "-1", "1e300", "nan", "**", "//", "%", "é", "H", "x", "padding=1",
             "dilation=3", "stride=2", "groups=2", "name='a'", "ReLU()", "Conv2d(3, 8, 3)", "assume(H >= 4)",
             "expect(x, N, 3, H, W)", "cat([x, x], dim=1)", "\\d", "lambda: 0", "__import__('os')",
             "#\f\u00e9\u00e9\n", "#\u2028\u00e9\n", "#\x85\u00e9 \u00e9\n", ", padding=2", "\nassume(H >= 1)\n",
             "\nexpect(x, N, 3, H, W)\n", "\nyy = Foo(x)\n", "\nyy = ReLU()(zz)\n"]
NUMBER = re.compile(r"\b\d+\b")
#: per case: the shape stage, and the solver when every int literal is small (the solver's time on
#: huge constants is issue 12's)
PARSE_SECONDS, SOLVE_SECONDS, SOLVE_MAX_INT = 5, 10, 4096
QUOTED = re.compile(r"^(?:unknown layer or function|undefined value) '(\w+)'")
HEAD = re.compile(r"(?P<file>.*?):(?P<line>\d+):(?P<col>\d+): error: \S")


class OverBudget(Exception):
    pass


def within(seconds: float, fn, *args):
    def expire(signum, frame):
        raise OverBudget(f"{fn.__name__} ran over its {seconds} s budget")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@st.composite
def mutants(draw) -> str:
    text = MODELS[draw(st.integers(0, len(MODELS) - 1))].read_text()
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["insert", "delete", "number", "line"]))
        i = draw(st.integers(0, len(text)))
        if kind == "insert":
            text = text[:i] + draw(st.sampled_from(FRAGMENTS)) + text[i:]
        elif kind == "delete":
            text = text[:i] + text[i + draw(st.integers(1, 20)):]
        elif kind == "number":
            nums = list(NUMBER.finditer(text))
            if nums:
                m = nums[draw(st.integers(0, len(nums) - 1))]
                new = draw(st.sampled_from(["0", "1", "2147483648", "99999999999", "7", "-3", "65536"]))
                text = text[:m.start()] + new + text[m.end():]
        else:
            lines = text.split("\n")
            j, k = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines.insert(k, lines[j])  # a line repeated elsewhere: reuse, order, forward references
            text = "\n".join(lines)
    return text


def assert_user_error(e: ConvGraphError, text: str) -> None:
    rendered = str(e)
    first = rendered.split("\n")[0]
    m = HEAD.match(first)
    assert m, rendered
    assert "\n" not in e.message and "\r" not in e.message, rendered
    assert all(ln.startswith("  hint: ") for ln in rendered.split("\n")[1:]), rendered
    lines = re.split(r"\r\n|\r|\n", text)  # as ast numbers them
    line, col = int(m["line"]), int(m["col"])
    if m["file"] != "fuzz.cg":
        return
    assert 1 <= line <= len(lines) + 1 and col >= 1, rendered
    named = QUOTED.search(e.message)
    if named:  # the position is the name's own
        assert lines[line - 1][col - 1:].startswith(named[1]), rendered


@settings(max_examples=120)
@given(mutants())
def test_mutated_models_answer_in_one_line_and_bounded_time(text):
    t0 = time.monotonic()
    try:
        g = within(PARSE_SECONDS, cg.parse, text, "fuzz.cg")
    except ConvGraphError as e:
        assert_user_error(e, text)
        return
    if all(abs(int(n)) <= SOLVE_MAX_INT for n in NUMBER.findall(text)):
        try:
            within(SOLVE_SECONDS, lambda: cg.solve(g).text())
        except ConvGraphError as e:
            assert_user_error(e, text)
    assert time.monotonic() - t0 < PARSE_SECONDS + SOLVE_SECONDS


@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
def test_every_model_parses_unmutated(path):
    within(PARSE_SECONDS, cg.load, path)
