"""reconcile.yml on app1, app2 + lb1: a drained healthy host comes back, a stopped one goes out, a second run
changes nothing, and it refuses to take the last host in rotation out. Each test puts the fleet back as site.yml
left it (both hosts running 1.0.0, both in rotation)."""

import json

import ansible_runner
import pytest
from conftest import (LAB_DIR, PROJECT, answers, assert_nothing_dropped, changed_hosts, failure_messages, under_load,
                      upstream_failures)

APP = "user-api"
UPSTREAM = f"/etc/nginx/upstreams/{APP}.conf"
REPORT_TASK = "Print the reconcile report"


@pytest.fixture(scope="module")
def lb_host(fleet_host):
    return fleet_host("lb1")


@pytest.fixture(scope="module")
def address(lab):
    return {host["name"]: f"{host['address']}:8000" for host in lab["hosts"]}


def down_flags(lb_host, address):
    """{app host: whether lb1's upstream has it marked down}, as nginx_upstream_info reads the file."""
    info = lb_host.ansible("fleet.deployer.nginx_upstream_info", f"path={UPSTREAM} upstream={APP}", check=False)
    assert not info.get("failed"), info
    name_of = {value: name for name, value in address.items()}
    return {name_of[server["address"]]: server["down"] for server in info["upstreams"][0]["servers"]}


def mark(lb_host, address, name, down):
    """Marks a host down (or up) in lb1's upstream the way a drain does: one line, `nginx -t`, reload."""
    result = lb_host.ansible("fleet.deployer.nginx_upstream", json.dumps(
        {"path": UPSTREAM, "upstream": APP, "servers": [{"address": address[name], "down": down}],
         "test_command": "nginx -t", "reload": True, "reload_command": "systemctl reload nginx"}), check=False)
    assert not result.get("failed"), result


def report(runner):
    """The report lines reconcile.yml printed."""
    return [line for event in runner.events
            if event["event"] == "runner_on_ok" and event["event_data"].get("task") == REPORT_TASK
            for line in event["event_data"]["res"]["msg"]]


def line_of(runner, name):
    return next(line for line in report(runner) if line.startswith(f"lb1 {name} "))


def check_run(tmp_path):
    """reconcile.yml with --check --diff (the conftest fixture takes no command-line options)."""
    return ansible_runner.run(private_data_dir=str(tmp_path), project_dir=str(PROJECT),
                              playbook=str(PROJECT / "playbooks" / "reconcile.yml"),
                              inventory=str(LAB_DIR / "inventory"), cmdline="--check --diff", quiet=True,
                              envvars={"ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg")})


@pytest.fixture
def restore(fleet_host, lb_host, address):
    """After the test: both services running and both hosts in rotation, whatever the test did."""
    yield
    for name in ("app1", "app2"):
        fleet_host(name).run_test(f"systemctl start {APP}")
        mark(lb_host, address, name, False)
    assert down_flags(lb_host, address) == {"app1": False, "app2": False}


def test_a_drained_healthy_host_comes_back_and_a_second_run_changes_nothing(
        restore, lb_host, address, load, playbook, lb_url, tmp_path):
    mark(lb_host, address, "app2", True)

    checked = check_run(tmp_path)
    assert checked.rc == 0, failure_messages(checked)
    assert line_of(checked, "app2").endswith("would go in: healthy on its current release 1.0.0")
    assert down_flags(lb_host, address) == {"app1": False, "app2": True}  # --check changed nothing

    runner, load_report, _ = under_load(load, playbook, "reconcile.yml")
    assert runner.rc == 0, failure_messages(runner)
    assert line_of(runner, "app2").endswith(" in: healthy on its current release 1.0.0")
    assert line_of(runner, "app1").endswith("unchanged (in rotation): healthy on its current release 1.0.0")
    assert down_flags(lb_host, address) == {"app1": False, "app2": False}
    assert changed_hosts(runner) == {"lb1": 1}  # one write and reload of lb1's upstream, nothing else
    assert answers(lb_url, 10) == {"app1": "1.0.0", "app2": "1.0.0"}
    lines = assert_nothing_dropped(load_report, 10)
    print(f"reconcile under load: {load_report['requests']} requests, {load_report['failed']} failed, "
          f"{len(upstream_failures(lines))} upstream failures in the LB log")

    again = playbook("reconcile.yml")
    assert again.rc == 0, failure_messages(again)
    assert changed_hosts(again) == {}
    assert "lb1: 0 in, 0 out, 2 unchanged; 2 of 2 in rotation" in report(again)


def test_a_stopped_host_goes_out_and_comes_back_once_healthy(restore, fleet_host, lb_host, address, playbook, lb_url):
    fleet_host("app1").run_test(f"systemctl stop {APP}")

    runner = playbook("reconcile.yml")
    assert runner.rc == 0, failure_messages(runner)
    assert " out: unhealthy: no answer (health: " in line_of(runner, "app1")
    assert down_flags(lb_host, address) == {"app1": True, "app2": False}
    assert answers(lb_url, 10) == {"app2": "1.0.0"}

    fleet_host("app1").run_test(f"systemctl start {APP}")
    back = playbook("reconcile.yml")
    assert back.rc == 0, failure_messages(back)
    assert line_of(back, "app1").endswith(" in: healthy on its current release 1.0.0")
    assert down_flags(lb_host, address) == {"app1": False, "app2": False}


def test_refuses_to_take_the_last_hosts_out_of_rotation(restore, fleet_host, lb_host, address, playbook):
    before = lb_host.file(UPSTREAM).content_string
    for name in ("app1", "app2"):
        fleet_host(name).run_test(f"systemctl stop {APP}")

    runner = playbook("reconcile.yml")

    assert runner.rc != 0
    refusals = [message for message in failure_messages(runner) if message.startswith("Refused: ")]
    assert len(refusals) == 1, failure_messages(runner)
    assert "lb1: taking app1, app2 out would leave 0 of 2 live hosts in rotation, fewer than " \
           "reconcile_min_in_service=1 (1)" in refusals[0]
    assert "Nothing was changed" in refusals[0]
    assert lb_host.file(UPSTREAM).content_string == before
    assert changed_hosts(runner) == {}
