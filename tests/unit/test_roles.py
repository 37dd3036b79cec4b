"""House rules every role follows, checked rather than hoped for."""

from pathlib import Path

import pytest
import yaml

ROLES = sorted(p for p in (Path(__file__).resolve().parents[2] / "roles").iterdir() if p.is_dir())


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_main_argument_spec_documents_exactly_the_defaults(role):
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    assert set(specs["main"]["options"]) == set(defaults)


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_public_variables_carry_the_role_prefix(role):
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
    private = yaml.safe_load((role / "vars" / "main.yml").read_text()) if (role / "vars" / "main.yml").exists() else {}
    assert all(name.startswith(f"{role.name}_") for name in defaults)
    assert all(name.startswith(f"_{role.name}_") for name in private or {})


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_main_tasks_only_include_named_phases(role):
    tasks = yaml.safe_load((role / "tasks" / "main.yml").read_text())
    for task in tasks:
        assert set(task) <= {"name", "ansible.builtin.import_tasks", "ansible.builtin.include_tasks", "tags"}, task
        phase = task.get("ansible.builtin.import_tasks") or task.get("ansible.builtin.include_tasks")
        assert (role / "tasks" / phase).is_file()
        assert task["tags"] == [f"{role.name}_{Path(phase).stem}"]
