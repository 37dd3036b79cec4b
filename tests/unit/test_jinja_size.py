"""House rule: decisions live in Python, so the Jinja in roles/ and playbooks/ stays short."""

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
MAX_CHARS = 120   # joined: white space folded, as a folded scalar reads
MAX_LINES = 3
MAX_LONG = 8      # 56 when the rule was written; what is left must earn its place


def scalars(node):
    if isinstance(node, yaml.ScalarNode):
        yield node
    for child in node.value if isinstance(node, yaml.SequenceNode) else ():
        yield from scalars(child)
    for key, value in node.value if isinstance(node, yaml.MappingNode) else ():
        yield from scalars(key)
        yield from scalars(value)


def long_jinja():
    """(file:line, characters, lines) of every Jinja value over the limits."""
    found = []
    for path in sorted(p for folder in ("roles", "playbooks") for p in (REPO / folder).rglob("*.yml")):
        for document in yaml.compose_all(path.read_text()):
            for node in scalars(document) if document else ():
                if "{{" not in node.value and "{%" not in node.value:
                    continue
                lines = len(node.value.rstrip("\n").splitlines()) if node.style in (">", "|") \
                    else node.end_mark.line - node.start_mark.line + 1
                chars = len(" ".join(node.value.split()))
                if chars > MAX_CHARS or lines > MAX_LINES:
                    found.append((f"{path.relative_to(REPO)}:{node.start_mark.line + 1}", chars, lines))
    return found


def test_long_jinja_stays_rare():
    found = long_jinja()
    assert len(found) <= MAX_LONG, "\n".join(f"{where}: {chars} characters, {lines} lines"
                                              for where, chars, lines in found)


def test_the_counter_sees_long_jinja(tmp_path):
    """The rule itself can fail: a long folded value counts, a short one does not."""
    document = yaml.compose("a: >-\n  {{ x }}" + " y" * 70 + "\nb: '{{ short }}'\n")
    counted = [n for n in scalars(document) if len(" ".join(n.value.split())) > MAX_CHARS]
    assert [n.start_mark.line for n in counted] == [0]
