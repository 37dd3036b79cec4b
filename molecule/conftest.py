"""Fixtures shared by the Molecule scenarios' tests: the scenario's lab, requests through its LB, and
playbook runs through ansible-runner (the way CI drives them)."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import ansible_runner
import pytest
from fleet_cli.lblog import upstream_failures  # the tests import it from here too

PROJECT = Path(__file__).resolve().parent.parent
LAB_NAME = os.environ.get("LAB_NAME", "mol-default")
LAB_DIR = PROJECT / ".lab" / LAB_NAME
UPSTREAM_FILE = "/etc/nginx/upstreams/user-api.conf"  # the live set, as the nginx_lb role writes it on each LB
TAIL_SECONDS = 10  # keep measuring after a playbook ends: Nginx's passive checks act late
LOAD_RATE = 300  # requests/s of every load test, each on a new connection

sys.path.insert(0, str(PROJECT / "tools"))
from loadgen import short_seconds  # noqa: E402


@pytest.fixture(scope="session")
def lab():
    """What lab.py recorded: hosts with address and groups, key and known_hosts paths."""
    return json.loads((LAB_DIR / "lab.json").read_text())


def addresses(lab, group):
    return [host["address"] for host in lab["hosts"] if group in host["groups"]]


def lb_urls(lab):
    """The URL of every LB of the lab, lb1 first."""
    return [f"http://{address}/" for address in addresses(lab, "lb")]


@pytest.fixture(scope="session")
def lb_url(lab):
    return f"http://{addresses(lab, 'lb')[0]}/"


def get_json(url, timeout=5):
    """One GET on a new connection: (status, decoded JSON body)."""
    request = urllib.request.Request(url, headers={"Connection": "close"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, json.loads(response.read())


def answers(url, count):
    """{host: version} of `count` requests through the LB."""
    seen = {}
    for _ in range(count):
        _, body = get_json(url)
        seen[body["host"]] = body["version"]
    return seen


@pytest.fixture(scope="session")
def fleet_host(request):
    """name -> testinfra host, over SSH with the lab's inventory (host keys checked)."""
    import testinfra
    inventory = request.config.getoption("ansible_inventory")
    return lambda name: testinfra.get_host(f"ansible://{name}", ansible_inventory=inventory)


@pytest.fixture(scope="session")
def playbook(tmp_path_factory):
    """Runs a project playbook on the scenario's fleet with ansible-runner; returns the Runner."""
    def run(name, prompts=None, inventory=LAB_DIR / "inventory", event_handler=None, **extravars):
        """prompts: {regex of a prompt: what to type} for interactive pauses; inventory: another view of the fleet;
        event_handler: called with each event as it happens (a test that acts in the middle of a run)."""
        # A folder per run: ansible-runner keeps the extravars of earlier runs in a shared one.
        runner = ansible_runner.run(
            private_data_dir=str(tmp_path_factory.mktemp("runner")),
            project_dir=str(PROJECT),
            playbook=str(PROJECT / "playbooks" / name),
            inventory=str(inventory),
            extravars=extravars,
            envvars={"ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg")},
            passwords=prompts or {},
            event_handler=event_handler,
            quiet=True,
        )
        return runner
    return run


LOCK_FILE = "/var/lib/fleet-deployer/deploy.lock"
OTHER_RUN_ID = "c17e57c17e57c17e"


def write_lock(lb, controller, expires_in):
    """Puts another run's deploy lock (ops@controller, run OTHER_RUN_ID, running canary.yml, lease ending in
    expires_in s) on lb."""
    now = time.time()
    lock = {"run_id": OTHER_RUN_ID, "user": "ops", "host": controller, "pid": 4242, "pid_namespace": "",
            "playbook": "canary.yml", "version": "9.9.9", "started": now - 120, "expires": now + expires_in}
    lb.run_expect([0], f"echo '{json.dumps(lock)}' > {LOCK_FILE}")


def changed_hosts(runner):
    return {host: count for host, count in runner.stats["changed"].items() if count}


def task_runs(runner, task):
    """How many times a task ran (ok or changed), on whichever host."""
    return sum(1 for event in runner.events
               if event["event"] == "runner_on_ok" and event["event_data"].get("task") == task)


def report_text(runner):
    """The deploy report the playbook printed ('' when it printed none)."""
    return "".join(event["event_data"]["res"].get("msg", "") for event in runner.events
                   if event["event"] == "runner_on_ok" and event["event_data"].get("task") == "Print the deploy report")


def failure_messages(runner):
    return [event["event_data"]["res"].get("msg", "") for event in runner.events
            if event["event"] == "runner_on_failed" and not event["event_data"].get("ignore_errors")]


@pytest.fixture
def load(lb_url, tmp_path):
    """Starts the load generator through the LB; call .stop() to end it and get its report."""
    class Load:
        def __init__(self, rate=LOAD_RATE, duration=900, url=None):
            self.report_path = tmp_path / f"load{len(started) or ''}.json"
            self.process = subprocess.Popen(
                [sys.executable, str(PROJECT / "tools" / "loadgen.py"), url or lb_url, "--rate", str(rate),
                 "--duration", str(duration), "--json", str(self.report_path), "--quiet"])

        def stop(self):
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)
            return json.loads(self.report_path.read_text())

    started = []

    def start(**kwargs):
        started.append(Load(**kwargs))
        return started[-1]
    yield start
    for generator in started:
        if generator.process.poll() is None:
            generator.process.kill()


def under_load(load, playbook, name, prompts=None, load_urls=None, **extravars):
    """Runs a playbook while 300 requests/s go through the LB (or through each of load_urls), and TAIL_SECONDS
    beyond. Returns (runner, load report, epoch when the playbook returned) - with load_urls, a list of reports,
    one per URL; a report's `playbook` holds the playbook's start and return for assert_nothing_dropped."""
    generators = [load(url=url) for url in load_urls or [None]]
    time.sleep(2)  # the load is steady before the playbook starts
    started = time.time()
    runner = playbook(name, prompts, **extravars)
    returned = time.time()
    time.sleep(TAIL_SECONDS)
    reports = [dict(generator.stop(), playbook={"started": started, "returned": returned})
               for generator in generators]
    return runner, reports if load_urls else reports[0], returned


def lb_log(host, since=0.0):
    """The LB's access log lines (parsed JSON) of requests that ended at or after `since` (epoch)."""
    text = host.check_output("cat /var/log/nginx/access.log")
    return [line for line in map(json.loads, text.splitlines()) if float(line["msec"]) >= since]


def lb_of(report):
    """The testinfra host of the LB the load went through (the host of the report's URL)."""
    import testinfra
    address = urlsplit(report["url"]).hostname
    lab = json.loads((LAB_DIR / "lab.json").read_text())
    name = next(host["name"] for host in lab["hosts"] if host["address"] == address)
    return testinfra.get_host(f"ansible://{name}", ansible_inventory=str(LAB_DIR / "inventory" / "hosts.yml"))


def assert_nothing_dropped(report, min_seconds=0, failed_share=0.0, failing_backends=()):
    """The witness of every load test, on a report from under_load (or one given a `playbook` window):
    the load ran from before the playbook started until TAIL_SECONDS after it returned, stopped by our
    signal; it sent the rate asked in every second of the run, not just on average; no request failed
    (at most `failed_share` of them); and the LB's access log over the run shows no request for which a
    backend failed (but those of `failing_backends`, the backends a test breaks on purpose), so Nginx's
    retries hide nothing. Returns that log's lines."""
    window = report.get("playbook")
    assert window, "the report has no playbook window: run the load with under_load"
    # the report gives its times to the millisecond, hence 2 ms of slack below
    started, ended = report["started_at"], report["started_at"] + report["duration"]
    lines = lb_log(lb_of(report), started)
    failures = upstream_failures(lines, failing_backends)
    sent = Counter(int(t) for t, *_ in report["responses"])
    witness = (f"load: {report['requests']} requests in {report['duration']:.1f} s, {report['failed']} failed, "
               f"{len(failures)} upstream failures in the LB log; fewest sent in a full second "
               f"{min(sent[s] for s in range(int(report['duration'])))}, max lag {report['max_lag_ms']:g} ms")
    print(witness)
    # every load test's numbers in one file (pytest hides what a passing test prints)
    (PROJECT / ".cache").mkdir(exist_ok=True)
    with open(PROJECT / ".cache" / "load-witness.log", "a", encoding="utf-8") as log:
        log.write(f"{os.environ.get('PYTEST_CURRENT_TEST', '?').split(' ')[0]}: {witness}\n")
    assert report["target_rate"] >= LOAD_RATE
    assert report["stopped_by"] == "signal", f"the load stopped by {report['stopped_by']}, not when we ended it"
    assert started < window["started"], f"the load started {started - window['started']:.1f} s after the playbook"
    assert ended >= window["returned"] + TAIL_SECONDS - 0.002, \
        f"the load ended {ended - window['returned']:.1f} s after the playbook, not {TAIL_SECONDS}"
    assert report["duration"] >= min_seconds
    assert short_seconds(report) == [], f"(second, sent, asked) below {report['target_rate']:g}/s"
    assert report["failed"] <= failed_share * report["requests"], report["by_status"]
    assert failures == []
    return lines
