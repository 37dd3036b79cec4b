"""Blue-green decisions, from tables: the inventory and the LBs' upstreams in, a plan (or a refusal) out."""

import pytest

from ansible_collections.fleet.deployer.plugins.plugin_utils import bluegreen, fleet, report

NOW = 1000.0
BLUE, GREEN, LBS = ["blue1", "blue2", "blue3"], ["green1", "green2", "green3"], ["lb1", "lb2"]
GROUPS = {"blue": BLUE, "green": GREEN, "lb": LBS}


def address(name):
    return f"10.0.{1 if name.startswith('blue') else 2}.{name[-1]}:8000"


def fleet_of(blue="1.0.0", green="1.0.0", **running):
    """Every host with its colour's version unless named in `running`."""
    versions = {**{n: blue for n in BLUE}, **{n: green for n in GREEN}, **running}
    return {n: fleet.Host(name=n, address=address(n), running=v) for n, v in versions.items()}


def lbs_on(*colours_per_lb, drained=()):
    """Each LB's upstream lists the hosts of the colours given for it, those named in `drained` marked down."""
    return {lb: [dict({"address": address(n)}, **({"down": True} if n in drained else {}))
                 for colour in colours for n in GROUPS[colour]]
            for lb, colours in zip(LBS, colours_per_lb)}


# ---- preflight: the inventory, before any host is contacted ---------------------------------------------------

@pytest.mark.parametrize("groups, action, version, message", [
    ({"app": BLUE + GREEN, "lb": LBS}, "deploy", "1.1.0", "The inventory has no blue and no green group"),
    ({"blue": BLUE, "lb": LBS}, "deploy", "1.1.0", "The inventory has no green group"),
    ({"blue": BLUE, "green": GREEN + ["blue3"], "lb": LBS}, "deploy", "1.1.0", "blue3 is in both blue and green"),
    ({"blue": BLUE, "green": GREEN + BLUE[:2], "lb": LBS}, "deploy", "1.1.0", "blue1, blue2 are in both"),
    ({"blue": BLUE, "green": [], "lb": LBS}, "deploy", "1.1.0", "The green group is empty"),
    ({"blue": [], "green": [], "lb": LBS}, "deploy", "1.1.0", "The blue group is empty. The green group is empty."),
    ({"blue": BLUE, "green": GREEN}, "deploy", "1.1.0", "The inventory has no lb group"),
    ({"blue": BLUE, "green": GREEN, "lb": []}, "deploy", "1.1.0", "The inventory has no lb group"),
    (GROUPS, "deploy", "", "Say which version to deploy: -e app_version=VERSION."),
    (GROUPS, "switch", "", "bluegreen_action='switch' is not one of deploy, rollback, retire, start"),
])
def test_preflight_refuses(groups, action, version, message):
    with pytest.raises(fleet.Refusal) as refused:
        bluegreen.preflight(groups, action, version)
    assert message in str(refused.value) and str(refused.value).endswith("Nothing was changed.")


@pytest.mark.parametrize("action, version", [("deploy", "1.1.0"), ("rollback", ""), ("retire", ""), ("start", "")])
def test_preflight_accepts(action, version):
    bluegreen.preflight(GROUPS, action, version)


# ---- plan -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case, hosts, lbs, action, version, check_mode, expected", [
    ("deploy to the idle colour", fleet_of(), lbs_on(["blue"], ["blue"]), "deploy", "1.1.0", False,
     {"live": "blue", "idle": "green", "version": "1.1.0", "note": "", "prepare": GREEN, "smoke_test": GREEN,
      "switch_to": "green", "retire": []}),
    ("green live: the deploy goes to blue", fleet_of(blue="1.0.0", green="1.1.0"), lbs_on(["green"], ["green"]),
     "deploy", "1.2.0", False, {"live": "green", "idle": "blue", "switch_to": "blue", "live_version": "1.1.0"}),
    ("drained servers count for their colour", fleet_of(), lbs_on(["blue"], ["blue"], drained=["blue2", "blue3"]),
     "deploy", "1.1.0", False, {"live": "blue", "idle": "green", "switch_to": "green"}),
    ("second deploy of the live version: nothing to do", fleet_of(blue="1.1.0"), lbs_on(["blue"], ["blue"]),
     "deploy", "1.1.0", False,
     {"note": "Nothing to do: blue (live) already runs 1.1.0.", "prepare": [], "smoke_test": [], "switch_to": ""}),
    ("check mode: nothing installed, so no smoke test of a deploy", fleet_of(), lbs_on(["blue"], ["blue"]),
     "deploy", "1.1.0", True, {"prepare": GREEN, "smoke_test": [], "switch_to": "green"}),
    ("rollback to the older idle colour", fleet_of(blue="1.0.0", green="1.1.0"), lbs_on(["green"], ["green"]),
     "rollback", "", False, {"version": "1.0.0", "smoke_test": BLUE, "switch_to": "blue", "prepare": []}),
    ("check-mode rollback still smoke-tests (read-only)", fleet_of(blue="1.0.0", green="1.1.0"),
     lbs_on(["green"], ["green"]), "rollback", "", True, {"smoke_test": BLUE}),
    ("second rollback: the idle colour is newer", fleet_of(blue="1.0.0", green="1.1.0"), lbs_on(["blue"], ["blue"]),
     "rollback", "", False,
     {"note": "Nothing to roll back: blue (live) runs 1.0.0 and green idles on the newer 1.1.0 - the rollback "
              "already happened. To go forward again: playbooks/bluegreen.yml -e app_version=1.1.0.",
      "switch_to": ""}),
    ("rollback to the same release", fleet_of(), lbs_on(["blue"], ["blue"]), "rollback", "", False,
     {"note": "Nothing to roll back: green idles on 1.0.0, the release blue (live) already runs."}),
    ("versions compare as versions, not text", fleet_of(blue="1.10.0", green="1.9.0"), lbs_on(["blue"], ["blue"]),
     "rollback", "", False, {"note": "", "switch_to": "green", "version": "1.9.0"}),
    ("retire the idle colour", fleet_of(), lbs_on(["blue"], ["blue"]), "retire", "", False,
     {"retire": GREEN, "prepare": [], "smoke_test": [], "switch_to": ""}),
    ("start it again: smoke-tested on its own version", fleet_of(), lbs_on(["blue"], ["blue"]), "start", "", False,
     {"prepare": GREEN, "smoke_test": GREEN, "switch_to": "", "version": ""}),
])
def test_plan(case, hosts, lbs, action, version, check_mode, expected):
    planned = bluegreen.plan(GROUPS, hosts, lbs, action, version, check_mode, NOW)
    assert {key: planned[key] for key in expected} == expected, case
    steps = {"prepare": planned["prepare"], "smoke_test": planned["smoke_test"], "retire": planned["retire"]}
    for entry in planned["add_hosts"]:  # each idle host joins the group of every step planned for it
        assert entry["groups"] == [f"bluegreen_{s}" for s, hosts_of in steps.items() if entry["name"] in hosts_of]
        assert entry["plan"] == {"action": action, "version": planned["version"]}


@pytest.mark.parametrize("case, hosts, lbs, action, message", [
    ("LBs disagree", fleet_of(), lbs_on(["blue"], ["blue", "green"]), "deploy",
     "Blue-green needs every LB to send all traffic to one colour, but lb1 sends it to blue; lb2 sends it to blue "
     "and green. Nothing was changed."),
    ("an LB sends traffic to a host in neither colour", fleet_of(),
     {"lb1": [{"address": "10.9.9.9:8000"}], "lb2": lbs_on(["blue"])["lb1"]}, "deploy",
     "lb1 sends it to hosts in neither colour; lb2 sends it to blue"),
    ("one LB on each colour", fleet_of(), lbs_on(["blue"], ["green"]), "deploy",
     "but lb1 sends it to blue; lb2 sends it to green"),
    ("an LB with no upstream yet", fleet_of(), {"lb1": [], "lb2": lbs_on(["blue"])["lb1"]}, "deploy",
     "No live set could be read from lb1 (unreachable, or no upstream yet: run playbooks/site.yml first)"),
    ("rollback to a colour never deployed", fleet_of(green=""), lbs_on(["blue"], ["blue"]), "rollback",
     "Cannot roll back to green: no release is known on green1, green2, green3 (never deployed, or unreachable). "
     "Nothing was changed: blue stays live."),
    ("rollback to a colour of mixed releases", fleet_of(green2="0.9.0"), lbs_on(["blue"], ["blue"]), "rollback",
     "Cannot roll back to green: its hosts run different releases (green1 1.0.0, green2 0.9.0, green3 1.0.0)"),
])
def test_plan_refuses(case, hosts, lbs, action, message):
    with pytest.raises(fleet.Refusal) as refused:
        bluegreen.plan(GROUPS, hosts, lbs, action, "1.1.0", False, NOW)
    assert message in str(refused.value), case


# ---- the gate before the switch -----------------------------------------------------------------------------

DEPLOY = bluegreen.plan(GROUPS, fleet_of(), lbs_on(["blue"], ["blue"]), "deploy", "1.1.0", False, NOW)
SMOKE_500 = "Send the smoke request, from the load balancer: Status code was 500"


@pytest.mark.parametrize("case, outcomes, reason", [
    ("every idle host passed", {n: {"status": "passed"} for n in GREEN}, ""),
    ("same reason: hosts grouped", {n: {"status": "failed", "note": SMOKE_500} for n in GREEN},
     f"3 of 3 green hosts failed - green1, green2, green3: {SMOKE_500}"),
    ("different reasons, and a host with no result",
     {"green1": {"status": "passed"}, "green2": {"status": "failed", "note": "user-api 1.1.0 failed on green2"}},
     "2 of 3 green hosts failed - green3: no result (unreachable, or failed before its smoke test: see above); "
     "green2: user-api 1.1.0 failed on green2"),
])
def test_gate(case, outcomes, reason):
    assert bluegreen.gate(DEPLOY, outcomes) == reason, case


# ---- the report -------------------------------------------------------------------------------------------------

def test_report_of_a_switch():
    passed = {n: {"status": "passed", "version": "1.1.0"} for n in GREEN}
    result = bluegreen.outcome(DEPLOY, GROUPS, fleet_of(), passed, {"seconds": 0.45}, False, NOW + 20)
    rows = dict(result["rows"])
    assert result["outcome"] == "completed: green is live on 1.1.0" and result["change"] == "1.0.0 -> 1.1.0"
    assert result["status"] == "completed" and result["message"] == ""
    assert rows["live"] == "green takes all traffic; blue idles"
    assert rows["switch"] == "0.45 s from the start of the switch until every answer through lb1, lb2 came from 1.1.0"
    assert rows["rollback"].startswith("ansible-playbook playbooks/bluegreen.yml -e bluegreen_action=rollback")
    assert rows["blast radius"].startswith("all users at once at the switch")
    assert [(r["host"], r["after"], r["status"]) for r in result["hosts"]][2:4] == [
        ("blue3", "1.0.0", "blue, idle"), ("green1", "1.1.0", "green, live")]
    assert result["seconds"] == 20.0


def test_report_of_a_stop_before_the_switch():
    failed = {n: {"status": "failed", "note": SMOKE_500} for n in GREEN}
    result = bluegreen.outcome(DEPLOY, GROUPS, fleet_of(), failed, {"stopped": "3 of 3 failed"}, False, NOW + 9)
    assert result["outcome"] == "STOPPED before the switch: the LBs were not touched" and result["status"] == "stopped"
    assert result["message"] == ("Stopped before the switch: 3 of 3 failed. Nothing was switched: every LB still "
                                 "sends all traffic to blue (1.0.0).")
    assert dict(result["rows"])["blast radius"] == ("none: no user was switched; the LBs still send everyone to "
                                                    "blue 1.0.0")
    assert result["hosts"][3]["status"] == "green, idle, FAILED" and result["hosts"][3]["note"] == SMOKE_500[:70]
    assert "green1       1.0.0      1.0.0      green, idle, FAILED: Send the smoke request" in report.render(result)


def test_report_of_a_failed_switch():
    result = bluegreen.outcome(DEPLOY, GROUPS, fleet_of(), {}, {"failure": "lb2: The reload failed"}, False, NOW)
    assert result["outcome"] == "FAILED at the switch: every LB is back on blue" and result["status"] == "stopped"
    assert result["message"] == ("The switch to green failed (lb2: The reload failed). Every LB is back on blue "
                                 "(1.0.0).")
    assert dict(result["rows"])["blast radius"] == "all users, from the switch until the switch back"


@pytest.mark.parametrize("case, action, outcomes, resources", [
    ("retire", "retire", {}, "1x: green stopped, its releases kept; a rollback refuses until -e bluegreen_action=start"),
    ("a stopped idle host found by the smoke test", "rollback", {"green1": {"status": "stopped", "note": "inactive"}},
     "1x: green stopped"),
    ("both colours run", "start", {n: {"status": "passed"} for n in GREEN}, "2x while both colours run (3 + 3 hosts)"),
])
def test_report_resources(case, action, outcomes, resources):
    planned = bluegreen.plan(GROUPS, fleet_of(green="0.9.0"), lbs_on(["blue"], ["blue"]), action, "", False, NOW)
    result = bluegreen.outcome(planned, GROUPS, fleet_of(green="0.9.0"), outcomes, {}, False, NOW)
    assert dict(result["rows"])["resources"].startswith(resources), case


def test_report_in_check_mode():
    result = bluegreen.outcome(DEPLOY, GROUPS, fleet_of(), {}, {}, True, NOW)
    assert result["outcome"] == "check mode: nothing was changed" and "blast radius" not in dict(result["rows"])
    assert result["status"] == "check"


# ---- break-glass rollback: only the LBs, and every host's health as each LB sees it ------------------------------

def probes_of(per_lb=None, **answers):
    """{lb: {host: answer}}: every host healthy on its colour's version (blue 1.1.0 live, green 1.0.0) unless
    given - by name for every LB, or per LB in per_lb {lb: {host: answer}}."""
    healthy = {n: {"health": 200, "health_version": "1.1.0" if n in BLUE else "1.0.0"} for n in BLUE + GREEN}
    return {lb: {**healthy, **answers, **(per_lb or {}).get(lb, {})} for lb in LBS}


REFUSED = {"health": None, "health_version": "", "error": "health: [Errno 111] Connection refused"}


@pytest.mark.parametrize("action, full_checks, reads", [
    ("rollback", False, {"release_state": [], "probe": BLUE + GREEN}),
    ("rollback", True, {"release_state": BLUE + GREEN, "probe": []}),
    ("deploy", False, {"release_state": BLUE + GREEN, "probe": []}),
    ("retire", False, {"release_state": BLUE + GREEN, "probe": []}),
])
def test_reads(action, full_checks, reads):
    assert bluegreen.reads(GROUPS, action, full_checks) == reads


@pytest.mark.parametrize("case, probes, expected", [
    ("healthy everywhere", probes_of(), {"status": "passed", "version": "1.0.0", "note": ""}),
    ("no answer: stopped, with the way back", probes_of(green1=REFUSED),
     {"status": "stopped", "version": "", "note": "Ask the health check from lb1, lb2: health: [Errno 111] Connection "
                                                  "refused" + bluegreen.START_HINT}),
    ("503 from one LB only", probes_of({"lb2": {"green1": {"health": 503, "health_version": "1.0.0"}}}),
     {"status": "failed", "version": "1.0.0", "note": "Ask the health check from lb2: answered 503"}),
    ("two versions through two LBs", probes_of({"lb2": {"green1": {"health": 200, "health_version": "0.9.0"}}}),
     {"status": "failed", "version": "", "note": "answers different versions through the LBs: 0.9.0, 1.0.0"}),
    ("an LB that did not ask (no answer recorded)", {"lb1": probes_of()["lb1"], "lb2": {}},
     {"status": "stopped", "version": "1.0.0", "note": "Ask the health check from lb2: no answer"
                                                       + bluegreen.START_HINT}),
])
def test_probe_outcomes(case, probes, expected):
    assert bluegreen.probe_outcomes(["green1"], probes)["green1"] == expected, case


def test_break_glass_rollback_plan_from_the_probes_alone():
    unread = {n: fleet.Host(name=n, address=address(n)) for n in BLUE + GREEN}  # no release state read
    planned = bluegreen.plan(GROUPS, unread, lbs_on(["blue"], ["blue"]), "rollback", "", False, NOW, probes_of())
    assert (planned["switch_to"], planned["version"], planned["live_version"]) == ("green", "1.0.0", "1.1.0")
    assert planned["smoke_test"] == GREEN and planned["add_hosts"] == []  # checked already: no smoke-test play
    assert bluegreen.gate(planned, {}) == ""


@pytest.mark.parametrize("case, probes, expected", [
    ("the live colour does not answer at all: roll back anyway",
     probes_of(**{n: REFUSED for n in BLUE}), {"switch_to": "green", "version": "1.0.0", "note": ""}),
    ("the live colour answers 503 on 1.1.0: still known as newer", probes_of(
        **{n: {"health": 503, "health_version": "1.1.0"} for n in BLUE}), {"switch_to": "green", "live_version": "1.1.0"}),
    ("a second rollback: the idle colour is newer", probes_of(
        **{n: {"health": 200, "health_version": "1.2.0"} for n in GREEN}),
     {"switch_to": "", "note": "Nothing to roll back: blue (live) runs 1.1.0 and green idles on the newer 1.2.0 - the "
                               "rollback already happened. To go forward again: playbooks/bluegreen.yml "
                               "-e app_version=1.2.0."}),
])
def test_break_glass_rollback_plan(case, probes, expected):
    planned = bluegreen.plan(GROUPS, fleet_of(blue="", green=""), lbs_on(["blue"], ["blue"]), "rollback", "", False,
                             NOW, probes)
    assert {key: planned[key] for key in expected} == expected, case


def test_break_glass_rollback_stops_at_the_gate_naming_each_unhealthy_host():
    probes = probes_of(**{n: REFUSED for n in GREEN[:2]})
    planned = bluegreen.plan(GROUPS, fleet_of(), lbs_on(["blue"], ["blue"]), "rollback", "", False, NOW, probes)
    assert planned["switch_to"] == "green" and planned["version"] == "1.0.0"  # from green3, the one that answered
    assert bluegreen.gate(planned, {}) == (
        "2 of 3 green hosts failed - green1, green2: Ask the health check from lb1, lb2: health: [Errno 111] "
        "Connection refused" + bluegreen.START_HINT)
    result = bluegreen.outcome(planned, GROUPS, fleet_of(), {}, {"stopped": "2 of 3 failed"}, False, NOW)
    assert dict(result["rows"])["resources"].startswith("1x: green stopped")


def test_break_glass_rollback_refuses_mixed_releases():
    probes = probes_of(green2={"health": 200, "health_version": "0.9.0"})
    with pytest.raises(fleet.Refusal, match=r"its hosts run different releases \(green1 1.0.0, green2 0.9.0"):
        bluegreen.plan(GROUPS, fleet_of(), lbs_on(["blue"], ["blue"]), "rollback", "", False, NOW, probes)


# ---- the switch: every LB at once, all back if one failed ----------------------------------------------------

SWITCH_TASK = "Make the new live set the upstream's only servers, on every load balancer"


@pytest.mark.parametrize("case, lbs, expected", [
    ("both switched", {"lb1": {"verified": "1000.4"}, "lb2": {"verified": 1000.61}},
     {"failure": "", "started": 1000.0, "seconds": 0.61}),
    ("lb2's reload failed", {"lb1": {"verified": 1000.4},
                             "lb2": {"task": SWITCH_TASK, "failure": f"{SWITCH_TASK}: The reload failed: x"}},
     {"failure": f"{SWITCH_TASK}: lb2: The reload failed: x"}),
    ("both failed, in two places", {
        "lb1": {"task": "Ask", "failure": "Ask: answered 200 1.0.0"},
        "lb2": {"task": SWITCH_TASK, "failure": f"{SWITCH_TASK}: nginx -t failed"}},
     {"failure": f"Ask: lb1: answered 200 1.0.0; {SWITCH_TASK}: lb2: nginx -t failed"}),
    ("an LB that recorded nothing (unreachable)", {"lb1": {"verified": 1000.4}, "lb2": {}},
     {"failure": "lb2: no result"}),
])
def test_switch_result(case, lbs, expected):
    assert bluegreen.switch_result("1000.0", lbs) == expected, case


# ---- the smoke test, judged from what the LB heard (fleet.smoke_outcome) ----------------------------------------

GOOD = {"health": 200, "request": 200, "version": "1.1.0", "unhealthy": [], "error": ""}


@pytest.mark.parametrize("case, answer, version, expected", [
    ("passed", GOOD, "1.1.0", {"status": "passed", "version": "1.1.0", "note": ""}),
    ("any version (start)", dict(GOOD, version="0.9.0"), "", {"status": "passed", "version": "0.9.0", "note": ""}),
    ("never healthy", dict(GOOD, health=503, request=None, version=""), "1.1.0",
     {"status": "failed", "version": "", "note": "Wait for the health check, from lb1: Status code was 503 and not [200]"}),
    ("no answer at all", {"health": None, "error": "health: timed out"}, "1.1.0",
     {"status": "failed", "version": "", "note": "Wait for the health check, from lb1: health: timed out"}),
    ("no result from the probe", None, "1.1.0",
     {"status": "failed", "version": "", "note": "Wait for the health check, from lb1: no answer"}),
    ("smoke request 500", dict(GOOD, request=500), "1.1.0",
     {"status": "failed", "version": "1.1.0", "note": "Send the smoke request, from lb1: Status code was 500 and not [200]"}),
    ("wrong version", dict(GOOD, version="1.0.0"), "1.1.0",
     {"status": "failed", "version": "1.0.0", "note": "Check the version: it answered with version 1.0.0, not 1.1.0"}),
    ("unhealthy later", dict(GOOD, unhealthy=["503"]), "1.1.0",
     {"status": "failed", "version": "1.1.0", "note": "Stay healthy, from lb1: 1 checks failed (503)"}),
])
def test_smoke_outcome(case, answer, version, expected):
    assert fleet.smoke_outcome(answer, version, 200, "lb1") == expected, case


# ---- the bake after the switch --------------------------------------------------------------------------------

def baked(decision, reason="x"):
    return {"decision": decision, "reason": reason, "p_value": 0.002, "source": "lb_log",
            "new": {"requests": 900, "error_rate": 0.05, "p95": 0.004},
            "reference": {"requests": 8000, "error_rate": 0.0, "p95": 0.003}, "rules": {"min_requests": 200}}


@pytest.mark.parametrize("case, decision, mode, require, back, would, text", [
    ("a pass keeps the switch", "pass", "enforce", False, False, "", "the bake passed: x"),
    ("a fail switches every LB back", "fail", "enforce", False, True, "", "the bake failed: x"),
    ("not enough data keeps the switch, saying so", "not enough data", "enforce", False, False, "",
     "not judged: 900 of 200 requests"),
    ("unless the analysis is required", "not enough data", "enforce", True, True, "",
     "not judged: 900 of 200 requests (bluegreen_require_analysis=true)"),
    ("a dry run switches nothing back", "fail", "dry_run", False, False, "would switch back", "the bake failed: x"),
])
def test_what_the_bake_makes_the_run_do(case, decision, mode, require, back, would, text):
    p = {"lbs": ["lb1", "lb2"]}
    reaction = bluegreen.bake_reaction(p, baked(decision), mode, require)
    assert (reaction["switch_back"], reaction["would"], reaction["text"]) == (back, would, text), case
    assert [host["name"] for host in reaction["add_hosts"]] == (["lb1", "lb2"] if back else [])


def test_bake_plan_takes_the_old_colour_before_the_switch_as_its_reference():
    groups = {"blue": ["b1", "b2"], "green": ["g1", "g2"]}
    address_of = {name: f"{name}:8000" for name in groups["blue"] + groups["green"]}
    planned = bluegreen.bake_plan({"live": "blue", "switch_to": "green"}, groups, {"started": "1000.5"}, address_of,
                                  60)
    assert planned == {"new": ["g1:8000", "g2:8000"], "reference": ["b1:8000", "b2:8000"],
                       "baseline": {"start": 940.5, "end": 1000.5}}


def test_report_of_a_deploy_its_bake_switched_back():
    p = DEPLOY
    bake = dict(baked("fail", "error rate 5.0% (45 of 900) is above 0.1%"),
                reaction=bluegreen.bake_reaction(p, baked("fail", "error rate 5.0% (45 of 900) is above 0.1%"),
                                                 "enforce", False))
    result = bluegreen.outcome(p, GROUPS, fleet_of(), {}, {"seconds": 0.5, "started": NOW}, False, NOW + 40, bake)
    assert result["status"] == "stopped"
    assert result["outcome"] == ("SWITCHED BACK after the switch: the bake failed: error rate 5.0% (45 of 900) is "
                                 "above 0.1%; every LB is back on blue")
    assert result["message"].startswith("Switched back after the switch: the bake failed: error rate 5.0%")
    assert "green keeps 1.1.0 installed for inspection" in result["message"]
    rows = dict(result["rows"])
    assert rows["bake"] == ("the bake failed: error rate 5.0% (45 of 900) is above 0.1%; the new colour 900 requests, "
                            "5.00% errors, p95 4 ms; against the old colour before the switch: 8000 requests, 0.00% "
                            "errors, p95 3 ms; judged on lb_log, p=0.002")
    assert rows["blast radius"] == "all users, from the switch until the switch back"
    assert rows["live"] == "blue takes all traffic; green idles"
