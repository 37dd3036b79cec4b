"""rolling.yml / rollback.yml on 5 live hosts, under 300 requests/s on new connections, measured until 10 s
after each playbook ends. The tests run in file order: each starts from the state the previous one left."""

import pytest
from conftest import (UPSTREAM_FILE, addresses, answers, assert_nothing_dropped, changed_hosts, failure_messages,
                      report_text, task_runs, under_load)
from loadgen import version_share  # tools/, on the path through conftest

APPS = [f"app{i}" for i in range(1, 6)]
MIN_LOAD_SECONDS = 20
NOISE = 0.03  # per-second share of a version wobbles by a request or two under round robin


def assert_share_never_drops(report, version):
    shares = [share for _, share in version_share(report, version)]
    high = 0.0
    for second, share in enumerate(shares):
        assert share >= high - NOISE, f"share of {version} fell to {share:.2f} at second {second} from {high:.2f}"
        high = max(high, share)
    assert shares[0] <= NOISE and shares[-1] == 1.0


def test_rollout_in_batches_drops_no_request(load, playbook, lb_url):
    runner, report, _ = under_load(load, playbook, "rolling.yml", app_version="1.1.0", rolling_batch=[1, "40%"],
                                rolling_pause_seconds=2)
    assert runner.rc == 0, (failure_messages(runner), report_text(runner))
    assert task_runs(runner, "Pause before the next batch") == 2  # batches of 1, 2, 2: paused between them
    assert_nothing_dropped(report, MIN_LOAD_SECONDS)
    assert_share_never_drops(report, "1.1.0")
    assert answers(lb_url, 25) == {app: "1.1.0" for app in APPS}


def test_second_rollout_changes_nothing(playbook):
    runner = playbook("rolling.yml", app_version="1.1.0")
    assert runner.rc == 0, (failure_messages(runner), report_text(runner))
    assert changed_hosts(runner) == {}


def test_rollback_drops_no_request(load, playbook, lb_url):
    runner, report, _ = under_load(load, playbook, "rollback.yml", rolling_batch=2, rolling_confirm=True,
                                prompts={"Press Enter for the next batch": ""})
    assert runner.rc == 0, (failure_messages(runner), report_text(runner))
    assert task_runs(runner, "Ask before the next batch") == 2  # batches of 2, 2, 1: confirmed between them
    assert_nothing_dropped(report, MIN_LOAD_SECONDS)
    assert_share_never_drops(report, "1.0.0")
    assert answers(lb_url, 25) == {app: "1.0.0" for app in APPS}


def test_second_rollback_finds_nothing_to_do(playbook):
    runner = playbook("rollback.yml")
    assert runner.rc == 0, (failure_messages(runner), report_text(runner))
    assert changed_hosts(runner) == {}


def main_pids(fleet_host):
    return {app: fleet_host(app).check_output("systemctl show --property MainPID --value user-api") for app in APPS}


def test_failing_version_stops_after_the_first_batch(load, playbook, lb_url, fleet_host):
    before = main_pids(fleet_host)
    runner, report, _ = under_load(load, playbook, "rolling.yml", app_version="1.1.0", rolling_batch="20%",
                                release_environment={"USER_API_FAULT_HEALTH": "true"}, release_health_timeout=5)
    assert runner.rc != 0
    messages = " ".join(failure_messages(runner))
    assert "Rollout stopped after batch app1: app1 failed" in messages
    assert_nothing_dropped(report, MIN_LOAD_SECONDS)
    assert report["versions"] == {"1.0.0": report["ok"]}, "users saw the failing version"
    # app1 went back to 1.0.0 and into rotation; the hosts after it were not touched
    assert answers(lb_url, 25) == {app: "1.0.0" for app in APPS}
    after = main_pids(fleet_host)
    assert after["app1"] != before["app1"]
    assert {app: after[app] for app in APPS[1:]} == {app: before[app] for app in APPS[1:]}


def test_rollback_policy_puts_every_host_back_after_a_failed_second_batch(load, playbook, lb_url, fleet_host,
                                                                           tmp_path):
    """rolling_on_failure=rollback: batch 1 (app1) is replaced; in batch 2 (app2, app3) app3's 1.1.0 never gets
    healthy (a host variable of this run's inventory), so the rollout stops and app1 and app2 - the hosts it
    updated - go back to 1.0.0, batch by batch, under load."""
    import shutil

    from conftest import LAB_DIR

    inventory = tmp_path / "inventory"
    shutil.copytree(LAB_DIR / "inventory", inventory)
    (inventory / "host_vars").mkdir(exist_ok=True)
    (inventory / "host_vars" / "app3.yml").write_text('release_environment: {USER_API_FAULT_HEALTH: "true"}\n')
    runner, report, _ = under_load(load, playbook, "rolling.yml", inventory=str(inventory), app_version="1.1.0",
                                   rolling_batch=[1, 2], rolling_on_failure="rollback", release_health_timeout=5)
    assert runner.rc != 0
    text = report_text(runner)
    assert "STOPPED after batch app2, app3: app3 failed (1 of 2" in text, text
    assert "rolling_on_failure=rollback rolled app1, app2 back to the release each ran before" in text, text
    assert task_runs(runner, "Record that the host was rolled back") == 2
    assert_nothing_dropped(report, MIN_LOAD_SECONDS)
    assert answers(lb_url, 25) == {app: "1.0.0" for app in APPS}
    assert {app: fleet_host(app).file("/opt/user-api/current").linked_to for app in APPS} == \
        {app: "/opt/user-api/releases/1.0.0" for app in APPS}
    lb = fleet_host("lb1")
    assert lb.run("nginx -t").rc == 0
    servers = [line.strip() for line in lb.file(UPSTREAM_FILE).content_string.splitlines()
               if line.strip().startswith("server ")]
    assert len(servers) == len(APPS) and not [line for line in servers if " down" in line], servers


@pytest.mark.parametrize("fault, metric", [
    ({"USER_API_FAULT_ERROR_RATE": "0.05"}, "error rate"),
    ({"USER_API_FAULT_LATENCY": "300ms"}, "p95 latency"),
], ids=["5% errors", "+300 ms"])
def test_a_version_that_fails_users_is_stopped_by_the_bake_after_the_first_batch(load, playbook, lb_url, lab,
                                                                                 fleet_host, fault, metric):
    """Healthy to its health check, bad for users: the bake after batch 1 (10 s of users' traffic, app1 against
    the four hosts not yet updated) fails it, app1 goes back to 1.0.0, and the rollout stops - defaults otherwise."""
    before = main_pids(fleet_host)
    runner, report, _ = under_load(load, playbook, "rolling.yml", app_version="1.1.0", release_environment=fault)
    assert runner.rc != 0
    text = report_text(runner)
    assert f"STOPPED after batch app1: the bake failed: {metric}" in text, text
    assert "the batch went back: app1 back to the release each ran before" in text, text
    assert "judged on lb_log" in text and ("binomial test p=" in text or metric != "error rate"), text
    app1 = {f"{addresses(lab, 'app')[0]}:8000"}
    assert_nothing_dropped(report, MIN_LOAD_SECONDS, failed_share=0.005, failing_backends=app1)
    assert answers(lb_url, 25) == {app: "1.0.0" for app in APPS}
    after = main_pids(fleet_host)
    assert {app: after[app] for app in APPS[1:]} == {app: before[app] for app in APPS[1:]}  # not touched
    lb = fleet_host("lb1")
    assert lb.run("nginx -t").rc == 0 and " down;" not in lb.file(UPSTREAM_FILE).content_string


# One refusal of each kind, end to end (the unit tables hold every bad value): nothing restarts, the LB is untouched.
@pytest.mark.parametrize("name, extravars, message", [
    ("rolling.yml", {"rolling_on_failure": "undo"}, "rolling_on_failure='undo' must be one of stop, rollback"),
    ("rolling.yml", {"rolling_batch": 0}, "rolling_batch=0 must be at least 1 host"),
    ("rolling.yml", {"rolling_batch": "100%"}, "takes up to 5 of the 5 live hosts out of rotation at once"),
    ("rolling.yml", {"rolling_batch": 3, "rolling_min_in_service": "60%"}, "leaving 2 in service; "
     "rolling_min_in_service=60% asks for at least 3"),
    ("rolling.yml", {"rolling_max_fail_percentage": 150}, "rolling_max_fail_percentage=150 must be a whole number"),
    # refused by the roles' argument specs, as clearly
    ("rolling.yml", {"fleet_lock_wait": "soon"}, "'fleet_lock_wait' is of type str and we were unable to convert to int"),
    ("canary.yml", {"canary_split": "random"}, "value of canary_split must be one of: weights, sticky, got: random"),
    ("canary.yml", {"canary_action": "go"}, "value of canary_action must be one of: deploy, promote, abort, status, got: go"),
    ("rolling.yml", {"analysis_max_error_rate": "lots"}, "analysis_max_error_rate='lots' must be a number above 0"),
    ("rolling.yml", {"rolling_bake_seconds": -1}, "rolling_bake_seconds=-1 must be a whole number 0 or more"),
])
def test_bad_input_is_refused_naming_it_before_any_change(playbook, fleet_host, name, extravars, message):
    lb = fleet_host("lb1")
    before = main_pids(fleet_host), lb.file(UPSTREAM_FILE).content_string
    runner = playbook(name, **dict({"app_version": "1.1.0"}, **extravars))
    assert runner.rc != 0
    assert any(message in text for text in failure_messages(runner)), failure_messages(runner)
    assert set(changed_hosts(runner)) & set(APPS) == set()
    assert (main_pids(fleet_host), lb.file(UPSTREAM_FILE).content_string) == before
