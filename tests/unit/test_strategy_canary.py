"""Canary decisions, from tables: the steps, where a canary stands, what the LBs get at each share, the report."""

import pytest

from ansible_collections.fleet.deployer.plugins.plugin_utils import canary, fleet

NOW = 1000.0
BLUE, GREEN = [f"blue{i}" for i in range(1, 6)], [f"green{i}" for i in range(1, 6)]
GROUPS = {"blue": BLUE, "green": GREEN, "lb": ["lb1", "lb2"]}


def address(name):
    return f"10.0.{1 if name.startswith('blue') else 2}.{name[-1]}:8000"


HOSTS = {name: fleet.Host(name=name, address=address(name), running="1.0.0") for name in BLUE + GREEN}
ON_BLUE = {lb: [{"address": address(name)} for name in BLUE] for lb in ("lb1", "lb2")}
RUNNING = {"version": "1.1.0", "steps": [5, "pause", 20, 50, 100], "step": 1, "split": "weights", "started": 900.0,
           "stable_version": "1.0.0"}


@pytest.mark.parametrize("steps", [[5, 20, 50, 100], [100], [5, "pause", 20, "pause", 50, 100], [0.5, 12.5, 100]])
def test_steps_accepted(steps):
    assert canary.parse_steps(steps) == steps


@pytest.mark.parametrize("steps, message", [
    ([], "must be a list"),
    ("5,20", "must be a list"),
    ([5, 20, 50], "must end with 100"),
    ([20, 5, 100], "5 is not a share above 20"),
    ([5, 5, 100], "5 is not a share above 5"),
    ([0, 100], "0 is not a share above 0"),
    ([5, 150], "150 is not a share above 5"),
    (["pause", 5, 100], "a pause goes between two shares"),
    ([5, "pause", "pause", 100], "a pause goes between two shares"),
    ([5, 100, "pause"], "a pause goes between two shares"),
    ([5, "half", 100], "'half' is not a share"),
    ([True, 100], "True is not a share"),
])
def test_bad_steps_refused(steps, message):
    with pytest.raises(fleet.Refusal, match="Nothing was changed") as refused:
        canary.parse_steps(steps)
    assert message in str(refused.value)


@pytest.mark.parametrize("share, live, hosts", [(5, 5, 1), (20, 5, 1), (50, 5, 3), (100, 5, 5), (5, 100, 5),
                                                 (0.5, 3, 1), (34, 3, 2)])
def test_canary_hosts_scale_with_the_share(share, live, hosts):
    assert canary.hosts_needed(share, live) == hosts


@pytest.mark.parametrize("options, message", [
    ({"action": "go"}, "canary_action='go' is not one of deploy, promote, abort, status"),
    ({"action": "deploy", "version": "1.1.0", "split": "random"}, "canary_split='random' is not one of"),
    ({"action": "deploy"}, "Say which version to deploy"),
    ({"action": "deploy", "version": "1.1.0", "step_seconds": 0}, "canary_step_seconds=0 must be a whole number"),
    ({"action": "promote", "steps": [5]}, "must end with 100"),
])
def test_bad_inputs_refused(options, message):
    with pytest.raises(fleet.Refusal) as refused:
        canary.check_inputs(options)
    assert message in str(refused.value)


@pytest.mark.parametrize("case, states, options, expected", [
    ("a new canary from the idle colour", {"lb1": {}, "lb2": {}}, {"action": "deploy", "version": "1.1.0"},
     {"live": "blue", "idle": "green", "prepare": GREEN, "stable": BLUE, "pool": GREEN, "note": "",
      "run_steps": [{"index": i, "step": s} for i, s in enumerate([5, 20, 50, 100])]}),
    ("steps run up to the first pause", {"lb1": {}, "lb2": {}},
     {"action": "deploy", "version": "1.1.0", "steps": [5, "pause", 20, 100]},
     {"run_steps": [{"index": 0, "step": 5}, {"index": 1, "step": "pause"}]}),
    ("the live version again: nothing to do", {"lb1": {}, "lb2": {}}, {"action": "deploy", "version": "1.0.0"},
     {"note": "Nothing to do: blue (live) already runs 1.0.0.", "prepare": [], "run_steps": []}),
    ("promote from a pause goes on after it", {"lb1": RUNNING, "lb2": RUNNING}, {"action": "promote"},
     {"run_steps": [{"index": 2, "step": 20}, {"index": 3, "step": 50}, {"index": 4, "step": 100}],
      "prepare": [], "canary": RUNNING}),
    ("abort of a running canary", {"lb1": RUNNING, "lb2": RUNNING}, {"action": "abort"},
     {"abort": True, "run_steps": []}),
    ("abort with no canary: nothing to do", {"lb1": {}, "lb2": {}}, {"action": "abort"},
     {"abort": False, "note": "No canary runs: nothing to abort."}),
    ("status", {"lb1": RUNNING, "lb2": RUNNING}, {"action": "status"}, {"canary": RUNNING, "note": ""}),
    ("status with no canary", {"lb1": {}, "lb2": {}}, {"action": "status"}, {"note": "No canary runs."}),
])
def test_plan(case, states, options, expected):
    planned = canary.plan(GROUPS, HOSTS, ON_BLUE, states, options, NOW)
    assert {key: planned[key] for key in expected} == expected, case


@pytest.mark.parametrize("case, states, options, lbs, message", [
    ("a second canary while one runs", {"lb1": RUNNING, "lb2": RUNNING}, {"action": "deploy", "version": "1.2.0"},
     ON_BLUE, "A canary of 1.1.0 runs (paused at 5%, step 2 of 5): promote it (-e canary_action=promote) or abort"),
    ("LBs that disagree on the canary", {"lb1": RUNNING, "lb2": {}}, {"action": "promote"}, ON_BLUE,
     "The LBs do not agree on the canary: lb1 have one, lb2 not"),
    ("LBs on different colours", {"lb1": {}, "lb2": {}}, {"action": "deploy", "version": "1.1.0"},
     {"lb1": ON_BLUE["lb1"], "lb2": [{"address": address("green1")}]}, "needs every LB to send all traffic to one"),
])
def test_plan_refuses(case, states, options, lbs, message):
    with pytest.raises(fleet.Refusal) as refused:
        canary.plan(GROUPS, HOSTS, lbs, states, options, NOW)
    assert message in str(refused.value), case


ADDRESS_OF = {name: address(name) for name in BLUE + GREEN}
PLAN = canary.plan(GROUPS, HOSTS, ON_BLUE, {"lb1": {}, "lb2": {}}, {"action": "deploy", "version": "1.1.0"}, NOW)


def weight_share(mix, canary_addresses):
    total = sum(server.get("weight", 0) for server in mix if not server["down"])
    return 100 * sum(server["weight"] for server in mix if server["address"] in canary_addresses
                     and not server["down"]) / total


@pytest.mark.parametrize("share, canary_hosts", [(5, 1), (20, 1), (50, 3), (100, 5)])
def test_weights_give_the_exact_share(share, canary_hosts):
    settings = canary.lb_settings(PLAN, share, ADDRESS_OF, "user-api")
    active = [server["address"] for server in settings["canary_servers"]]
    assert active == [address(name) for name in GREEN[:canary_hosts]]
    assert weight_share(settings["mix_servers"], active) == pytest.approx(share)
    assert settings["split"] == [{"value": "user-api-mix", "percent": "*"}]
    assert settings["always"] == [{"value": "user-api-canary", "percent": "*"}]


def test_sticky_splits_send_the_share_to_the_canary_upstream_first():
    sticky = dict(PLAN, canary=dict(PLAN["canary"], split="sticky"))
    assert canary.lb_settings(sticky, 20, ADDRESS_OF, "user-api")["split"] == [
        {"value": "user-api-canary", "percent": 20}, {"value": "user-api", "percent": "*"}]


@pytest.mark.parametrize("state, share", [(RUNNING, 5), (dict(RUNNING, step=3), 50), (dict(RUNNING, step=-1), 0)])
def test_current_share(state, share):
    assert canary.current_share(state) == share


WATCHED = {"decision": "fail", "reason": "error rate 4.8% (7 of 146) is above 0.1%", "started": 10.0,
           "finished": 14.5, "share": {"configured": 5, "observed": 4.9}, "source": "lb_log", "p_value": 2.1e-10,
           "new": {"requests": 146, "error_rate": 0.048, "p95": 0.004},
           "reference": {"requests": 2800, "error_rate": 0.0, "p95": 0.003}}


@pytest.mark.parametrize("watched, mode, abort, would", [
    (WATCHED, "enforce", True, ""),
    (WATCHED, "dry_run", False, "would abort at step 1"),
    (dict(WATCHED, decision="not enough data"), "enforce", True, ""),   # no data by the deadline is never a pass
    (dict(WATCHED, decision="not enough data"), "dry_run", False, "would abort at step 1"),
    (dict(WATCHED, decision="pass"), "enforce", False, ""),
    (dict(WATCHED, decision="pass"), "dry_run", False, ""),
])
def test_what_a_judged_step_makes_the_canary_do(watched, mode, abort, would):
    row = canary.step_row(watched, {"index": 0, "step": 5}, {"canary_hosts": 1}, mode)
    assert (row["abort"], row["would"]) == (abort, would)
    assert row["reason"].endswith("when the step deadline passed") == (watched["decision"] == "not enough data")


def test_report_of_a_dry_run_says_what_it_would_have_done():
    row = canary.step_row(WATCHED, {"index": 0, "step": 5}, {"canary_hosts": 1}, "dry_run")
    result = canary.report_of(PLAN, [row], "promoted: green is live on 1.1.0", "promoted", NOW + 30)
    assert result["outcome"] == "promoted: green is live on 1.1.0 (dry run: would abort at step 1)"
    assert dict(result["rows"])["dry run"] == ("would abort at step 1: error rate 4.8% (7 of 146) is above 0.1% - "
                                               "not enforced (analysis_mode=dry_run)")
    assert dict(result["rows"])["step 1"].startswith("fail (dry run: would abort at step 1, not enforced): error")


def test_report_of_an_aborted_canary_names_the_numbers():
    row = canary.step_row(WATCHED, {"index": 0, "step": 5}, {"canary_hosts": 1})
    result = canary.report_of(PLAN, [row], "ABORTED: step 1 at 5%", "aborted", NOW + 30)
    text = dict(result["rows"])["step 1"]
    assert text.startswith("fail: error rate 4.8% (7 of 146) is above 0.1%")
    assert "share 5% configured, 4.9% observed; canary 146 requests, 4.80% errors, p95 4 ms" in text
    assert text.endswith("judged on lb_log, p=2.1e-10")
    assert result["status"] == "stopped"
    assert dict(result["rows"])["rollback"] == "none needed: every LB sends all traffic to blue"
    assert dict(result["rows"])["blast radius"] == "4.9% of requests at the most reached 1.1.0 while it was judged"
    assert dict(result["rows"])["resources"] == "1.2x at the peak: 1 green host(s) beside 5 stable ones"


@pytest.mark.parametrize("plan, status, outcome", [
    (PLAN, "promoted", "promoted: green is live on 1.1.0"),
    (dict(PLAN, action="abort", canary=RUNNING), "abort", "aborted on request: every LB sends all traffic to blue"),
    (dict(PLAN, action="status", canary=RUNNING), "status", "a canary of 1.1.0 runs (paused at 5%, step 2 of 5)"),
    (dict(PLAN, note="No canary runs."), "unchanged", "No canary runs."),
])
def test_ending(plan, status, outcome):
    ended = canary.ending(plan)
    assert ended["status"] == status and ended["outcome"].startswith(outcome)


# ---- in place: no colours -------------------------------------------------------------------------------------

APPS = [f"app{i}" for i in range(1, 6)]
IN_PLACE = {"app": APPS, "lb": ["lb1"]}
ON_APPS = {"lb1": [{"address": f"10.0.3.{i}:8000"} for i in range(1, 6)]}


def app_hosts(**running):
    return {name: fleet.Host(name=name, address=f"10.0.3.{name[-1]}:8000", running=running.get(name, "1.0.0"))
            for name in APPS}


@pytest.mark.parametrize("case, hosts, states, options, expected", [
    ("the first run needs the hosts of its largest share below 100", app_hosts(), {"lb1": {}},
     {"action": "deploy", "version": "1.1.0"},
     {"in_place": True, "pool": ["app1", "app2", "app3"], "stable": ["app4", "app5"],
      "prepare": ["app1", "app2", "app3"], "live_version": "1.0.0"}),
    ("up to a pause: one canary host", app_hosts(), {"lb1": {}},
     {"action": "deploy", "version": "1.1.0", "steps": [5, "pause", 50, 100]},
     {"pool": ["app1"], "stable": ["app2", "app3", "app4", "app5"], "prepare": ["app1"]}),
    ("promote after the pause: the upgraded host first, two more to prepare", app_hosts(app3="1.1.0"),
     {"lb1": dict(RUNNING, steps=[5, "pause", 50, 100])}, {"action": "promote"},
     {"pool": ["app3", "app1", "app2"], "stable": ["app4", "app5"], "prepare": ["app1", "app2"],
      "live_version": "1.0.0"}),
    ("promote straight to 100: only the upgraded host, the rest is rolled", app_hosts(app1="1.1.0"),
     {"lb1": dict(RUNNING, steps=[5, "pause", 100])}, {"action": "promote"},
     {"pool": ["app1"], "stable": ["app2", "app3", "app4", "app5"], "prepare": []}),
    ("abort: the upgraded hosts go back", app_hosts(app1="1.1.0"), {"lb1": RUNNING}, {"action": "abort"},
     {"abort": True, "pool": ["app1"], "prepare": []}),
])
def test_in_place_plan(case, hosts, states, options, expected):
    planned = canary.plan(IN_PLACE, hosts, ON_APPS, states, options, NOW)
    assert {key: planned[key] for key in expected} == expected, case


def test_in_place_refuses_a_share_that_leaves_no_stable_host():
    with pytest.raises(fleet.Refusal, match="would leave no stable host"):
        canary.plan(IN_PLACE, app_hosts(), ON_APPS, {"lb1": {}},
                    {"action": "deploy", "version": "1.1.0", "steps": [5, 99, 100]}, NOW)


def test_in_place_weights_count_only_the_stable_rest():
    planned = canary.plan(IN_PLACE, app_hosts(), ON_APPS, {"lb1": {}}, {"action": "deploy", "version": "1.1.0"}, NOW)
    address_of = {name: f"10.0.3.{name[-1]}:8000" for name in APPS}
    settings = canary.lb_settings(planned, 5, address_of, "user-api")
    assert [s["address"] for s in settings["canary_servers"]] == ["10.0.3.1:8000"]
    assert weight_share(settings["mix_servers"], ["10.0.3.1:8000"]) == pytest.approx(5)
    assert {s["address"] for s in settings["mix_servers"]} == {"10.0.3.1:8000", "10.0.3.4:8000", "10.0.3.5:8000"}
    at_half = canary.lb_settings(planned, 50, address_of, "user-api")  # 3 of the 5 live hosts, as with colours
    assert [s["address"] for s in at_half["canary_servers"]] == ["10.0.3.1:8000", "10.0.3.2:8000", "10.0.3.3:8000"]
    assert weight_share(at_half["mix_servers"], [s["address"] for s in at_half["canary_servers"]]) == pytest.approx(50)


def test_gate_names_the_canary_hosts_that_failed_their_smoke_test():
    outcomes = {"green1": {"status": "passed"}, "green2": {"status": "failed", "note": "health 503"}}
    assert canary.gate(PLAN, {name: {"status": "passed"} for name in GREEN}) == ""
    assert canary.gate(PLAN, outcomes) == ("4 of 5 green hosts failed - green2: health 503; green3, green4, green5: "
                                           "no result (unreachable, or failed before its smoke test: see above)")


@pytest.mark.parametrize("groups, action, read", [
    ({"blue": ["b1"], "green": ["g1"], "app": ["b1", "g1"]}, "abort", []),  # break-glass: the LBs only
    ({"blue": ["b1"], "green": ["g1"], "app": ["b1", "g1"]}, "promote", ["b1", "g1"]),
    ({"app": ["a1", "a2"]}, "abort", ["a1", "a2"]),  # in place, an abort puts the canary hosts back
    ({"blue": ["b1"], "green": [], "app": ["b1"]}, "abort", ["b1"]),
])
def test_reads(groups, action, read):
    assert canary.reads(groups, action) == read
