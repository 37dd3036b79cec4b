"""Rolling update decisions, from tables: a fleet state in, a plan (or a refusal) out. No hosts needed."""

import pytest

from ansible_collections.fleet.deployer.plugins.plugin_utils import fleet, report, rolling

NOW = 1000.0


def host(name, running="1.0.0", previous="", rolled_back=False):
    return fleet.Host(name=name, address=f"10.0.0.{name[-1]}:8000", running=running, previous=previous,
                      rolled_back=rolled_back)


def upstream(*names, down=()):
    return [{"address": f"10.0.0.{n[-1]}:8000", "down": n in down, "weight": 1} for n in names]


FIVE = [host(f"app{i}") for i in range(1, 6)]
LB = {"lb1": upstream(*(h.name for h in FIVE))}


# ---- batches: the same as Ansible's serial ------------------------------------------------------------------

@pytest.mark.parametrize("spec, total, sizes", [
    ([1], 5, [1, 1, 1, 1, 1]),
    ([2], 5, [2, 2, 1]),
    (["25%"], 5, [1, 1, 1, 1, 1]),       # 25% of 5 is 1.25: Ansible truncates
    (["25%"], 20, [5, 5, 5, 5]),
    ([1, "40%"], 5, [1, 2, 2]),         # the last item repeats
    ([1, "25%", "50%"], 20, [1, 5, 10, 4]),
    (["100%"], 3, [3]),
    (["1%"], 10, [1] * 10),             # a percentage that rounds to 0 becomes 1
    ([3], 0, []),
])
def test_batch_sizes_follow_ansible_serial(spec, total, sizes):
    assert fleet.batch_sizes(spec, total) == sizes


@pytest.mark.parametrize("spec, checked", [
    (1, [1]), ("2", [2]), ("25%", ["25%"]), (" 50 % ", ["50%"]), ([1, "25%", "50%"], [1, "25%", "50%"]),
])
def test_batch_specs_accepted(spec, checked):
    assert fleet.parse_batch(spec) == checked


@pytest.mark.parametrize("spec, message", [
    (0, "rolling_batch=0 must be at least 1 host (Ansible's serial would take 0 as every host at once)"),
    (-2, "rolling_batch=-2 is not a count of hosts (2) or a percentage (25%)"),
    ("abc", "rolling_batch='abc' is not a count of hosts (2) or a percentage (25%)"),
    ("0%", "rolling_batch=0% must be above 0% and at most 100%"),
    ("150%", "rolling_batch=150% must be above 0% and at most 100%"),
    ("12.5%", "rolling_batch='12.5%' is not a count of hosts"),
    ([], "rolling_batch=[] is empty"),
    ([1, "x"], "rolling_batch='x' is not a count"),
    (True, "rolling_batch=True is not a count"),
])
def test_bad_batch_specs_are_refused_naming_the_value(spec, message):
    with pytest.raises(fleet.Refusal, match="Nothing was changed") as refused:
        fleet.parse_batch(spec)
    assert message in str(refused.value)


# ---- plan -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case, hosts, lb, options, expected", [
    ("fresh rollout", FIVE, LB, {"version": "1.1.0"},
     {"target": "1.1.0", "skip": {}, "batches": [["app1"], ["app2"], ["app3"], ["app4"], ["app5"]]}),
    ("a re-run resumes: hosts on the target and in rotation are skipped",
     [host("app1", "1.1.0"), host("app2", "1.1.0")] + FIVE[2:], LB, {"version": "1.1.0", "batch": 2},
     {"target": "1.1.0", "skip": {"app1": "already on 1.1.0", "app2": "already on 1.1.0"},
      "batches": [["app1", "app2"], ["app3", "app4"], ["app5"]]}),
    ("a host on the target but drained is replaced again (it must come back into rotation)",
     [host("app1", "1.1.0")] + FIVE[1:], {"lb1": upstream(*(h.name for h in FIVE), down=("app1",))},
     {"version": "1.1.0"}, {"target": "1.1.0", "skip": {}}),
    ("only the hosts the LB lists are live: an idle colour is left alone",
     FIVE + [host("idle6"), host("idle7")], LB, {"version": "1.1.0"},
     {"live": ["app1", "app2", "app3", "app4", "app5"]}),
    ("a host listed by any of two LBs is live",
     FIVE, {"lb1": upstream("app1", "app2"), "lb2": upstream("app3")}, {"version": "1.1.0"},
     {"live": ["app1", "app2", "app3"]}),
    ("rollback goes to the release the live set ran before",
     [host(f"app{i}", "1.1.0", previous="1.0.0") for i in range(1, 6)], LB, {"rollback": True},
     {"target": "1.0.0", "rollback": True, "skip": {}}),
    ("a second rollback finds nothing to do: rolled-back hosts do not count",
     [host(f"app{i}", "1.0.0", previous="1.1.0", rolled_back=True) for i in range(1, 6)], LB,
     {"rollback": "true"}, {"target": "", "skip": {f"app{i}": "nothing to roll back to" for i in range(1, 6)}}),
    ("rollback with a version given goes there", [host("app1", "1.2.0", previous="1.1.0")],
     {"lb1": upstream("app1")}, {"rollback": True, "version": "1.0.0", "min_in_service": 0},
     {"target": "1.0.0"}),
    ("min_in_service 0 lets a single host roll", [host("app1")], {"lb1": upstream("app1")},
     {"version": "1.1.0", "min_in_service": 0}, {"batches": [["app1"]]}),
    ("40% of 5 leaves 3, enough for 60%", FIVE, LB, {"version": "1.1.0", "batch": "40%", "min_in_service": "60%"},
     {"batches": [["app1", "app2"], ["app3", "app4"], ["app5"]]}),
    ("no live host: nothing to plan", FIVE, {"lb1": [{"address": "10.9.9.9:8000"}]}, {"version": "1.1.0"},
     {"live": [], "batches": []}),
])
def test_plan(case, hosts, lb, options, expected):
    planned = rolling.plan(hosts, lb, options, NOW)
    assert {key: planned[key] for key in expected} == expected, case
    assert [h["name"] for h in planned["add_hosts"]] == planned["live"]
    assert all(h["groups"] == ["live"] + (["rolling_stage"] if h["plan"]["staged"] else [])
               for h in planned["add_hosts"])


@pytest.mark.parametrize("case, hosts, lb, options, message", [
    ("no version", FIVE, LB, {}, "Say which version to roll out: -e app_version=VERSION."),
    ("rollback from mixed releases", [host("app1", "1.2.0", "1.0.0"), host("app2", "1.2.0", "1.1.0")],
     {"lb1": upstream("app1", "app2")}, {"rollback": True},
     "The live hosts were rolled out from different releases (1.0.0, 1.1.0)"),
    ("the whole live set at once", FIVE, LB, {"version": "1.1.0", "batch": "100%"},
     "rolling_batch=100% takes up to 5 of the 5 live hosts out of rotation at once, leaving 0 in service; "
     "rolling_min_in_service=1 asks for at least 1"),
    ("a batch too wide for the floor", FIVE, LB, {"version": "1.1.0", "batch": 3, "min_in_service": "60%"},
     "rolling_batch=3 takes up to 3 of the 5 live hosts out of rotation at once, leaving 2 in service; "
     "rolling_min_in_service=60% asks for at least 3"),
    ("a single host with the default floor", [host("app1")], {"lb1": upstream("app1")}, {"version": "1.1.0"},
     "leaving 0 in service; rolling_min_in_service=1 asks for at least 1"),
    ("unread LB", FIVE, {"lb1": None}, {"version": "1.1.0"}, "No live set could be read from lb1"),
    ("bad threshold", FIVE, LB, {"version": "1.1.0", "max_fail_percentage": 150},
     "rolling_max_fail_percentage=150 must be a whole number from 0 to 100"),
    ("bad pause", FIVE, LB, {"version": "1.1.0", "pause_seconds": "soon"},
     "rolling_pause_seconds='soon' must be a whole number 0 or more"),
    ("negative healthy time", FIVE, LB, {"version": "1.1.0", "min_healthy_seconds": -1},
     "rolling_min_healthy_seconds=-1 must be a whole number 0 or more"),
    ("bad floor", FIVE, LB, {"version": "1.1.0", "min_in_service": "most"},
     "rolling_min_in_service='most' is not a count of hosts (1) or a percentage (50%)"),
    ("batch zero", FIVE, LB, {"version": "1.1.0", "batch": 0}, "rolling_batch=0 must be at least 1 host"),
    ("an unreachable live host", FIVE[:2] + [fleet.Host("app3", "10.0.0.3:8000", unreachable=True)] + FIVE[3:], LB,
     {"version": "1.1.0"}, "Live host app3 could not be reached: what it runs is unknown"),
    ("unreachable hosts", [fleet.Host(h.name, h.address, unreachable=True) for h in FIVE[:2]] + FIVE[2:], LB,
     {"version": "1.1.0"}, "Live host app1, app2 could not be reached"),
    ("unknown failure policy", FIVE, LB, {"version": "1.1.0", "on_failure": "undo"},
     "rolling_on_failure='undo' must be one of stop, rollback"),
])
def test_plan_refuses_before_anything_changes(case, hosts, lb, options, message):
    with pytest.raises(fleet.Refusal) as refused:
        rolling.plan(hosts, lb, options, NOW)
    assert message in str(refused.value), case
    assert str(refused.value).endswith("Nothing was changed.")


# ---- stop or continue after a batch ----------------------------------------------------------------------------

PLAN = rolling.plan(FIVE, LB, {"version": "1.1.0", "batch": [1, 2]}, NOW)  # batches app1 | app2 app3 | app4 app5


@pytest.mark.parametrize("case, batch, statuses, max_fail, stop, last", [
    ("all replaced", ["app1"], {"app1": "replaced"}, 0, False, False),
    ("skipped hosts are not failures", ["app2", "app3"], {"app2": "unchanged", "app3": "replaced"}, 0, False,
     False),
    ("one failure stops at 0%", ["app2", "app3"], {"app2": "failed", "app3": "replaced"}, 0, True, False),
    ("one of two is 50%: not more than 50%", ["app2", "app3"], {"app2": "failed", "app3": "replaced"}, 50, False,
     False),
    ("both failed is more than 50%", ["app2", "app3"], {"app2": "failed", "app3": "failed"}, 50, True, False),
    ("a host that recorded nothing (unreachable) failed", ["app4", "app5"], {"app4": "replaced"}, 0, True, True),
    ("the last batch", ["app4", "app5"], {"app4": "replaced", "app5": "replaced"}, 0, False, True),
])
def test_verdict(case, batch, statuses, max_fail, stop, last):
    outcomes = {name: {"status": status} for name, status in statuses.items()}
    decided = rolling.verdict(PLAN, rolling.batch_of(PLAN, batch), outcomes, max_fail)
    assert (decided["stop"], decided["last"]) == (stop, last), case
    assert bool(decided["reason"]) == stop


ROLLBACK_PLAN = rolling.plan(FIVE, LB, {"version": "1.1.0", "batch": [1, 2], "on_failure": "rollback"}, NOW)


@pytest.mark.parametrize("case, rollout, statuses, batch, undo", [
    ("stop (the default) leaves the updated hosts as they are", PLAN,
     {"app1": "replaced", "app2": "replaced", "app3": "failed"}, ["app2", "app3"], []),
    ("rollback: every host this run replaced goes back, the failed batch's too", ROLLBACK_PLAN,
     {"app1": "replaced", "app2": "replaced", "app3": "failed"}, ["app2", "app3"], ["app1", "app2"]),
    ("rollback: hosts skipped (already on the target before the run) stay", ROLLBACK_PLAN,
     {"app1": "unchanged", "app2": "failed", "app3": "replaced"}, ["app2", "app3"], ["app3"]),
    ("rollback: nothing to undo when the first batch failed", ROLLBACK_PLAN, {"app1": "failed"}, ["app1"], []),
    ("rollback: a batch that does not stop the rollout undoes nothing", ROLLBACK_PLAN,
     {"app1": "replaced", "app2": "replaced", "app3": "replaced"}, ["app2", "app3"], []),
])
def test_failure_policy(case, rollout, statuses, batch, undo):
    outcomes = {name: {"status": status} for name, status in statuses.items()}
    decided = rolling.verdict(rollout, batch, outcomes, 0)
    assert [host["name"] for host in decided["undo"]] == undo, case
    assert all(host["groups"] == ["rolling_undo"] and host["plan"] == {
        "target": "1.0.0", "skip": "", "installed": True, "staged": False,
        "note": "rolling_on_failure=rollback: back on 1.0.0 after the rollout stopped"} for host in decided["undo"])


@pytest.mark.parametrize("case, hosts, options, stage", [
    ("a rollout stages every live host first", FIVE, {"version": "1.1.0"}, ["app1", "app2", "app3", "app4", "app5"]),
    ("a host already on the version is not staged", [host("app1", "1.1.0"), host("app2")], {"version": "1.1.0"},
     ["app2"]),
    ("a rollback stages nothing: the releases are installed", [host("app1", "1.1.0", "1.0.0"), host("app2", "1.1.0", "1.0.0")],
     {"rollback": True}, []),
])
def test_plan_stages_the_hosts_it_replaces(case, hosts, options, stage):
    lb = {"lb1": upstream(*(h.name for h in hosts))}
    planned = rolling.plan(hosts, lb, options, NOW)
    assert [h["name"] for h in planned["add_hosts"] if h["plan"]["staged"]] == stage, case
    assert [h["name"] for h in planned["add_hosts"] if "rolling_stage" in h["groups"]] == stage, case


def test_plan_keeps_the_failure_policy_stop_by_default():
    assert (PLAN["on_failure"], ROLLBACK_PLAN["on_failure"]) == ("stop", "rollback")


def test_report_says_which_hosts_were_rolled_back():
    outcomes = {"app1": done("rolled back", "1.0.0"), "app2": done("failed", "1.0.0", "back in rotation"),
                "app3": done("rolled back", "1.0.0")}
    result = rolling.outcome(ROLLBACK_PLAN, outcomes, 0, [1, 2], False, NOW + 40)
    assert result["outcome"] == ("STOPPED after batch app2, app3: app2 failed (1 of 2, more than "
                                 "rolling_max_fail_percentage=0%); the hosts after it were not touched; "
                                 "rolling_on_failure=rollback rolled app1, app3 back to the release each ran before")
    assert result["status"] == "stopped"
    assert dict(result["rows"])["blast radius"] == "1.1.0 serves on 0 of 5 live hosts (0.0% of requests)"


def test_stop_reason_names_the_batch_the_failed_hosts_and_the_threshold():
    decided = rolling.verdict(PLAN, ["app1"], {"app1": {"status": "failed"}}, 0)
    assert decided["reason"] == ("batch app1: app1 failed (1 of 1, more than rolling_max_fail_percentage=0%); "
                                 "the hosts after it were not touched")


# ---- the report ---------------------------------------------------------------------------------------------

def done(status, version, note="", started=NOW + 1, finished=NOW + 11):
    return {"status": status, "version": version, "note": note, "started": started, "finished": finished}


def test_report_of_a_stopped_rollout():
    outcomes = {"app1": done("replaced", "1.1.0"),
                "app2": done("failed", "1.0.0", "back in rotation; Deploy: health 503", NOW + 12, NOW + 30),
                "app3": done("replaced", "1.1.0", "", NOW + 12, NOW + 25)}
    result = rolling.outcome(PLAN, outcomes, 0, [1, 2], False, NOW + 31)
    assert result["outcome"].startswith("STOPPED after batch app2, app3: app2 failed (1 of 2")
    assert result["status"] == "stopped"
    assert result["change"] == "1.0.0 -> 1.1.0" and result["seconds"] == 31.0
    assert [(r["host"], r["after"], r["status"]) for r in result["hosts"]] == [
        ("app1", "1.1.0", "replaced"), ("app2", "1.0.0", "failed"), ("app3", "1.1.0", "replaced"),
        ("app4", "1.0.0", "not reached"), ("app5", "1.0.0", "not reached")]
    assert [(s["name"], s["status"], s["finished"] - s["started"]) for s in result["steps"]] == [
        ("batch 1", "done", 10.0), ("batch 2", "stopped", 18.0)]
    assert dict(result["rows"])["blast radius"] == "1.1.0 serves on 2 of 5 live hosts (40.0% of requests)"
    text = report.render(result)
    assert "  app2         1.0.0      1.0.0      failed: back in rotation; Deploy: health 503" in text
    assert "steps: 2 - batch 1 10.0 s, batch 2 18.0 s" in text


def test_report_of_a_rollback_says_how_to_go_forward():
    rollback = rolling.plan([host(f"app{i}", "1.1.0", previous="1.0.0") for i in range(1, 6)], LB,
                            {"rollback": True}, NOW)
    result = rolling.outcome(rollback, {f"app{i}": done("replaced", "1.0.0") for i in range(1, 6)}, 0, 1, False,
                             NOW + 5)
    assert result["strategy"] == "rolling update (rollback)" and result["outcome"] == "completed"
    assert dict(result["rows"])["rollback"].startswith("ansible-playbook playbooks/rolling.yml -e app_version=")


def test_report_with_no_live_host():
    result = rolling.outcome(rolling.empty_plan({}, NOW), {}, 0, 1, False, NOW + 1)
    assert result["change"] == "- -> nothing to do" and result["hosts"] == [] and result["status"] == "unchanged"


@pytest.mark.parametrize("statuses, check_mode, status", [
    ({"app1": "replaced"}, False, "completed"),
    ({"app1": "unchanged", "app2": "unchanged", "app3": "unchanged", "app4": "unchanged", "app5": "unchanged"},
     False, "unchanged"),
    ({"app1": "failed"}, False, "stopped"),
    ({"app1": "replaced"}, True, "check"),
])
def test_report_status(statuses, check_mode, status):
    outcomes = {name: done(state, "1.1.0") for name, state in statuses.items()}
    result = rolling.outcome(PLAN, outcomes, 0, 1, check_mode, NOW)
    assert result["status"] == status
    assert (result["outcome"] == "check mode: nothing was changed") == (status == "check")


# ---- the bake: users' traffic after each batch ------------------------------------------------------------------

ADDRESS = {f"app{i}": f"10.0.0.{i}:8000" for i in range(1, 6)}
BAKED = rolling.plan(FIVE, LB, {"version": "1.1.0", "batch": 1, "bake_seconds": 10}, NOW)  # app1 | ... | app5


def bake(decision, reason="x", requests=300):
    return {"decision": decision, "reason": reason, "p_value": 0.01, "source": "lb_log", "baseline": None,
            "new": {"requests": requests, "error_rate": 0.05, "p95": 0.004},
            "reference": {"requests": 5000, "error_rate": 0.0, "p95": 0.003}, "rules": {"min_requests": 200}}


@pytest.mark.parametrize("case, rollout, statuses, batch, new, reference, baseline", [
    ("the first batch against the hosts not yet updated", BAKED, {"app1": "replaced"}, ["app1"],
     ["app1"], ["app2", "app3", "app4", "app5"], None),
    ("the hosts updated so far", BAKED, {"app1": "replaced", "app2": "replaced"}, ["app2"],
     ["app1", "app2"], ["app3", "app4", "app5"], None),
    ("a failed host, back on its release, is a reference", BAKED, {"app1": "failed", "app2": "replaced"}, ["app2"],
     ["app2"], ["app1", "app3", "app4", "app5"], None),
    ("the last batch: no old host serves, the baseline before the first drain", BAKED,
     {name: "replaced" for name in ADDRESS}, ["app5"], list(ADDRESS), [], {"start": NOW + 1 - 60, "end": NOW + 1}),
    ("a batch with nothing replaced is not baked", BAKED, {"app1": "failed"}, ["app1"], [], [], None),
    ("rolling_bake_seconds=0 bakes nothing", rolling.plan(FIVE, LB, {"version": "1.1.0", "bake_seconds": 0}, NOW),
     {"app1": "replaced"}, ["app1"], [], [], None),
    ("a rollback is not baked", rolling.plan([host(f"app{i}", "1.1.0", "1.0.0") for i in range(1, 6)], LB,
                                             {"rollback": True}, NOW), {"app1": "replaced"}, ["app1"], [], [], None),
])
def test_bake_plan(case, rollout, statuses, batch, new, reference, baseline):
    outcomes = {name: done(status, "1.1.0" if status == "replaced" else "1.0.0") for name, status in statuses.items()}
    planned = rolling.bake_plan(rollout, batch, outcomes, ADDRESS)
    assert planned == {"new": [ADDRESS[name] for name in new], "reference": [ADDRESS[name] for name in reference],
                       "baseline": baseline}, case


def plan_with(mode="enforce", require=False, on_failure="stop"):
    return rolling.plan(FIVE, LB, {"version": "1.1.0", "batch": [1, 2], "require_analysis": require,
                                   "on_failure": on_failure, "analysis": dict(
                                       rolling.analysis.checked_settings({"mode": mode}))}, NOW)


@pytest.mark.parametrize("case, rollout, result, stop, undo, reason, would", [
    ("a passed bake goes on", plan_with(), bake("pass"), False, [], "", ""),
    ("a failed bake stops, and the batch goes back", plan_with(), bake("fail", "error rate 5.0% (15 of 300) is "
     "above 0.1%"), True, ["app2", "app3"], "batch app2, app3: the bake failed: error rate 5.0% (15 of 300) is above "
     "0.1%; the hosts after it were not touched", ""),
    ("with rolling_on_failure=rollback the earlier batches go back too", plan_with(on_failure="rollback"),
     bake("fail"), True, ["app1", "app2", "app3"], "batch app2, app3: the bake failed: x; the hosts after it were "
     "not touched", ""),
    ("not enough data goes on", plan_with(), bake("not enough data", requests=40), False, [], "", ""),
    ("unless the analysis is required", plan_with(require=True), bake("not enough data", requests=40), True, [],
     "batch app2, app3: not judged: 40 of 200 requests (rolling_require_analysis=true); the hosts after it were not "
     "touched", ""),
    ("a dry run goes on, saying what it would do", plan_with("dry_run"), bake("fail"), False, [], "",
     "would stop after batch 2"),
    ("no bake, no effect", plan_with(), None, False, [], "", ""),
])
def test_what_a_bake_makes_the_rollout_do(case, rollout, result, stop, undo, reason, would):
    outcomes = {"app1": done("replaced", "1.1.0"), "app2": done("replaced", "1.1.0"),
                "app3": done("replaced", "1.1.0")}
    decided = rolling.verdict(rollout, ["app2", "app3"], outcomes, 0, result)
    assert (decided["stop"], [host["name"] for host in decided["undo"]], decided["reason"]) == (stop, undo, reason)
    assert decided["bake"]["would"] == would, case


def test_a_batch_sent_back_by_its_bake_says_why():
    decided = rolling.verdict(plan_with(), ["app2", "app3"], {name: done("replaced", "1.1.0") for name in
                                                               ("app1", "app2", "app3")}, 0, bake("fail", "p95 high"))
    assert [host["plan"]["note"] for host in decided["undo"]] == ["the bake failed: p95 high; back on 1.0.0"] * 2


def test_report_of_a_rollout_stopped_by_its_bake():
    outcomes = {"app1": done("replaced", "1.1.0"),
                "app2": done("rolled back", "1.0.0", "the bake failed: error rate 5.0%; back on 1.0.0", NOW + 12),
                "app3": done("rolled back", "1.0.0", "the bake failed: error rate 5.0%; back on 1.0.0", NOW + 12)}
    result = rolling.outcome(plan_with(), outcomes, 0, [1, 2], False, NOW + 40,
                             {"1": bake("pass", "error rate 0%"), "2": bake("fail", "error rate 5.0% (15 of 300)")})
    assert result["outcome"] == ("STOPPED after batch app2, app3: the bake failed: error rate 5.0% (15 of 300); the "
                                 "hosts after it were not touched; the batch went back: app2, app3 back to the "
                                 "release each ran before")
    assert result["status"] == "stopped"
    rows = dict(result["rows"])
    assert rows["bake 2"] == ("the bake failed: error rate 5.0% (15 of 300); updated hosts 300 requests, 5.00% errors, "
                              "p95 4 ms; against the hosts not yet updated: 5000 requests, 0.00% errors, p95 3 ms; "
                              "judged on lb_log, p=0.01")
    assert rows["bake 1"].startswith("the bake passed: error rate 0%")
    assert result["steps"][1]["analysis"]["decision"] == "fail" and result["steps"][1]["status"] == "stopped"


def test_report_of_a_dry_run_says_what_would_have_stopped():
    outcomes = {name: done("replaced", "1.1.0") for name in ADDRESS}
    result = rolling.outcome(plan_with("dry_run"), outcomes, 0, [1, 2], False, NOW + 40, {"1": bake("fail")})
    assert result["status"] == "completed"
    assert result["outcome"] == "completed (dry run: would stop after batch 1)"
    assert dict(result["rows"])["dry run"] == ("would stop after batch 1: the bake failed: x - not enforced "
                                               "(analysis_mode=dry_run)")
