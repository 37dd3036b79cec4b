"""The fleet command's plain functions, from tables: counting the LB log, the measured figures, the exit codes,
the command line. Runs against the lab are in molecule/fleet."""

import io
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from fleet_cli import cli, events, lblog, measure, progress, report, summary

REPO = Path(__file__).resolve().parents[2]

T0 = 1_800_000_000.0


def line(t, version="1.0.0", status=200, upstream_status="200"):
    return json.dumps({"time": "-", "msec": f"{t:.3f}", "remote": "10.0.0.1", "request": "GET / HTTP/1.1",
                       "status": status, "upstream": "10.0.0.2:8000", "upstream_status": upstream_status,
                       "request_time": 0.001, "upstream_response_time": "0.001", "version": version})


# ---- the LB log ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("upstream_status, failed", [
    ("200", False),
    ("", False),          # answered by Nginx itself
    ("-", False),
    ("404", False),
    ("502", True),
    ("504", True),
    ("502, 200", True),   # a backend refused, another one answered: the user saw 200
    ("200, 200", True),   # more than one attempt is a failed attempt
    ("502 : 200", True),  # attempts in two upstreams
    ("bogus", True),
])
def test_failed_attempt(upstream_status, failed):
    assert lblog.failed_attempt(upstream_status) is failed


@pytest.mark.parametrize("upstream, upstream_status, failed", [
    ("10.0.0.1:8000", "200", []),
    ("-", "-", []),                                                        # Nginx answered itself
    ("10.0.0.1:8000", "503", ["10.0.0.1:8000"]),
    ("10.0.0.1:8000, 10.0.0.2:8000", "502, 200", ["10.0.0.1:8000"]),      # retried: the user saw 200
    ("10.0.0.1:8000, 10.0.0.2:8000", "502, 504", ["10.0.0.1:8000", "10.0.0.2:8000"]),
    ("10.0.0.1:8000 : 10.0.0.3:8000", "502 : 200", ["10.0.0.1:8000"]),    # another upstream
    ("10.0.0.1:8000", "bogus", ["10.0.0.1:8000"]),                        # unreadable: a failure, never fine
    ("", "502, 200", ["unknown"]),
])
def test_failed_attempts_name_the_backends(upstream, upstream_status, failed):
    assert lblog.failed_attempts(upstream, upstream_status) == failed


def test_upstream_failures_keep_the_lines_a_backend_outside_the_excluded_failed():
    retried = {"upstream": "10.0.0.1:8000, 10.0.0.2:8000", "upstream_status": "502, 200"}
    answered = {"upstream": "10.0.0.2:8000", "upstream_status": "200"}
    unreadable = {"upstream": "10.0.0.3:8000", "upstream_status": "bogus"}
    lines = [retried, answered, unreadable]
    assert lblog.upstream_failures(lines) == [retried, unreadable]
    assert lblog.upstream_failures(lines, excluded={"10.0.0.1:8000"}) == [unreadable]


@pytest.mark.parametrize("upstream, answered", [
    ("10.0.0.1:8000", "10.0.0.1:8000"),
    ("10.0.0.1:8000, 10.0.0.2:8000", "10.0.0.2:8000"),
    ("10.0.0.1:8000 : 10.0.0.3:8000", "10.0.0.3:8000"),
    ("-", None),
    ("", None),
])
def test_answered_by_is_the_last_backend_tried(upstream, answered):
    assert lblog.answered_by(upstream) == answered


def test_parse_skips_what_does_not_decode_and_names_a_missing_version():
    lines = [line(T0), '{"msec": "1800000000.5", "status": 502, "version": ""}', line(T0 + 1)[:40], "", "[]"]
    assert lblog.parse(lines) == [
        {"t": T0, "status": 200, "version": "1.0.0", "upstream_status": "200"},
        {"t": T0 + 0.5, "status": 502, "version": "none", "upstream_status": ""},
    ]


@pytest.mark.parametrize("offsets, start, end, kept", [
    ([0.0, 0.5, 1.0], 0.0, 1.0, [0.0, 0.5]),     # [start, end)
    ([-0.001, 2.0], 0.0, 2.0, []),
    ([], 0.0, 1.0, []),
])
def test_window(offsets, start, end, kept):
    lines = [line(T0 + offset) for offset in offsets]
    assert [entry["t"] - T0 for entry in lblog.in_window(lblog.parse(lines), T0 + start, T0 + end)] == kept
    assert lblog.window_lines(lines, T0 + start, T0 + end) == [line(T0 + offset) for offset in kept]


def test_series_counts_every_bucket_and_sums_to_the_window():
    entries = lblog.parse([line(T0 + 0.1), line(T0 + 0.9, "1.1.0"), line(T0 + 2.5, "1.1.0", 502, "502"),
                           line(T0 + 2.6, "1.1.0", 200, "502, 200"), line(T0 + 3.0)])
    series = lblog.series(entries, T0, T0 + 3.0)
    assert series == [
        {"t": 0.0, "requests": 2, "versions": {"1.0.0": 1, "1.1.0": 1}, "errors": 0, "failed_upstream": 0},
        {"t": 1.0, "requests": 0, "versions": {}, "errors": 0, "failed_upstream": 0},
        {"t": 2.0, "requests": 2, "versions": {"1.1.0": 2}, "errors": 1, "failed_upstream": 2},
    ]
    assert lblog.totals(series) == {"requests": 4, "versions": {"1.0.0": 1, "1.1.0": 3}, "errors": 1,
                                    "failed_upstream": 2}


def test_series_of_a_window_shorter_than_a_bucket():
    assert [slot["requests"] for slot in lblog.series(lblog.parse([line(T0 + 0.2)]), T0, T0 + 0.5)] == [1]


def bucket(t, **versions):
    return {"t": t, "requests": sum(versions.values()), "versions": versions}


@pytest.mark.parametrize("buckets, min_requests, peak", [
    ([bucket(0, a=10), bucket(1, a=5, b=5), bucket(2, b=10)], 10, (1.0, 2)),
    ([bucket(0, a=10), bucket(1, a=8, b=2), bucket(2, a=9, b=1)], 10, (0.2, 1)),
    ([bucket(0, a=20), bucket(1, b=3)], 10, (0.0, 0)),   # 3 requests are too few to count
    ([bucket(0, b=3)], 10, (None, None)),
    ([], 10, (None, None)),
])
def test_peak_share(buckets, min_requests, peak):
    assert lblog.peak_share(buckets, "b", min_requests) == peak


@pytest.mark.parametrize("versions, share", [(["a", "b", "b", "b"], 0.75), (["a"], 0.0), ([], None)])
def test_share(versions, share):
    entries = lblog.parse([line(T0 + i / 10, version) for i, version in enumerate(versions)])
    assert lblog.share(entries, "b", T0, T0 + 1) == share


# ---- the measured figures ------------------------------------------------------------------------------------

def host(name, status):
    return {"host": name, "before": "1.0.0", "after": "1.1.0", "status": status, "note": ""}


@pytest.mark.parametrize("statuses, extra", [
    (["replaced", "unchanged", "failed", "not reached"], []),           # rolling: in place
    (["blue, idle", "blue, idle", "green, live", "green, live"], ["h0", "h1"]),
    (["blue, idle, stopped", "green, live"], []),                        # retired: back to 1x
    (["blue, idle, FAILED", "green, live"], ["h0"]),
])
def test_extra_hosts(statuses, extra):
    assert measure.extra_hosts([host(f"h{i}", status) for i, status in enumerate(statuses)]) == extra


@pytest.mark.parametrize("outcomes, seconds", [
    ({"a": {"started": "100.0", "finished": "112.5"}, "b": {"started": 200.0, "finished": 210.0}}, 22.5),
    ({"a": {"started": None, "finished": "112.5"}}, 0),                  # skipped hosts never left rotation
    ({"a": {"started": "None", "finished": "1"}, "b": {"status": "passed", "finished": "5"}}, 0),
    ({}, 0),
])
def test_out_of_rotation_seconds(outcomes, seconds):
    assert measure.out_of_rotation_seconds(outcomes) == seconds


TRAFFIC = {"requests": 900, "peak_share": 1.0, "peak_at": 61.0, "min_requests": 10}


@pytest.mark.parametrize("strategy, action, hosts, outcomes, switch, traffic, expected", [
    ("rolling", "deploy", [host("a", "replaced")], {"a": {"started": 1, "finished": 13}}, None, TRAFFIC,
     ["0 host-seconds beyond 1x (no extra hosts); 12.0 host-seconds out of rotation (drain to re-add)",
      "30.0 s wall time", "`fleet rollback rolling` (not run)",
      "peak 100.0% of requests answered by 1.1.0 (in the second +61 s; 900 requests in the LB log)"]),
    ("bluegreen", "deploy", [host("b1", "blue, idle"), host("g1", "green, live")], {}, 0.45, TRAFFIC,
     ["30 host-seconds beyond 1x (1 idle hosts running x 30.0 s)", "30.0 s wall time; the switch itself 0.45 s",
      "`fleet rollback bluegreen` (not run)",
      "peak 100.0% of requests answered by 1.1.0 (in the second +61 s; 900 requests in the LB log)"]),
    ("bluegreen", "rollback", [], {}, None, dict(TRAFFIC, requests=0), [
        "0 host-seconds beyond 1x (no extra hosts)", "30.0 s wall time", "`fleet rollback bluegreen`: this run, 30.0 s",
        "no requests in the LB log over the run"]),
    ("rolling", "deploy", [], {}, None, dict(TRAFFIC, peak_share=None), [
        "0 host-seconds beyond 1x (no extra hosts)", "30.0 s wall time", "`fleet rollback rolling` (not run)",
        "fewer than 10 requests in every second of the LB log"]),
])
def test_table(strategy, action, hosts, outcomes, switch, traffic, expected):
    rows = measure.table(strategy, action, 30.0, hosts, outcomes, switch, traffic, "1.1.0")
    assert [row[0] for row in rows] == ["resources", "release speed", "rollback speed", "blast radius"]
    assert [row[1] for row in rows] == list(measure.SEED[strategy].values())
    assert [row[2] for row in rows] == expected


# ---- exit codes ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("runner_status, report_status, changed, lock, code", [
    ("successful", "completed", {"a"}, None, 0),
    ("successful", "unchanged", set(), None, 0),
    ("successful", "check", {"a"}, None, 0),       # check mode "changes" only in theory
    ("successful", None, set(), None, 0),          # fleet status
    ("failed", "stopped", {"a"}, None, 3),         # a rolling stop after a failed batch
    ("failed", "stopped", set(), None, 3),         # blue-green stopped before the switch
    ("successful", "stopped", set(), None, 3),
    ("failed", None, set(), None, 2),              # refused before any change
    ("failed", None, {"a"}, None, 1),              # failed after changing something: needs a person
    ("failed", "completed", {"a"}, None, 1),
    ("failed", None, set(), "ci on runner1", 4),   # the lock is held
    ("canceled", None, set(), None, 1),
    ("timeout", None, {"a"}, None, 1),
])
def test_exit_code(runner_status, report_status, changed, lock, code):
    assert summary.exit_code(runner_status, report_status, changed, lock) == code


# ---- the command line ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, playbook, extravars", [
    ("deploy rolling --version 1.1.0", "rolling.yml", {"app_version": "1.1.0"}),
    ("deploy rolling --version 1.1.0 --batch 25% --pause 30", "rolling.yml",
     {"app_version": "1.1.0", "rolling_batch": "25%", "rolling_pause_seconds": 30}),
    ("deploy rolling --version 1.1.0 --batch 1,25%,50%", "rolling.yml",
     {"app_version": "1.1.0", "rolling_batch": [1, "25%", "50%"]}),
    ("deploy rolling --version 1.1.0 --batch 2", "rolling.yml", {"app_version": "1.1.0", "rolling_batch": 2}),
    ("deploy bluegreen --version 1.1.0", "bluegreen.yml", {"app_version": "1.1.0"}),
    ("deploy canary --version 1.1.0 --steps 5,pause,20,100 --split sticky", "canary.yml",
     {"app_version": "1.1.0", "canary_steps": [5, "pause", 20, 100], "canary_split": "sticky"}),
    ("rollback rolling", "rollback.yml", {}),
    ("rollback bluegreen", "bluegreen.yml", {"bluegreen_action": "rollback"}),
    ("promote canary", "canary.yml", {"canary_action": "promote"}),
    ("abort canary", "canary.yml", {"canary_action": "abort"}),
    ("status canary", "canary.yml", {"canary_action": "status"}),
    ("status", "status.yml", {}),
    ("reconcile", "reconcile.yml", {}),
])
def test_commands_map_onto_the_playbooks(argv, playbook, extravars):
    assert cli.job_of(cli.parser().parse_args(argv.split()))[3:] == (playbook, extravars)


@pytest.mark.parametrize("values, merged", [
    (["a=1 b='two words'"], {"a": "1", "b": "two words"}),
    (['{"release_environment": {"USER_API_FAULT_HEALTH": "true"}}', "release_health_timeout=5"],
     {"release_environment": {"USER_API_FAULT_HEALTH": "true"}, "release_health_timeout": "5"}),
    (["a=1", "a=2"], {"a": "2"}),                 # the last one wins, as with ansible-playbook
])
def test_extra_vars(values, merged):
    assert cli.extra_vars(values) == merged


@pytest.mark.parametrize("values", [["novalue"], ["b=two words"], ["[1, 2]"]])
def test_extra_vars_refuses_what_is_not_a_mapping(values):
    with pytest.raises(cli.Refused):
        cli.extra_vars(values)


def test_extra_vars_from_a_file(tmp_path):
    (tmp_path / "vars.yml").write_text("rolling_batch: 25%\n")
    assert cli.extra_vars([f"@{tmp_path / 'vars.yml'}"]) == {"rolling_batch": "25%"}


# ---- plans, as the strategy plugin returns them ---------------------------------------------------------------

ROLLING = {"strategy": "rolling", "action": "deploy", "target": "1.1.0", "live": ["a", "b", "c"],
           "skip": {"a": "already on 1.1.0"}, "before": {"a": "1.1.0", "b": "1.0.0", "c": "1.0.0"},
           "batches": [["a"], ["b", "c"]]}
BLUEGREEN = {"strategy": "bluegreen", "action": "deploy", "live": "blue", "idle": "green", "live_version": "1.0.0",
             "idle_version": "1.0.0", "version": "1.1.0", "note": "", "prepare": ["g1", "g2"],
             "smoke_test": ["g1", "g2"], "switch_to": "green", "retire": [], "lbs": ["lb1"]}

CANARY = {"strategy": "canary", "action": "deploy", "in_place": False, "live": "blue", "idle": "green",
          "stable": ["b1", "b2"], "pool": ["g1", "g2"], "note": "", "live_version": "1.0.0", "prepare": ["g1", "g2"],
          "run_steps": [{"index": 0, "step": 5}, {"index": 1, "step": "pause"}], "abort": False,
          "canary": {"version": "1.1.0", "steps": [5, "pause", 100], "step": -1, "split": "weights"}}


@pytest.mark.parametrize("plan, versions, changing, text", [
    (ROLLING, (["1.0.0", "1.1.0"], "1.1.0"), ["b", "c"],
     "plan: roll 1.0.0, 1.1.0 -> 1.1.0 on 3 live hosts in 2 batches: a | b, c; a skipped: already on 1.1.0"),
    (BLUEGREEN, (["1.0.0"], "1.1.0"), ["g1", "g2"],
     "plan: blue is live on 1.0.0, green idles on 1.0.0; install 1.1.0 on g1, g2, smoke-test them, switch every LB "
     "(lb1) from blue to green"),
    (dict(BLUEGREEN, note="Nothing to do: blue (live) already runs 1.1.0.", prepare=[], smoke_test=[]),
     (["1.0.0"], "1.1.0"), [], "plan: Nothing to do: blue (live) already runs 1.1.0."),
    (CANARY, (["1.0.0"], "1.1.0"), ["g1", "g2"],
     "plan: canary 1.1.0 on green (g1, g2), weights split: 5% -> pause; blue stays on 1.0.0"),
    (dict(CANARY, in_place=True, pool=["b1"], prepare=["b1"], live="the stable hosts",
          canary=dict(CANARY["canary"], split="sticky")), (["1.0.0"], "1.1.0"), ["b1"],
     "plan: canary 1.1.0 in place on b1, sticky split: 5% -> pause; the stable hosts stays on 1.0.0"),
    (dict(CANARY, action="promote", prepare=[], run_steps=[{"index": 2, "step": 20}, {"index": 3, "step": 100}]),
     (["1.0.0"], "1.1.0"), [], "plan: promote the canary of 1.1.0: 20% -> 100%"),
    (dict(CANARY, action="abort", prepare=[], run_steps=[], abort=True), (["1.0.0"], "1.1.0"), [],
     "plan: abort the canary of 1.1.0: 0% to it on every LB; blue stays on 1.0.0"),
    (dict(CANARY, action="status", prepare=[]), (["1.0.0"], "1.1.0"), [],
     "plan: where the canary of 1.1.0 stands"),
    (dict(CANARY, action="abort", canary={}, prepare=[], note="No canary runs: nothing to abort."),
     (["1.0.0"], ""), [], "plan: No canary runs: nothing to abort."),
    ({}, ([], ""), [], "plan: run: - -> -"),
])
def test_plans(plan, versions, changing, text):
    assert events.plan_versions(plan) == versions
    assert events.changing_hosts(plan) == changing
    assert events.describe_plan(plan, check=False) == text


def test_schema_is_valid():
    jsonschema.Draft202012Validator.check_schema(json.loads(summary.SCHEMA.read_text()))


def test_refusal_before_any_playbook_exits_2_with_a_valid_summary(tmp_path):
    """A real run of the command (no lab needed): an inventory that does not exist."""
    done = subprocess.run([sys.executable, "-m", "fleet_cli", "deploy", "rolling", "--version", "1.1.0",
                           "--inventory", str(tmp_path / "missing"), "--json", "-"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2, done.stderr
    result = json.loads(done.stdout)
    summary.validate(result)
    assert result["result"] == "refused" and "no inventory at" in result["outcome"]
    with pytest.raises(jsonschema.ValidationError):
        summary.validate(dict(result, exit_code=5))


# ---- runner's events -> what the progress says and the summary keeps ----------------------------------------

def test_collector_follows_a_rolling_run():
    shown = io.StringIO()
    collector = events.Collector(progress.Lines(shown, io.StringIO()))

    def event(kind, **data):
        collector({"event": kind, "created": "2026-11-27T08:00:00.5+00:00", "event_data": data})

    plan = dict(ROLLING, skip={})
    event("playbook_on_play_start", name="Plan - what each live host runs", play_uuid="p")
    event("runner_on_ok", host="a", task_action=events.STRATEGY_ACTION, play_uuid="p", res={"plan": plan})
    event("runner_on_start", host="b", play_uuid="p", role="deploy_steps")  # still planning: no batch yet
    event("playbook_on_play_start", name="Stage - the release onto every host", play_uuid="st")
    for name in ("a", "b", "c"):  # the stage play touches every host before the first batch
        event("runner_on_start", host=name, play_uuid="st", role="release")
    for uuid, batch in (("s1", ["a"]), ("s1_2", ["b", "c"])):  # serial: a new play for each batch, same name
        event("playbook_on_play_start", name="Replace the live hosts batch by batch - drain", play_uuid=uuid)
        for name in batch:
            event("runner_on_start", host=name, play_uuid=uuid, role="rolling")
            event("runner_on_start", host=name, play_uuid=uuid, role="deploy_steps")
        for name in batch:
            event("runner_on_ok", host=name, play_uuid=uuid, res={"ansible_facts": {"deploy_steps_outcome": {
                "status": "replaced", "version": "1.1.0", "started": "1", "finished": "2"}}})
    event("runner_on_failed", host="localhost", task="Fail the run", res={"msg": "stopped", "lock_holder": "x"})
    event("runner_on_ok", host="localhost", task_action=events.STRATEGY_ACTION, res={"report": {"status": "x"},
                                                                                      "text": "the report"})
    said = [re.sub(r"^\S+Z \+ *[0-9.]+s  ", "", line) for line in shown.getvalue().splitlines()]
    assert [line.split("  [")[0] for line in said] == [
        "play 1: Plan - what each live host runs",
        "plan: roll 1.0.0, 1.1.0 -> 1.1.0 on 3 live hosts in 2 batches: a | b, c",
        "play 2: Stage - the release onto every host",
        "play 3: Replace the live hosts batch by batch - drain",
        "batch 1 of 2 starts: a", "a replaced (1.1.0)",
        "batch 2 of 2 starts: b, c", "b replaced (1.1.0)", "c replaced (1.1.0)",
        "FAILED on localhost: Fail the run: stopped"]
    assert said[-2].endswith("[batch 2 of 2 - 3 of 3 hosts done - 1.1.0 on 100% of live hosts]")
    assert [phase["name"] for phase in collector.phases] == [
        "Plan - what each live host runs", "Stage - the release onto every host",
        "Replace the live hosts batch by batch - drain", "batch 1", "batch 2"]
    assert cli.marks_of(collector.phases, collector.judgements, 0)[0]["name"] == "batch 1"
    assert (collector.report, collector.report_text, collector.lock_holder) == ({"status": "x"}, "the report", "x")
    assert collector.failures == [{"host": "localhost", "task": "Fail the run", "message": "stopped"}]


def test_a_failing_observer_is_a_warning_and_the_events_go_on():
    shown = io.StringIO()
    collector = events.Collector(progress.Lines(shown, io.StringIO()))
    collector.plan = {"strategy": "canary"}  # a canary plan without its keys: describing it raises KeyError
    event = {"event": "runner_on_ok", "created": "2026-11-27T08:00:00+00:00",
             "event_data": {"task_action": events.STRATEGY_ACTION, "res": {"plan": {"strategy": "canary"}}}}
    assert collector(event) is True and collector(event) is True  # runner keeps the event, the playbook goes on
    assert collector.warnings == ["progress failed: KeyError: 'live_version'"]  # once, however often it fails
    assert shown.getvalue().count("WARNING: progress failed: KeyError: 'live_version'") == 1


PROJECT_PLAYBOOK = """
- name: Write a file, the way a deploy changes a host
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Write it
      ansible.builtin.copy:
        content: done
        dest: "{{ playbook_dir }}/../written"
        mode: "0644"
"""


def test_a_run_with_a_failing_observer_completes_with_the_playbooks_exit_code(tmp_path):
    """A real ansible-runner run of a real playbook, with an event handler that raises on every result."""
    (tmp_path / "playbooks").mkdir()
    for name in ("rolling.yml", "status.yml"):
        (tmp_path / "playbooks" / name).write_text(PROJECT_PLAYBOOK)
    (tmp_path / "ansible.cfg").write_text("[defaults]\ninventory = localhost,\n")
    env = dict(os.environ, FLEET_PROJECT_DIR=str(tmp_path), ANSIBLE_LOCALHOST_WARNING="false")
    done = subprocess.run([sys.executable, REPO / "tests" / "planted_observer.py", "status", "--json", "-",
                           "--report-dir", str(tmp_path / "report")], capture_output=True, text=True, timeout=120,
                          env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "written").read_text() == "done"  # the playbook ran to its end
    result = json.loads(done.stdout)
    summary.validate(result)
    assert result["warnings"] == ["progress failed: RuntimeError: planted in the progress"]
    assert "WARNING: progress failed: RuntimeError: planted in the progress" in done.stderr


JUDGED = {"decision": "fail", "reason": "error rate 5.0% (15 of 300) is above 0.1%", "source": "lb_log",
          "window": {"start": T0 + 10, "end": T0 + 14}, "baseline": None, "p_value": 1e-9,
          "new": {"requests": 300, "errors": 15, "error_rate": 0.05, "p95": 0.004},
          "reference": {"requests": 1200, "errors": 0, "error_rate": 0.0, "p95": 0.003},
          "share": {"configured": None, "observed": 20.0}, "lbs": {}, "queries": [], "rules": {}}


@pytest.mark.parametrize("plan, share, name", [
    (dict(ROLLING, skip={}), None, "bake after batch 1"),
    (BLUEGREEN, None, "bake after the switch"),
    (CANARY, 5, "canary step at 5%"),
])
def test_each_judgement_on_users_traffic_is_named_kept_and_marked(plan, share, name):
    shown = io.StringIO()
    collector = events.Collector(progress.Lines(shown, io.StringIO()))
    collector.plan, collector.batch, collector.canary_share = plan, 1, share
    collector({"event": "runner_on_ok", "created": "2026-11-27T08:00:00+00:00",
               "event_data": {"task_action": events.WATCH_ACTION, "res": JUDGED}})
    assert collector.warnings == []
    assert [judged["name"] for judged in collector.judgements] == [name]
    assert f"{name}: fail - error rate 5.0% (15 of 300) is above 0.1%" in shown.getvalue()
    assert cli.marks_of([], collector.judgements, T0) == [{"name": name, "t": 10.0, "until": 14.0, "decision": "fail"}]


def test_the_report_shows_every_judgement(tmp_path):
    result = {"command": "fleet deploy rolling", "versions": {"from": ["1.0.0"], "to": "1.1.0"}, "result": "stopped",
              "exit_code": 3, "outcome": "STOPPED", "started": "x", "finished": "y", "seconds": 1.0,
              "playbook": "playbooks/rolling.yml", "inventory": None, "check": False, "strategy": "rolling",
              "artifacts": {"stdout": "stdout"}, "traffic": None, "steps": [], "hosts": [], "warnings": [],
              "analysis": [dict(JUDGED, name="bake after batch 1")]}
    markdown, _ = report.write(tmp_path, result, [], "the report")
    assert ("| bake after batch 1 | 4.0 s | lb_log | 300, 5.00%, 4 ms | 1200, 0.00%, 3 ms | 1e-09 | **fail**: error "
            "rate 5.0% (15 of 300) is above 0.1% |") in markdown.read_text()


# ---- secrets: what -e gives never leaves the run, whatever fleet writes -----------------------------------------

SECRET = "s3cr3t-in-an-extra-var"


@pytest.mark.parametrize("argv, shown", [
    (["deploy", "rolling", "--version", "1.1.0", "--batch", "2", "-e", '{"db": {"DB_PASSWORD": "x"}, "n": [1]}'],
     ["deploy", "rolling", "--version", "1.1.0", "--batch", "2", "-e",
      '{"db": {"DB_PASSWORD": "<redacted>"}, "n": ["<redacted>"]}']),
    (["status", "-e", "a=1 b='two words'"], ["status", "-e", "a=<redacted> b=<redacted>"]),
    (["status", "-ea=1", "--extra-vars=b=2", "--extra-vars", "@vars.yml"],
     ["status", "-ea=<redacted>", "--extra-vars=b=<redacted>", "--extra-vars", "@vars.yml"]),
    (["status", "-e", '{"unclosed": "x'], ["status", "-e", "<redacted>"]),  # refused, and still masked
])
def test_the_summary_shows_the_names_of_extra_vars_never_their_values(argv, shown):
    assert cli.shown_argv(argv, cli.parser().parse_args(argv).extra_vars) == shown


def test_extra_vars_are_masked_name_by_name():
    assert summary.masked({"release_environment": {"DB_PASSWORD": SECRET}, "steps": [5, "pause"], "n": 3}) == {
        "release_environment": {"DB_PASSWORD": "<redacted>"}, "steps": ["<redacted>", "<redacted>"], "n": "<redacted>"}


@pytest.mark.parametrize("value", [f'{{"a": "{SECRET}', f"a='{SECRET}", f"[{SECRET}]"])
def test_an_extra_var_that_does_not_parse_is_refused_without_quoting_it(tmp_path, capsys, monkeypatch, value):
    monkeypatch.setenv("PATH", os.environ["PATH"])  # main puts the venv first in it
    code = cli.main(["deploy", "rolling", "--version", "1.1.0", "-e", value, "--json", str(tmp_path / "s.json")])
    assert code == summary.REFUSED
    assert "-e <redacted>" in json.loads((tmp_path / "s.json").read_text())["outcome"]
    assert SECRET not in (tmp_path / "s.json").read_text() + "".join(capsys.readouterr())


USING_A_SECRET = """
- name: Use a secret the way a deploy does - in a task's arguments, its diff and its result
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Write it (lineinfile returns its line in the invocation)
      ansible.builtin.lineinfile:
        line: "{{ release_environment.DB_PASSWORD }}"
        path: "{{ playbook_dir }}/../written"
        create: true
        mode: "0600"
"""


def test_a_run_leaves_no_extra_var_value_anywhere_and_its_files_private(tmp_path):
    """A real ansible-runner run: ansible-runner writes -e into env/extravars and every event into job_events,
    and its `command` file holds the whole environment; none of it may stay in the report folder."""
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "rolling.yml").write_text(USING_A_SECRET)
    (tmp_path / "ansible.cfg").write_text("[defaults]\ninventory = localhost,\n")
    env = dict(os.environ, FLEET_PROJECT_DIR=str(tmp_path), ANSIBLE_LOCALHOST_WARNING="false")
    report_dir, summary_file = tmp_path / "report", tmp_path / "ci" / "summary.json"
    done = subprocess.run([sys.executable, "-m", "fleet_cli", "deploy", "rolling", "--version", "1.1.0", "--batch",
                           "2", "-e", json.dumps({"release_environment": {"DB_PASSWORD": SECRET}}),
                           "--report-dir", str(report_dir), "--json", str(summary_file)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "written").read_text() == SECRET + "\n"  # the playbook got it
    kept = [path for path in report_dir.rglob("*") if path.is_file()] + [summary_file]
    assert {path.name for path in kept} >= {"summary.json", "progress.log", cli.ANSIBLE_OUTPUT}
    assert [path for path in kept if SECRET.encode() in path.read_bytes()] == []
    assert SECRET not in done.stdout + done.stderr
    assert {path.name: oct(stat.S_IMODE(path.stat().st_mode)) for path in kept} == {
        path.name: "0o600" for path in kept}
    result = json.loads(summary_file.read_text())
    assert result["extravars"] == {"app_version": "1.1.0", "rolling_batch": 2,
                                   "release_environment": {"DB_PASSWORD": "<redacted>"}}
    assert result["argv"][:6] == ["deploy", "rolling", "--version", "1.1.0", "--batch", "2"]
    assert "changed: [localhost]" in Path(result["artifacts"]["stdout"]).read_text()


def test_the_lb_log_kept_beside_a_report_holds_only_what_the_report_needs(tmp_path, monkeypatch):
    raw = json.loads(line(T0 + 1, "1.1.0"))
    raw.update(remote="203.0.113.7", request="GET /reset?token=abc HTTP/1.1")

    def lb_log(name, project, inventory, envvars, scratch, extravars):
        Path(extravars["lb_log_dest"], "lb1.log").write_text(json.dumps(raw) + "\n")

    monkeypatch.setattr(cli, "helper_playbook", lb_log)
    for keep_raw, fields in [(False, set(lblog.REPORTED_FIELDS)), (True, set(raw))]:
        entries, lbs = cli.read_lb_log(None, None, {}, tmp_path, tmp_path, T0, T0 + 2, keep_raw)
        assert lbs == ["lb1"] and entries == lblog.parse([json.dumps(raw)])
        kept = [json.loads(text) for text in (tmp_path / "lb-log" / "lb1.jsonl").read_text().splitlines()]
        assert [set(record) for record in kept] == [fields]


def test_keep_raw_logs_is_an_option_of_every_command(capsys):
    for command in (["status"], ["deploy", "canary"], ["rollback"]):
        with pytest.raises(SystemExit):
            cli.parser().parse_args([*command, "--help"])
        assert "--keep-raw-logs" in capsys.readouterr().out


def test_the_html_report_shows_what_a_backend_says_as_text(tmp_path):
    script = "<script>alert(1)</script>"
    result = {"command": "fleet deploy rolling", "versions": {"from": [script], "to": "1.1.0"}, "result": "done",
              "exit_code": 0, "outcome": script, "started": "x", "finished": "y", "seconds": 1.0,
              "playbook": "playbooks/rolling.yml", "inventory": None, "check": False, "strategy": "rolling",
              "artifacts": {"stdout": "stdout"}, "steps": [], "warnings": [script], "analysis": [],
              "traffic": {"requests": 1, "versions": {script: 1}, "window": {"from_iso": "x", "to_iso": "y"},
                          "lbs": ["lb1"], "data": "traffic.json", "errors": 0, "error_rate": 0.0, "failed_upstream": 0},
              "hosts": [{"host": "app1", "before": script, "after": "1.1.0", "status": "replaced", "note": script}]}
    _, page = report.write(tmp_path, result, [("blast radius", "low", script)], script)
    assert "<script" not in page.read_text() and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.read_text()
