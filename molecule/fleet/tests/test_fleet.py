"""The `fleet` command run as a subprocess, the way CI runs it, on 3 blue + 3 green app hosts behind lb1
(converge: blue live on 1.0.0, green idle on 1.0.0). Load tests send 300 requests/s on new connections through
lb1 from before the command starts until 10 s after it ends. Each test starts from the state the previous one
left: refusals and --check (nothing changes), a rolling deploy of 1.1.0, a blue-green
deploy of 1.2.0 onto green and its rollback, a rolling rollback with a broken progress, canaries (weights with a
pause, status and promote; sticky and aborted; a bad one), the status, a deploy stopped by SIGTERM, then
reconciled, and that rollout completed with a secret in its -e."""

import json
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from conftest import (LAB_DIR, LOCK_FILE, PROJECT, TAIL_SECONDS, UPSTREAM_FILE, addresses, answers,
                      assert_nothing_dropped, get_json, under_load, upstream_failures)
from fleet_cli import summary as fleet_summary

BLUE = ["blue1", "blue2", "blue3"]
GREEN = ["green1", "green2", "green3"]
APPS = BLUE + GREEN
FLEET = Path(sys.executable).parent / "fleet"


class Run:
    """One `fleet` run: its exit code, its JSON summary and its progress lines, each with the time this test
    read it (so a line printed late, at exit, shows up as late). command: what runs fleet (e.g. a script that
    plants a bug first); until: a callback that gets the Popen and the lines read so far, once per line."""

    def __init__(self, *argv, report_dir, inventory=LAB_DIR / "inventory", command=(str(FLEET),), until=None):
        self.report_dir = report_dir
        summary_path = report_dir.parent / "summary.json"  # fleet may refuse before it makes report_dir
        command = [*command, *argv, "--inventory", str(inventory), "--report-dir", str(report_dir),
                   "--json", str(summary_path)]
        process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        self.lines = []
        reader = threading.Thread(target=self._read, args=(process.stderr, lambda: until and until(process,
                                                                                                   self.lines)))
        reader.start()
        self.rc = process.wait(timeout=600)
        reader.join()
        self.summary = json.loads(summary_path.read_text())

    def _read(self, stream, after_each_line):
        for text in stream:
            self.lines.append((time.time(), text.rstrip("\n")))
            after_each_line()

    @property
    def text(self):
        return "\n".join(text for _, text in self.lines)


@pytest.fixture
def fleet(tmp_path):
    """Runs fleet; each run of a test gets a report folder of its own."""
    runs = []

    def run(*argv, **kwargs):
        runs.append(Run(*argv, report_dir=tmp_path / f"report{len(runs) or ''}", **kwargs))
        return runs[-1]
    return run


def fleet_under_load(load, fleet, *argv, **kwargs):
    """(run, load report) of a fleet command under 300 requests/s, measured until 10 s after it ended."""
    run, report, _ = under_load(load, lambda name, prompts, **options: fleet(*name, **options), argv, **kwargs)
    return run, report


@pytest.fixture(scope="module")
def hosts(fleet_host):
    return {name: fleet_host(name) for name in APPS + ["lb1"]}


def state(hosts):
    """What a deploy would change: each app host's service PID and `current` release, and the LB's upstream."""
    apps = {name: (hosts[name].check_output("systemctl show --property MainPID --value user-api"),
                   hosts[name].check_output("readlink -f /opt/user-api/current")) for name in APPS}
    return dict(apps, lb1=hosts["lb1"].file(UPSTREAM_FILE).content_string)


def served_versions(lab):
    """What each app host runs, asked directly on its port (not through the LB, not from the summary)."""
    return {host["name"]: get_json(f"http://{host['address']}:8000/")[1]["version"]
            for host in lab["hosts"] if host["name"] in APPS}


def assert_summary_matches_the_fleet(run, lab, named):
    """The summary validates, names these hosts, and says what each one really runs."""
    fleet_summary.validate(run.summary)
    real = served_versions(lab)
    assert {row["host"]: row["after"] for row in run.summary["hosts"]} == {name: real[name] for name in named}


def assert_lb_log_agrees(run, log, failing_backends=()):
    """The report's picture and its numbers: the per-version counts equal a direct count of lb1's log lines
    (`log`, from assert_nothing_dropped) in the same window, and it counts no failed upstream attempt (but on
    failing_backends, the ones a test breaks on purpose)."""
    traffic = run.summary["traffic"]
    assert Path(run.summary["report"]["picture"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = Path(run.summary["report"]["html"]).read_text()
    assert "data:image/png;base64," in html and "<table>" in html
    start, end = traffic["window"]["from"], traffic["window"]["to"]
    direct = Counter(line["version"] or "none" for line in log if start <= float(line["msec"]) < end)
    series = json.loads((run.report_dir / traffic["data"]).read_text())["series"]
    drawn = Counter()
    for slot in series:
        drawn.update(slot["versions"])
    assert traffic["versions"] == dict(drawn) == dict(direct)
    assert traffic["requests"] == sum(direct.values()) >= 290 * (end - start)
    assert traffic["failed_upstream"] == len(upstream_failures(
        [line for line in log if start <= float(line["msec"]) < end and line["upstream"] in failing_backends]))


# ---- refused, or --check: nothing changes --------------------------------------------------------------------

def test_bad_version_is_refused_before_any_host_changes(fleet, hosts):
    before = state(hosts)
    run = fleet("deploy", "rolling", "--version", "9.9.9")
    assert run.rc == 2, run.text
    fleet_summary.validate(run.summary)
    assert run.summary["result"] == "refused"
    assert "user-api-9.9.9-linux-amd64 does not exist" in run.summary["outcome"]
    assert state(hosts) == before


def no_colours(tmp_path):
    """The lab's inventory with the app hosts in `app` only: no blue or green group."""
    inventory = yaml.safe_load((LAB_DIR / "inventory" / "hosts.yml").read_text())
    children = inventory["all"]["children"]
    children["app"] = {"hosts": {name: values for colour in children["app"].pop("children").values()
                                 for name, values in colour["hosts"].items()}}
    folder = tmp_path / "no-colours"
    folder.mkdir()
    (folder / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (folder / "group_vars").symlink_to(PROJECT / "lab" / "group_vars")
    return folder


@pytest.mark.parametrize("inventory, message", [
    (no_colours, "The inventory has no blue and no green group"),
    (lambda tmp_path: tmp_path / "missing", "no inventory at"),
], ids=["no colours", "no such file"])
def test_bad_inventory_is_refused_before_any_host_changes(fleet, hosts, tmp_path, inventory, message):
    before = state(hosts)
    run = fleet("deploy", "bluegreen", "--version", "1.1.0", inventory=inventory(tmp_path))
    assert run.rc == 2, run.text
    fleet_summary.validate(run.summary)
    assert message in run.summary["outcome"] and run.summary["result"] == "refused"
    assert state(hosts) == before


def test_check_changes_nothing_and_says_what_it_would_do(fleet, hosts):
    before = state(hosts)
    run = fleet("deploy", "rolling", "--version", "1.1.0", "--batch", "2", "--check")
    assert run.rc == 0, run.text
    assert "check mode, nothing is changed - the run would: roll 1.0.0 -> 1.1.0 on 3 live hosts in 2 batches: " \
           "blue1, blue2 | blue3" in run.text
    fleet_summary.validate(run.summary)
    assert run.summary["result"] == "check" and run.summary["check"]
    assert state(hosts) == before


# ---- under load ----------------------------------------------------------------------------------------------

def test_rolling_deploy_exits_0_with_live_progress(load, fleet, hosts, lab, lb_url):
    run, report = fleet_under_load(load, fleet, "deploy", "rolling", "--version", "1.1.0", "--batch", "1,2")
    assert run.rc == 0, run.text
    assert run.summary["result"] == "completed" and run.summary["versions"] == {"from": ["1.0.0"], "to": "1.1.0"}
    assert_summary_matches_the_fleet(run, lab, BLUE)
    assert served_versions(lab) == dict({name: "1.1.0" for name in BLUE}, **{name: "1.0.0" for name in GREEN})
    assert answers(lb_url, 15) == {name: "1.1.0" for name in BLUE}
    # Progress came while the playbook ran: each batch's line was read before that batch ended, and each
    # line's own time stamp is the time it was read.
    first, second = run.summary["steps"]
    assert (first["hosts"], second["hosts"]) == (["blue1"], ["blue2", "blue3"])
    for number, step in ((1, first), (2, second)):
        read = next(at for at, text in run.lines if f"batch {number} of 2 starts" in text)
        assert read < step["finished"]
    read = next(at for at, text in run.lines if "blue1 replaced (1.1.0)" in text)
    assert read < second["started"] + 1
    for at, text in run.lines:
        if text[:4].isdigit():
            stamped = datetime.strptime(text[:20], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
            assert stamped <= at < stamped + 2, text
    assert_lb_log_agrees(run, assert_nothing_dropped(report, 30))
    assert run.summary["traffic"]["peak_share"] == 1.0


@pytest.fixture(scope="module")
def version_1_2_0():
    """A third build, so that blue-green deploys a version neither colour runs."""
    subprocess.run(["make", "--no-print-directory", "build/user-api-1.2.0-linux-amd64"], cwd=PROJECT, check=True)
    return "1.2.0"


def test_bluegreen_deploy_exits_0(load, fleet, hosts, lab, lb_url, version_1_2_0):
    run, report = fleet_under_load(load, fleet, "deploy", "bluegreen", "--version", version_1_2_0)
    assert run.rc == 0, run.text
    assert run.summary["result"] == "completed" and run.summary["versions"] == {"from": ["1.1.0"], "to": "1.2.0"}
    assert_summary_matches_the_fleet(run, lab, APPS)
    assert served_versions(lab) == dict({name: "1.1.0" for name in BLUE}, **{name: "1.2.0" for name in GREEN})
    assert answers(lb_url, 15) == {name: "1.2.0" for name in GREEN}
    assert 0 < run.summary["switch_seconds"] < 5
    assert_lb_log_agrees(run, assert_nothing_dropped(report, 20))
    assert run.summary["traffic"]["versions"].keys() == {"1.1.0", "1.2.0"}


def test_bluegreen_rollback_exits_0(load, fleet, lab, lb_url):
    run, report = fleet_under_load(load, fleet, "rollback", "bluegreen")
    assert run.rc == 0, run.text
    assert run.summary["result"] == "completed" and run.summary["versions"] == {"from": ["1.2.0"], "to": "1.1.0"}
    assert answers(lb_url, 15) == {name: "1.1.0" for name in BLUE}
    assert_lb_log_agrees(run, assert_nothing_dropped(report, 10))


PLANTED = (sys.executable, str(PROJECT / "tests" / "planted_observer.py"))


def test_a_broken_progress_never_stops_a_deploy(load, fleet, lab, lb_url):
    """fleet's own event handler raises at every task: the rollback runs to its end, and fleet says so."""
    run, report = fleet_under_load(load, fleet, "rollback", "rolling", command=PLANTED)
    assert run.rc == 0, run.text
    warning = "progress failed: RuntimeError: planted in the progress"
    assert run.summary["warnings"] == [warning] and f"WARNING: {warning}" in run.text
    assert warning in Path(run.summary["report"]["markdown"]).read_text()
    assert served_versions(lab) == dict({name: "1.0.0" for name in BLUE}, **{name: "1.2.0" for name in GREEN})
    assert answers(lb_url, 15) == {name: "1.0.0" for name in BLUE}
    assert_summary_matches_the_fleet(run, lab, BLUE)
    assert_lb_log_agrees(run, assert_nothing_dropped(report, 20))


FAST_STEPS = ("-e", "canary_step_seconds=5")


def canary_shares(run):
    """[(configured %, observed % in the LB log over the step's window)] of the steps a canary run judged."""
    return [(float(step["name"].split(": ")[1].rstrip("%")), 100 * step["share_observed"])
            for step in run.summary["steps"]]


def assert_shares_hold(run, expected):
    assert [configured for configured, _ in canary_shares(run)] == expected
    for configured, observed in canary_shares(run):
        assert abs(observed - configured) <= 1, canary_shares(run)


def test_canary_pauses_shows_its_status_and_is_promoted(load, fleet, lab, lb_url):
    run, report = fleet_under_load(load, fleet, "deploy", "canary", "--version", "1.2.0", "--steps",
                                   "5,pause,50,100", *FAST_STEPS)
    assert run.rc == 0, run.text
    assert run.summary["result"] == "completed" and "paused at step 2 of 4" in run.summary["outcome"]
    assert run.summary["versions"] == {"from": ["1.0.0"], "to": "1.2.0"}
    assert "plan: canary 1.2.0 on green (green1, green2, green3), weights split: 5% -> pause" in run.text
    assert "canary step at 5% starts: 1 canary host(s)" in run.text
    assert_shares_hold(run, [5])
    assert_lb_log_agrees(run, assert_nothing_dropped(report, 15))

    status, report = fleet_under_load(load, fleet, "status", "canary")
    assert status.rc == 0, status.text
    assert status.summary["result"] == "unchanged"
    assert "a canary of 1.2.0 runs (paused at 5%, step 2 of 4)" in status.summary["outcome"]
    assert_lb_log_agrees(status, assert_nothing_dropped(report))

    promoted, report = fleet_under_load(load, fleet, "promote", "canary", *FAST_STEPS)
    assert promoted.rc == 0, promoted.text
    assert promoted.summary["result"] == "completed"
    assert "promoted: green is live on 1.2.0" in promoted.summary["outcome"]
    assert_shares_hold(promoted, [50])
    assert answers(lb_url, 15) == {name: "1.2.0" for name in GREEN}
    assert_lb_log_agrees(promoted, assert_nothing_dropped(report, 20))


def test_sticky_canary_is_aborted_by_hand(load, fleet, lab, lb_url):
    """The load keeps no cookie: the LB issues one with every answer and splits each request by it."""
    run, report = fleet_under_load(load, fleet, "deploy", "canary", "--version", "1.1.0", "--split", "sticky",
                                   "--steps", "5,pause,100", *FAST_STEPS)
    assert run.rc == 0, run.text
    assert "paused at step 2 of 3" in run.summary["outcome"] and "sticky split" in run.text
    assert_shares_hold(run, [5])
    assert_lb_log_agrees(run, assert_nothing_dropped(report, 15))

    aborted, report = fleet_under_load(load, fleet, "abort", "canary")
    assert aborted.rc == 0, aborted.text
    assert aborted.summary["result"] == "completed" and "aborted on request" in aborted.summary["outcome"]
    assert answers(lb_url, 15) == {name: "1.2.0" for name in GREEN}
    assert_lb_log_agrees(aborted, assert_nothing_dropped(report))


def test_bad_canary_is_aborted_with_exit_3(load, fleet, lab, lb_url):
    run, report = fleet_under_load(load, fleet, "deploy", "canary", "--version", "1.0.0", *FAST_STEPS,
                                   "-e", '{"release_environment": {"USER_API_FAULT_ERROR_RATE": "0.05"}}')
    assert run.rc == 3, run.text
    assert run.summary["result"] == "stopped"
    assert "ABORTED" in run.summary["outcome"] and "step 1 at 5%" in run.summary["outcome"]
    assert "error rate" in run.summary["outcome"]
    assert answers(lb_url, 15) == {name: "1.2.0" for name in GREEN}
    blue = {f"{address}:8000" for address in addresses(lab, "blue")}
    assert_lb_log_agrees(run, assert_nothing_dropped(report, 15, failed_share=0.001, failing_backends=blue),
                         failing_backends=blue)


def test_status_exits_0(load, fleet, lab):
    run, report = fleet_under_load(load, fleet, "status")
    assert run.rc == 0, run.text
    assert run.summary["result"] == "completed" and run.summary["strategy"] == "status"
    for name in GREEN:  # who serves what: every live host, in rotation, answering with its version
        assert re.search(rf"^{name} +\S+ +weight=1 +up +answered: 1\.2\.0$", run.text, re.MULTILINE), run.text
    fleet_summary.validate(run.summary)
    assert_nothing_dropped(report)


def test_sigterm_mid_batch_gives_back_the_lock_and_reconcile_puts_every_host_back(load, fleet, hosts, lab, lb_url):
    """CI's timeout stops fleet while a batch is out of rotation: the playbook is stopped with it, fleet gives its
    deploy lock back and says what to do; `fleet reconcile` brings the drained host back. The load runs from before
    the deploy until 10 s after the reconcile."""
    sent = []

    def stop_in_the_second_batch(process, lines):
        batch_2 = [at for at, text in lines if "batch 2 of 3 starts" in text]
        if batch_2 and not sent:
            time.sleep(2)  # into the batch: drained, being replaced
            sent.append(time.time())
            process.send_signal(signal.SIGTERM)

    generator = load()
    time.sleep(2)
    started = time.time()
    run = fleet("deploy", "rolling", "--version", "1.1.0", until=stop_in_the_second_batch)
    assert sent and run.rc == 1, run.text
    assert run.summary["result"] == "interrupted" and "interrupted by SIGTERM" in run.summary["outcome"]
    assert "run `fleet reconcile`" in run.summary["outcome"] and run.summary["warnings"] == []
    fleet_summary.validate(run.summary)
    assert not hosts["lb1"].file(LOCK_FILE).exists, "the interrupted run's deploy lock is still there"
    assert " down;" in hosts["lb1"].file(UPSTREAM_FILE).content_string  # stopped while a host was drained
    reconciled = fleet("reconcile")
    returned = time.time()
    time.sleep(TAIL_SECONDS)
    report = generator.stop()
    report["playbook"] = {"started": started, "returned": returned}
    assert reconciled.rc == 0, reconciled.text
    assert " down;" not in hosts["lb1"].file(UPSTREAM_FILE).content_string
    assert set(answers(lb_url, 15)) == set(GREEN)
    assert_nothing_dropped(report, 20)


def test_a_secret_given_with_e_reaches_the_env_file_only(load, fleet, hosts):
    """The secret is in the service's environment file (root's, 0600) and nowhere fleet writes or prints: the
    whole report folder, the JSON summary, the progress. It completes the rollout the SIGTERM above stopped."""
    secret = f"s3cr3t-{secrets.token_hex(8)}"
    run, report = fleet_under_load(load, fleet, "deploy", "rolling", "--version", "1.1.0",
                                   "-e", json.dumps({"release_environment": {"DB_PASSWORD": secret}}))
    assert run.rc == 0, run.text
    written = [path for path in run.report_dir.rglob("*") if path.is_file()] + [run.report_dir.parent / "summary.json"]
    assert [str(path) for path in written if secret.encode() in path.read_bytes()] == []
    assert secret not in run.text
    assert run.summary["extravars"]["release_environment"] == {"DB_PASSWORD": "<redacted>"}
    replaced = [row["host"] for row in run.summary["hosts"] if row["status"] == "replaced"]
    assert replaced, run.text
    for name in replaced:
        env_file = hosts[name].file("/opt/user-api/releases/1.1.0/release.env")
        assert (env_file.mode, env_file.user, env_file.group) == (0o600, "root", "root")
        assert env_file.contains(secret)
    assert_nothing_dropped(report)
