"""bluegreen.yml on 3 blue + 3 green hosts behind lb1 and lb2, under 300 requests/s on new connections (through
lb1; through lb2 for the rollback) for deploy, switch and rollback, measured until 10 s after each playbook
ends.

The tests run in file order, each from the state the previous one left (converge: blue live on 1.0.0, green
idle on 1.0.0): refusals, three deploys that stop before the switch, one whose switch fails on lb2, the deploy
that switches, its rollback, retire and start."""

import json
import subprocess
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import ansible_runner
import pytest
import yaml
from conftest import (LOCK_FILE, OTHER_RUN_ID, PROJECT, TAIL_SECONDS, UPSTREAM_FILE, addresses, answers,
                      assert_nothing_dropped, changed_hosts, failure_messages, lb_urls, task_runs, under_load,
                      write_lock)
from fleet_cli import summary as fleet_summary

BLUE = ["blue1", "blue2", "blue3"]
GREEN = ["green1", "green2", "green3"]
LBS = ["lb1", "lb2"]
CURRENT = "/opt/user-api/current"
HOOKS = Path(__file__).resolve().parent / "hooks"
SWITCH_TASK = "Make the new live set the upstream's only servers, on every load balancer"
# Deploys that test something else than the bake: without load there is nothing to judge, under load 10 s do.
NO_BAKE, SHORT_BAKE = {"bluegreen_bake_seconds": 0}, {"bluegreen_bake_seconds": 10}
TRY_TASK = "Take the deploy lock on every load balancer at once, if no other run holds one"
IN_ORDER_TASK = "Take the deploy lock, waiting for another run's"


def versions_started(report, after=0.0, before=float("inf")):
    """{version: count} of the requests started in the epoch window [after, before)."""
    seen = {}
    for t, _, version, _ in report["responses"]:
        if after <= report["started_at"] + t < before:
            seen[version] = seen.get(version, 0) + 1
    return seen


def task_started(runner, name):
    """Epoch when the task called `name` started."""
    event = next(e for e in runner.events
                 if e["event"] == "playbook_on_task_start" and e["event_data"].get("task") == name)
    return datetime.fromisoformat(event["created"]).timestamp()


def upstream_hosts(text, lab):
    """The app hosts named by the server lines of an upstream file."""
    by_address = {f"{host['address']}:8000": host["name"] for host in lab["hosts"]}
    return [by_address[line.split()[1]] for line in text.splitlines() if line.strip().startswith("server ")]


def through_every_lb(lab, count=15):
    """{lb: {host: version}} of `count` requests through each LB: lb2 answers users too, not only its file."""
    return {host["name"]: answers(f"http://{host['address']}/", count)
            for host in lab["hosts"] if "lb" in host["groups"]}


def every_lb_sends_to(colour, version):
    return {lb: {host: version for host in colour} for lb in LBS}


@pytest.fixture(scope="module")
def hosts(fleet_host):
    return {name: fleet_host(name) for name in BLUE + GREEN + LBS}


@pytest.fixture(scope="module")
def upstreams(hosts):
    """Reads the upstream file of every LB: {lb: text}."""
    return lambda: {lb: hosts[lb].file(UPSTREAM_FILE).content_string for lb in LBS}


@pytest.fixture(scope="module")
def original_upstreams(upstreams):
    """The upstream files as site.yml created them (blue live), read before any test changes them."""
    return upstreams()


def test_converge_made_blue_live(original_upstreams, lab):
    for text in original_upstreams.values():
        assert upstream_hosts(text, lab) == BLUE
    assert through_every_lb(lab) == every_lb_sends_to(BLUE, "1.0.0")


# ---- refusals -----------------------------------------------------------------------------------------------

def inventory_of(tmp_path, groups):
    """An inventory with these groups ({group: [hosts]}) and the lab's group_vars."""
    tmp_path.mkdir()
    tmp_path.joinpath("hosts.yml").write_text(yaml.safe_dump(
        {"all": {"children": {group: {"hosts": {host: None for host in members}}
                              for group, members in groups.items()}}}))
    tmp_path.joinpath("group_vars").symlink_to(PROJECT / "lab" / "group_vars")
    return tmp_path


@pytest.mark.parametrize("groups, message", [
    ({"app": BLUE + GREEN, "lb": LBS}, "The inventory has no blue and no green group"),
    ({"blue": BLUE, "green": GREEN + ["blue3"], "lb": LBS}, "blue3 is in both blue and green"),
    ({"blue": BLUE, "green": [], "lb": LBS}, "The green group is empty"),
    ({"blue": BLUE, "green": GREEN}, "The inventory has no lb group"),
], ids=["no colours", "host in both", "empty colour", "no lb"])
def test_refuses_an_inventory_that_is_not_blue_green(tmp_path, groups, message):
    (tmp_path / "runner").mkdir()
    runner = ansible_runner.run(
        private_data_dir=str(tmp_path / "runner"), project_dir=str(PROJECT),
        playbook=str(PROJECT / "playbooks" / "bluegreen.yml"),
        inventory=str(inventory_of(tmp_path / "inventory", groups)),
        extravars={"app_version": "1.1.0"}, envvars={"ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg")}, quiet=True)
    assert runner.rc != 0
    assert any(message in text and "Nothing was changed" in text for text in failure_messages(runner)), \
        failure_messages(runner)
    # refused on the controller, before any host was contacted (not even tried and found unreachable)
    assert set().union(*runner.stats.values()) == {"localhost"}, runner.stats


def test_refuses_when_the_lbs_do_not_send_all_traffic_to_one_colour(playbook, hosts, lab, upstreams,
                                                                      original_upstreams):
    blue1, green1 = (f"{host['address']}:8000" for host in lab["hosts"] if host["name"] in ("blue1", "green1"))
    hosts["lb2"].run_test(f"sed -i 's/{blue1}/{green1}/' {UPSTREAM_FILE}")  # by hand, behind the strategy's back
    try:
        runner = playbook("bluegreen.yml", app_version="1.1.0")
    finally:
        hosts["lb2"].run_test(f"sed -i 's/{green1}/{blue1}/' {UPSTREAM_FILE}")
    assert runner.rc != 0
    assert "Blue-green needs every LB to send all traffic to one colour, but lb1 sends it to blue; lb2 sends it " \
           "to blue and green. Nothing was changed." in failure_messages(runner)
    assert changed_hosts(runner) == {}
    assert upstreams() == original_upstreams
    assert through_every_lb(lab) == every_lb_sends_to(BLUE, "1.0.0")


# ---- deploys that stop before the switch ---------------------------------------------------------------------

def assert_lb_untouched(runner, upstreams, original_upstreams, lab):
    assert upstreams() == original_upstreams
    assert not set(changed_hosts(runner)) & set(LBS + BLUE), changed_hosts(runner)
    assert through_every_lb(lab) == every_lb_sends_to(BLUE, "1.0.0")


def test_install_that_never_gets_healthy_stops_before_the_switch(playbook, hosts, upstreams, original_upstreams,
                                                                  lab):
    runner = playbook("bluegreen.yml", app_version="1.1.0", release_health_timeout=3,
                      release_environment={"USER_API_FAULT_HEALTH": "true"})
    assert runner.rc != 0
    stop = next(text for text in failure_messages(runner) if text.startswith("Stopped before the switch"))
    assert "Switched back to 1.0.0" in stop and "every LB still sends all traffic to blue (1.0.0)" in stop
    # each host is named with the release role's reason, and each went back to 1.0.0 on its own: its
    # `current` link and what its port answers
    for host, address in zip(GREEN, addresses(lab, "green")):
        assert f"1.1.0 failed on {host}" in stop
        assert hosts[host].file(CURRENT).linked_to == "/opt/user-api/releases/1.0.0", host
        assert answers(f"http://{address}:8000/", 1) == {host: "1.0.0"}
    assert_lb_untouched(runner, upstreams, original_upstreams, lab)


def test_failing_smoke_test_leaves_the_lb_untouched(load, playbook, upstreams, original_upstreams, lab):
    # Healthy, so the release role keeps it, but GET / answers 500: only the smoke test catches it.
    runner, report, _ = under_load(load, playbook, "bluegreen.yml", app_version="1.1.0",
                                   release_environment={"USER_API_FAULT_ERROR_RATE": "1"})
    assert runner.rc != 0
    stop = next(text for text in failure_messages(runner) if text.startswith("Stopped before the switch"))
    assert "3 of 3 green hosts failed - green1, green2, green3: Send the smoke request" in stop
    assert "Status code was 500" in stop
    assert_nothing_dropped(report, TAIL_SECONDS + 5)
    assert report["versions"] == {"1.0.0": report["ok"]}, "users saw the failing version"
    assert_lb_untouched(runner, upstreams, original_upstreams, lab)


def test_failing_pre_switch_hook_stops_before_the_switch(playbook, upstreams, original_upstreams, lab):
    runner = playbook("bluegreen.yml", app_version="1.1.0",
                      bluegreen_hooks={"before_switch": str(HOOKS / "schema_incompatible.yml")})
    assert runner.rc != 0
    assert any(text.startswith("Stopped before the switch: Check that the schema suits both versions: schema 42")
               for text in failure_messages(runner)), failure_messages(runner)
    assert_lb_untouched(runner, upstreams, original_upstreams, lab)


def test_switch_that_fails_on_one_lb_puts_every_lb_back(playbook, hosts, upstreams, original_upstreams, lab):
    hosts["lb2"].run_test("systemctl stop nginx")  # its reload fails, after lb1 switched
    try:
        runner = playbook("bluegreen.yml", app_version="1.1.0")
    finally:
        hosts["lb2"].run_test("systemctl start nginx")
    assert runner.rc != 0
    assert any(text.startswith("The switch to green failed") and "lb2: The reload failed" in text
               and "Every LB is back on blue (1.0.0)" in text for text in failure_messages(runner)), \
        failure_messages(runner)
    assert upstreams() == original_upstreams
    assert through_every_lb(lab) == every_lb_sends_to(BLUE, "1.0.0")


# ---- deploy, rollback ----------------------------------------------------------------------------------------

def test_deploy_switches_every_lb_to_green_without_dropping_a_request(load, playbook, upstreams, lab):
    runner, report, returned = under_load(load, playbook, "bluegreen.yml", app_version="1.1.0",
                                          bluegreen_hooks={"before_switch": str(HOOKS / "switch_expected.yml")})
    assert runner.rc == 0, failure_messages(runner)
    assert task_runs(runner, "Check that the hook is told where the switch goes") > 0
    assert_nothing_dropped(report, TAIL_SECONDS + 5)
    # users stay on blue until the switch, and every request after the playbook returned gets 1.1.0
    assert set(versions_started(report, before=task_started(runner, SWITCH_TASK))) == {"1.0.0"}
    assert set(versions_started(report, after=returned)) == {"1.1.0"}
    for text in upstreams().values():
        assert upstream_hosts(text, lab) == GREEN
    assert through_every_lb(lab) == every_lb_sends_to(GREEN, "1.1.0")
    # blue keeps running for an instant rollback
    for host, address in zip(BLUE, addresses(lab, "blue")):
        assert answers(f"http://{address}:8000/", 1) == {host: "1.0.0"}


def test_second_deploy_changes_nothing(playbook, hosts):
    runner = playbook("bluegreen.yml", app_version="1.1.0")
    assert runner.rc == 0, failure_messages(runner)
    assert changed_hosts(runner) == {}
    assert "Nothing to do: green (live) already runs 1.1.0." in runner.stdout.read()
    # no other run held a lock: one task took it on both LBs at once, and it was given back before the report
    assert [result["acquired"] for result in results(runner, TRY_TASK)] == [True] * len(LBS)
    assert task_runs(runner, IN_ORDER_TASK) == 0
    assert lock_files(hosts) == {"lb1": None, "lb2": None}


# ---- the deploy lock on two LBs: at once, or in inventory order when another run holds one ----------------------



def lock_files(hosts):
    """{lb: the lock file's text, None when the LB holds no lock}."""
    return {lb: hosts[lb].file(LOCK_FILE).content_string if hosts[lb].file(LOCK_FILE).exists else None
            for lb in LBS}


def test_a_lock_on_the_second_lb_is_refused_and_the_first_given_back(playbook, hosts, upstreams):
    before = upstreams()
    write_lock(hosts["lb2"], "ci-7", expires_in=600)
    theirs = lock_files(hosts)["lb2"]
    runner = playbook("bluegreen.yml", app_version="1.1.0", fleet_lock_wait=1)
    assert runner.rc != 0
    held = f"The deploy lock on lb2 is held by ops@ci-7 (run {OTHER_RUN_ID}) running canary.yml for 9.9.9"
    assert any(held in message and
               "Waited 1 s (fleet_lock_wait); nothing was changed" in message
               for message in failure_messages(runner)), failure_messages(runner)
    # the try at once took lb1's; the run gave it back, took it again in order and gave it back on refusal
    assert lock_files(hosts) == {"lb1": None, "lb2": theirs}
    assert upstreams() == before
    hosts["lb2"].run_expect([0], f"rm {LOCK_FILE}")


def test_a_try_that_fails_on_one_lb_gives_back_the_lock_on_the_others(playbook, hosts, upstreams):
    before = upstreams()
    hosts["lb2"].run_expect([0], f"rm -f {LOCK_FILE}.guard && mkdir {LOCK_FILE}.guard")  # no guard file to open
    try:
        runner = playbook("bluegreen.yml", app_version="1.1.0")
    finally:
        hosts["lb2"].run_expect([0], f"rmdir {LOCK_FILE}.guard")
    assert runner.rc != 0
    assert any(message.startswith(f"cannot read or write the deploy lock {LOCK_FILE}: ") and
               "Is a directory" in message for message in failure_messages(runner)), failure_messages(runner)
    assert lock_files(hosts) == {"lb1": None, "lb2": None}  # lb1's was taken in the same task, then given back
    assert upstreams() == before


def ours(lock_text):
    return bool(lock_text) and json.loads(lock_text)["playbook"] == "bluegreen.yml"


def test_a_run_waits_at_the_second_lb_holding_the_first_then_goes_on(playbook, hosts):
    write_lock(hosts["lb2"], "ci-7", expires_in=600)
    waiting_at_lb2 = threading.Event()

    def watch(event):  # the in-order take starts on lb2 once lb1's is taken (serial: 1)
        data = event.get("event_data", {})
        if event["event"] == "runner_on_start" and data.get("task") == IN_ORDER_TASK and data.get("host") == "lb2":
            waiting_at_lb2.set()
        return True

    outcome = {}
    run = threading.Thread(target=lambda: outcome.update(
        runner=playbook("bluegreen.yml", event_handler=watch, app_version="1.1.0", fleet_lock_wait=60)))
    run.start()
    assert waiting_at_lb2.wait(timeout=50), "the run never went on to take lb2's lock in order"
    time.sleep(2)  # lb2's take waits inside the module, asking every 2 s
    waiting = lock_files(hosts)
    hosts["lb2"].run_expect([0], f"rm {LOCK_FILE}")  # the other run ends
    run.join()
    runner = outcome["runner"]
    assert runner.rc == 0, failure_messages(runner)
    assert ours(waiting["lb1"]) and json.loads(waiting["lb2"])["run_id"] == OTHER_RUN_ID, waiting
    assert (f"The deploy lock on lb2 is held by ops@ci-7 (run {OTHER_RUN_ID}) running canary.yml for 9.9.9"
            in runner.stdout.read())
    assert task_runs(runner, IN_ORDER_TASK) == len(LBS)
    assert changed_hosts(runner) == {}
    assert lock_files(hosts) == {"lb1": None, "lb2": None}


def test_rollback_switches_back_to_blue_without_dropping_a_request(load, playbook, upstreams, original_upstreams,
                                                                   lab):
    """Users come through lb2 here (through lb1 in the other load tests): lb2's own log is the witness of its
    switch. One load generator, as everywhere: two would share the cores and lag."""
    runner, [report], returned = under_load(load, playbook, "bluegreen.yml", bluegreen_action="rollback",
                                            load_urls=lb_urls(lab)[1:])
    assert runner.rc == 0, failure_messages(runner)
    assert_nothing_dropped(report, TAIL_SECONDS + 5)
    assert set(versions_started(report, before=task_started(runner, SWITCH_TASK))) == {"1.1.0"}
    assert set(versions_started(report, after=returned)) == {"1.0.0"}
    # switched back and forth, the upstream files are again as site.yml created them, byte for byte
    assert upstreams() == original_upstreams
    assert through_every_lb(lab) == every_lb_sends_to(BLUE, "1.0.0")


def test_second_rollback_finds_nothing_to_roll_back(playbook):
    runner = playbook("bluegreen.yml", bluegreen_action="rollback")
    assert runner.rc == 0, failure_messages(runner)
    assert changed_hosts(runner) == {}
    assert "green idles on the newer 1.1.0 - the rollback already happened" in runner.stdout.read()


# ---- retire, start -------------------------------------------------------------------------------------------

def test_retire_stops_the_idle_colour_only(playbook, hosts, upstreams, original_upstreams, lab):
    runner = playbook("bluegreen.yml", bluegreen_action="retire")
    assert runner.rc == 0, failure_messages(runner)
    assert set(changed_hosts(runner)) == set(GREEN)
    for host in GREEN:
        service = hosts[host].service("user-api")
        assert not service.is_running and not service.is_enabled
        assert hosts[host].file("/opt/user-api/releases/1.1.0/user-api").exists  # kept for a quick start
    assert all(hosts[host].service("user-api").is_running for host in BLUE)
    assert upstreams() == original_upstreams
    assert through_every_lb(lab) == every_lb_sends_to(BLUE, "1.0.0")
    assert changed_hosts(playbook("bluegreen.yml", bluegreen_action="retire")) == {}


def test_next_deploy_starts_the_retired_colour(playbook, hosts, lab):
    runner = playbook("bluegreen.yml", app_version="1.1.0", **NO_BAKE)
    assert runner.rc == 0, failure_messages(runner)
    assert all(hosts[host].service("user-api").is_enabled for host in GREEN)
    assert through_every_lb(lab) == every_lb_sends_to(GREEN, "1.1.0")


def test_rollback_refuses_while_the_previous_colour_is_retired(playbook, upstreams, lab):
    assert playbook("bluegreen.yml", bluegreen_action="retire").rc == 0  # blue, now idle
    # the full checks read the service's state on each host (a break-glass rollback asks the LBs: see below)
    runner = playbook("bluegreen.yml", bluegreen_action="rollback", bluegreen_rollback_full_checks=True)
    assert runner.rc != 0
    assert any(text.startswith("Stopped before the switch") and "blue1, blue2, blue3: Check that the service runs" in text
               and "retired: start the colour with -e bluegreen_action=start" in text
               for text in failure_messages(runner)), failure_messages(runner)
    for text in upstreams().values():
        assert upstream_hosts(text, lab) == GREEN
    assert through_every_lb(lab) == every_lb_sends_to(GREEN, "1.1.0")


def test_start_makes_the_rollback_possible_again(playbook, hosts, lab):
    runner = playbook("bluegreen.yml", bluegreen_action="start")
    assert runner.rc == 0, failure_messages(runner)
    assert all(hosts[host].service("user-api").is_enabled for host in BLUE)
    runner = playbook("bluegreen.yml", bluegreen_action="rollback")
    assert runner.rc == 0, failure_messages(runner)
    assert through_every_lb(lab) == every_lb_sends_to(BLUE, "1.0.0")


# ---- break-glass rollback, every LB at once, the smoke test as one task on the LB (issue 12) ----------------------

READ_TASK = "Read the servers of the upstream, and refuse to go on if Nginx would not load its configuration"
SMOKE_TASK = "Ask every idle host from the load balancer, in one task there - health, smoke request, version"


def epoch(event):
    return datetime.fromisoformat(event["created"]).timestamp()


def host_events(runner, kind, task):
    """{host: epoch} of the events of this kind (runner_on_start, runner_on_ok, ...) of the task called `task`."""
    return {event["event_data"]["host"]: epoch(event) for event in runner.events
            if event["event"] == kind and event["event_data"].get("task") == task}


def results(runner, task):
    return [event["event_data"]["res"] for event in runner.events
            if event["event"] == "runner_on_ok" and event["event_data"].get("task") == task]


def contacted(runner):
    """Every host the run tried, whatever came of it."""
    return set().union(*runner.stats.values())


def test_deploy_smoke_tests_every_idle_host_in_one_task_on_the_lb(load, playbook, lab):
    runner, report, _ = under_load(load, playbook, "bluegreen.yml", app_version="1.1.0", **SHORT_BAKE)
    assert runner.rc == 0, failure_messages(runner)
    assert_nothing_dropped(report, TAIL_SECONDS + 5)
    # one task (one result) asked every idle host - not one SSH session per idle host delegated to the LB
    smoke = results(runner, SMOKE_TASK)
    assert len(smoke) == 1 and sorted(smoke[0]["answers"]) == GREEN, smoke
    assert all(answer["health"] == 200 and answer["request"] == 200 and answer["version"] == "1.1.0"
               for answer in smoke[0]["answers"].values()), smoke[0]["answers"]
    assert through_every_lb(lab) == every_lb_sends_to(GREEN, "1.1.0")


def test_break_glass_rollback_reads_only_the_lbs_and_switches_them_at_once(load, playbook, lab, upstreams,
                                                                           original_upstreams):
    runner, report, returned = under_load(load, playbook, "bluegreen.yml", bluegreen_action="rollback")
    assert runner.rc == 0, failure_messages(runner)
    assert_nothing_dropped(report, TAIL_SECONDS + 2)
    # no app host was contacted: each LB asked every app host's health in the round trip that read its upstream
    assert contacted(runner) == {"localhost", *LBS}, runner.stats
    assert sorted(host_events(runner, "runner_on_ok", READ_TASK)) == LBS
    assert [sorted(read["probes"]) for read in results(runner, READ_TASK)] == [sorted(BLUE + GREEN)] * len(LBS)
    # the LBs switched at once: each had started its switch (nginx -t, reload) before either had finished
    started = host_events(runner, "runner_on_start", SWITCH_TASK)
    ended = host_events(runner, "runner_on_ok", SWITCH_TASK)
    assert sorted(started) == sorted(ended) == LBS
    assert max(started.values()) < min(ended.values()), (started, ended)
    stats = [epoch(e) for e in runner.events if e["event"] in ("playbook_on_start", "playbook_on_stats")]
    print(f"break-glass rollback: playbook {max(stats) - min(stats):.2f} s; switch ended on lb1 and lb2 "
          f"{abs(ended['lb1'] - ended['lb2']):.3f} s apart")
    assert set(versions_started(report, before=task_started(runner, SWITCH_TASK))) == {"1.1.0"}
    assert set(versions_started(report, after=returned)) == {"1.0.0"}
    assert upstreams() == original_upstreams
    assert through_every_lb(lab) == every_lb_sends_to(BLUE, "1.0.0")


def test_break_glass_rollback_stops_when_a_host_of_the_previous_colour_does_not_answer(playbook, hosts, lab,
                                                                                      upstreams):
    assert playbook("bluegreen.yml", app_version="1.1.0", **NO_BAKE).rc == 0  # green live, blue idle
    switched = upstreams()
    hosts["blue2"].run_test("systemctl stop user-api")
    try:
        runner = playbook("bluegreen.yml", bluegreen_action="rollback")
    finally:
        hosts["blue2"].run_test("systemctl start user-api")
    assert runner.rc != 0
    assert any(text.startswith("Stopped before the switch: Check that every idle host passed its smoke test: 1 of 3 "
                               "blue hosts failed - blue2: Ask the health check from lb1, lb2: health: ") and
               "Connection refused - stopped or retired? -e bluegreen_action=start" in text and
               "every LB still sends all traffic to green (1.1.0)" in text
               for text in failure_messages(runner)), failure_messages(runner)
    assert contacted(runner) == {"localhost", *LBS}, runner.stats
    assert upstreams() == switched
    assert through_every_lb(lab) == every_lb_sends_to(GREEN, "1.1.0")


def test_rollback_with_the_full_checks_reads_every_host_and_smoke_tests_in_one_task(load, playbook, lab, upstreams,
                                                                                   original_upstreams):
    runner, report, _ = under_load(load, playbook, "bluegreen.yml", bluegreen_action="rollback",
                                   bluegreen_rollback_full_checks=True)
    assert runner.rc == 0, failure_messages(runner)
    assert_nothing_dropped(report, TAIL_SECONDS + 2)
    assert contacted(runner) == {"localhost", *LBS, *BLUE, *GREEN}
    assert ["probes" in read for read in results(runner, READ_TASK)] == [False] * len(LBS)  # SSH, not the LBs
    smoke = results(runner, SMOKE_TASK)
    assert len(smoke) == 1 and {name: a["version"] for name, a in smoke[0]["answers"].items()} == \
        {host: "1.0.0" for host in BLUE}
    assert upstreams() == original_upstreams
    assert through_every_lb(lab) == every_lb_sends_to(BLUE, "1.0.0")


# ---- the bake: users' traffic after the switch --------------------------------------------------------------------

@pytest.fixture(scope="module")
def version_1_2_0():
    """A third build, so that the bad version is one neither colour runs."""
    subprocess.run(["make", "--no-print-directory", "build/user-api-1.2.0-linux-amd64"], cwd=PROJECT, check=True)
    return "1.2.0"


def deploy_report(runner):
    return next(event["event_data"]["res"]["report"] for event in runner.events
                if event["event"] == "runner_on_ok" and event["event_data"].get("task") == "Build the deploy report")


def test_a_version_that_fails_users_is_switched_back_by_the_bake(load, playbook, lab, upstreams, original_upstreams,
                                                                version_1_2_0, fleet_host):
    """Healthy to its smoke test, bad for users (5% errors): the bake after the switch judges green against blue's
    traffic before it, fails, and every LB goes back to blue in one reload each; green keeps 1.2.0 installed."""
    runner, report, _ = under_load(load, playbook, "bluegreen.yml", app_version=version_1_2_0,
                                   release_environment={"USER_API_FAULT_ERROR_RATE": "0.05"})
    assert runner.rc != 0
    deploy = deploy_report(runner)
    assert deploy["status"] == "stopped" and fleet_summary.exit_code(runner.status, deploy["status"], {"x"}, None) == 3
    assert deploy["outcome"].startswith("SWITCHED BACK after the switch: the bake failed: error rate"), deploy
    assert deploy["analysis"]["decision"] == "fail" and deploy["analysis"]["baseline"]["end"] > 0
    # the LB change of the switch back: after it (and 2 s for Nginx's old workers), no answer came from green
    switched_back = max(epoch(event) for event in runner.events if event["event"] == "runner_on_ok"
                        and event["event_data"].get("task") == SWITCH_TASK)
    green = {f"{address}:8000" for address in addresses(lab, "green")}
    lines = assert_nothing_dropped(report, TAIL_SECONDS + 5, failed_share=0.01, failing_backends=green)
    assert [line for line in lines if line["upstream"] in green and float(line["msec"]) > switched_back + 2] == []
    assert upstreams() == original_upstreams
    assert through_every_lb(lab) == every_lb_sends_to(BLUE, "1.0.0")
    for address in addresses(lab, "green"):  # kept for inspection; asked on /healthz, which the 5% fault spares
        with urllib.request.urlopen(f"http://{address}:8000/healthz", timeout=5) as response:
            assert (response.status, response.headers["X-App-Version"]) == (200, version_1_2_0), address
