"""Reconcile decisions, from tables: the LBs' upstreams, what each LB's probe saw and each host's `current` release
in; which servers go in, go out or stay - or a refusal - out. No hosts needed."""

import pytest

from ansible_collections.fleet.deployer.plugins.plugin_utils import fleet, reconcile

A1, A2, A3 = "10.0.0.1:8000", "10.0.0.2:8000", "10.0.0.3:8000"
HOSTS = {A1: {"name": "app1", "release": "1.1.0"}, A2: {"name": "app2", "release": "1.1.0"},
         A3: {"name": "app3", "release": "1.0.0"}}
OK_NEW = {"status": 200, "version": "1.1.0", "error": ""}
OK_OLD = {"status": 200, "version": "1.0.0", "error": ""}
REFUSED = {"status": None, "version": "", "error": "health: [Errno 111] Connection refused"}
FAILING = {"status": 503, "version": "1.1.0", "error": ""}


def servers(*down, addresses=(A1, A2, A3)):
    return [{"address": address, "down": address in down, "weight": 1} for address in addresses]


def one_lb(upstream, probes, hosts=HOSTS, floor=1):
    return reconcile.plan({"lb1": {"servers": upstream, "probes": probes}}, hosts, floor)


@pytest.mark.parametrize("probe, release, in_line, why", [
    (OK_NEW, "1.1.0", True, "healthy on its current release 1.1.0"),
    (OK_OLD, "1.1.0", False, "answers 1.0.0 but its current release is 1.1.0 (a deploy did not finish)"),
    (FAILING, "1.1.0", False, "unhealthy: health check answered 503"),
    (REFUSED, "1.1.0", False, "unhealthy: no answer (health: [Errno 111] Connection refused)"),
    ({}, "1.1.0", False, "unhealthy: no answer (no probe)"),
    (OK_NEW, None, None, "healthy on 1.1.0, but its current release could not be read (unreachable over SSH)"),
    (REFUSED, None, False, "unhealthy: no answer (health: [Errno 111] Connection refused)"),
])
def test_judge_one_host(probe, release, in_line, why):
    assert reconcile.judge(probe, release) == (in_line, why)


@pytest.mark.parametrize("case, upstream, probes, actions, changes", [
    ("all in line: nothing to do", servers(), {A1: OK_NEW, A2: OK_NEW, A3: OK_OLD},
     ["unchanged", "unchanged", "unchanged"], []),
    ("drained but healthy on its release: back in", servers(A2), {A1: OK_NEW, A2: OK_NEW, A3: OK_OLD},
     ["unchanged", "in", "unchanged"], [{"address": A2, "down": False}]),
    ("in rotation but stopped: out", servers(), {A1: OK_NEW, A2: REFUSED, A3: OK_OLD},
     ["unchanged", "out", "unchanged"], [{"address": A2, "down": True}]),
    ("drained and unhealthy: stays out", servers(A2), {A1: OK_NEW, A2: FAILING, A3: OK_OLD},
     ["unchanged", "unchanged", "unchanged"], []),
    ("restarted onto the old binary, link on the new: out", servers(), {A1: OK_NEW, A2: OK_OLD, A3: OK_OLD},
     ["unchanged", "out", "unchanged"], [{"address": A2, "down": True}]),
    ("in and out in one run", servers(A1), {A1: OK_NEW, A2: REFUSED, A3: OK_OLD},
     ["in", "out", "unchanged"], [{"address": A1, "down": False}, {"address": A2, "down": True}]),
])
def test_plan_one_lb(case, upstream, probes, actions, changes):
    decided = one_lb(upstream, probes)
    assert [row["action"] for row in decided["rows"]["lb1"]] == actions, case
    assert decided["changes"]["lb1"] == changes, case


def test_a_server_that_is_no_inventory_host_is_left_alone():
    stranger = "10.9.9.9:8000"
    decided = one_lb(servers(stranger, addresses=(A1, stranger)), {A1: OK_NEW, stranger: REFUSED})
    assert decided["rows"]["lb1"][1] == {"host": "?", "address": stranger, "action": "unchanged", "down": True,
                                         "why": "not an app host of the inventory: left alone"}
    assert decided["changes"]["lb1"] == []


def test_a_healthy_host_whose_release_is_unknown_stays_as_it_is():
    hosts = dict(HOSTS, **{A2: {"name": "app2", "release": None}})
    for down in ((), (A2,)):
        decided = one_lb(servers(*down), {A1: OK_NEW, A2: OK_NEW, A3: OK_OLD}, hosts)
        assert decided["rows"]["lb1"][1]["action"] == "unchanged" and decided["changes"]["lb1"] == []


@pytest.mark.parametrize("case, upstream, probes, floor, message", [
    ("every host stopped", servers(addresses=(A1, A2)), {A1: REFUSED, A2: REFUSED}, 1,
     "lb1: taking app1, app2 out would leave 0 of 2 live hosts in rotation, fewer than reconcile_min_in_service=1 (1)"),
    ("the last one in rotation stopped", servers(A1, addresses=(A1, A2)), {A1: REFUSED, A2: REFUSED}, 1,
     "lb1: taking app2 out would leave 0 of 2 live hosts in rotation"),
    ("a floor of 2 of 3", servers(), {A1: OK_NEW, A2: REFUSED, A3: FAILING}, 2,
     "lb1: taking app2, app3 out would leave 1 of 3 live hosts in rotation, fewer than reconcile_min_in_service=2 (2)"),
    ("a floor of 100%", servers(), {A1: OK_NEW, A2: OK_NEW, A3: FAILING}, "100%",
     "would leave 2 of 3 live hosts in rotation, fewer than reconcile_min_in_service=100% (3)"),
])
def test_refuses_to_empty_the_rotation_naming_the_numbers(case, upstream, probes, floor, message):
    with pytest.raises(fleet.Refusal) as refused:
        one_lb(upstream, probes, floor=floor)
    assert message in str(refused.value), case
    assert "Nothing was changed" in str(refused.value)


def test_refused_on_one_lb_changes_no_lb():
    lbs = {"lb1": {"servers": servers(A2), "probes": {A1: OK_NEW, A2: OK_NEW, A3: OK_OLD}},
           "lb2": {"servers": servers(addresses=(A2,)), "probes": {A2: REFUSED}}}
    with pytest.raises(fleet.Refusal, match="lb2: taking app2 out would leave 0 of 1"):
        reconcile.plan(lbs, HOSTS)


def test_each_lb_decides_on_what_it_sees():
    lbs = {"lb1": {"servers": servers(A1), "probes": {A1: OK_NEW, A2: OK_NEW, A3: OK_OLD}},
           "lb2": {"servers": servers(), "probes": {A1: REFUSED, A2: OK_NEW, A3: OK_OLD}}}
    decided = reconcile.plan(lbs, HOSTS)
    assert decided["changes"] == {"lb1": [{"address": A1, "down": False}], "lb2": [{"address": A1, "down": True}]}


@pytest.mark.parametrize("spec, message", [
    (0, "reconcile_min_in_service=0 keeps no host in rotation"),
    ("0%", "reconcile_min_in_service=0% keeps no host in rotation"),
    ("many", "reconcile_min_in_service='many' is not a count of hosts"),
    ("150%", "reconcile_min_in_service=150% is more than 100%"),
    (True, "reconcile_min_in_service=True is not a count of hosts"),
])
def test_bad_floor_is_refused_naming_it(spec, message):
    with pytest.raises(fleet.Refusal, match=message.replace("(", r"\(")):
        one_lb(servers(), {A1: OK_NEW, A2: OK_NEW, A3: OK_OLD}, floor=spec)


def test_an_unread_upstream_is_refused():
    with pytest.raises(fleet.Refusal, match="lb1: its upstream could not be read"):
        one_lb([], {})


def test_report_lines_say_what_changed_and_why():
    decided = one_lb(servers(A1), {A1: OK_NEW, A2: REFUSED, A3: OK_OLD})
    assert decided["lines"] == [
        "lb1 app1     10.0.0.1:8000        in: healthy on its current release 1.1.0",
        "lb1 app2     10.0.0.2:8000        out: unhealthy: no answer (health: [Errno 111] Connection refused)",
        "lb1 app3     10.0.0.3:8000        unchanged (in rotation): healthy on its current release 1.0.0",
        "lb1: 1 in, 1 out, 1 unchanged; 2 of 3 in rotation",
    ]
    rows = decided["rows"]
    assert reconcile.lines(rows, check_mode=True)[:2] == [
        "lb1 app1     10.0.0.1:8000        would go in: healthy on its current release 1.1.0",
        "lb1 app2     10.0.0.2:8000        would go out: unhealthy: no answer (health: [Errno 111] Connection refused)",
    ]


def test_hosts_and_probes_match_servers_in_one_normalised_form():
    # The inventory says App1.example:8000, the LB's line says app1.example:8000: the same server.
    hosts = {"App1.example:8000": {"name": "app1", "release": "1.1.0"}}
    probes = {"APP1.example:8000": OK_NEW}

    decided = one_lb([{"address": "app1.example:8000", "down": True}], probes, hosts)

    assert decided["rows"]["lb1"][0]["host"] == "app1"
    assert decided["changes"] == {"lb1": [{"address": "app1.example:8000", "down": False}]}
