"""House rule: tests assert things that can fail. A string that is an operand of `and`, or of `or` before
the last place, is always true: `assert a in text and "b" and c` never checks "b" (it lacked `in text`)."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def always_true_operands(source):
    """Line numbers of the constant operands of and/or chains that decide nothing (an `or` may end in one:
    `x or "none"` is a default, not a check)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.BoolOp):
            operands = node.values if isinstance(node.op, ast.And) else node.values[:-1]
            lines += [value.lineno for value in operands if isinstance(value, (ast.Constant, ast.JoinedStr))]
    return lines


@pytest.mark.parametrize("source, lines", [
    ('assert "a" in text and "b" and "c" in text', [1]),
    ('assert any(t.startswith("x") and f"{h} failed" for t in texts)', [1]),
    ('ok = "a" or text', [1]),
    ('assert "a" in text and "b" in text', []),
    ('name = version or "none"', []),
], ids=["string in and", "f-string in and", "string before or", "checked", "default"])
def test_always_true_operands_are_found(source, lines):
    assert always_true_operands(source) == lines


def test_no_test_has_an_always_true_operand():
    paths = sorted({*REPO.glob("molecule/**/*.py"), *REPO.glob("tests/**/*.py"), *REPO.glob("bench/*.py")})
    found = [f"{path.relative_to(REPO)}:{line}" for path in paths for line in always_true_operands(path.read_text())]
    assert found == []
