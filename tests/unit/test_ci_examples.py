"""The CI examples in docs/ci: no input, variable or secret is pasted into a script (script injection), the
strategies are offered as a choice, and the artifacts they upload leave out Ansible's own output."""

from pathlib import Path

import yaml

CI = Path(__file__).resolve().parents[2] / "docs" / "ci"
STRATEGIES = ["rolling", "bluegreen", "canary"]
ANSIBLE_OUTPUT = "report/ansible-output.log"  # fleet_cli.cli.ANSIBLE_OUTPUT in the report folder


def test_github_actions_passes_every_expression_to_the_shell_through_env():
    workflow = yaml.safe_load((CI / "github-actions-deploy.yml").read_text())
    steps = workflow["jobs"]["deploy"]["steps"]
    assert [step["name"] for step in steps if "${{" in step.get("run", "")] == []
    assert "${{ inputs.version }}" in [value for step in steps for value in step.get("env", {}).values()]


def test_github_actions_offers_the_strategies_as_a_choice():
    strategy = yaml.safe_load((CI / "github-actions-deploy.yml").read_text())["on"]["workflow_dispatch"]["inputs"][
        "strategy"]
    assert strategy["type"] == "choice" and strategy["options"] == STRATEGIES


def test_github_actions_uploads_the_report_without_ansibles_output():
    steps = yaml.safe_load((CI / "github-actions-deploy.yml").read_text())["jobs"]["deploy"]["steps"]
    upload = next(step for step in steps if step.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["path"].split() == ["summary.json", "report/", f"!{ANSIBLE_OUTPUT}"]


def test_gitlab_ci_pastes_no_input_into_its_script_and_offers_the_strategies_as_a_choice():
    pipeline = yaml.safe_load((CI / "gitlab-ci-deploy.yml").read_text())
    job = pipeline["deploy"]
    scripts = job["before_script"] + job["script"]
    assert [line for line in scripts if "$[[" in line] == []  # GitLab's inputs, pasted into the script
    assert pipeline["variables"]["STRATEGY"]["options"] == STRATEGIES
    assert job["artifacts"]["paths"] == ["summary.json", "report/"] and job["artifacts"]["exclude"] == [ANSIBLE_OUTPUT]
