"""What the bench scripts share: a lab of their own, and load through its LB around what they measure.

    lab = lab_up("bench-x")                     # 5 blue + 5 green + 1 LB, inventory in .lab/bench-x/inventory
    with Load(lb_url(lab), rate=300) as load:   # steady for 2 s before the block, on for TAIL_SECONDS after it
        ...
    load.report                                 # tools/loadgen.py's JSON report
    lab_down("bench-x")
"""

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import ansible_runner
from fleet_cli import lblog
from fleet_cli.lblog import upstream_failures  # noqa: F401 (the benches import it from here)

PROJECT = Path(__file__).resolve().parent.parent
TAIL_SECONDS = 10  # load goes on after the measured work: Nginx's passive checks act late
LEAD_SECONDS = 2  # and starts before it, so that it is steady
ENV = dict(os.environ, ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"),
           CONTAINERS_CONF=str(PROJECT / "lab" / "containers.conf"),
           PATH=f"{PROJECT / '.venv' / 'bin'}:{os.environ['PATH']}")


def mitogen_env():
    """The Ansible settings that run a playbook with Mitogen's strategy (installed from requirements.txt)."""
    import ansible_mitogen  # pylint: disable=import-outside-toplevel  # only the benches' Mitogen rows need it
    return {"ANSIBLE_STRATEGY_PLUGINS": str(Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"),
            "ANSIBLE_STRATEGY": "mitogen_linear"}


def inventory(name):
    return PROJECT / ".lab" / name / "inventory"


def lab_up(name, blue=5, green=5, lb=1):
    """Starts lab NAME with lab/lab.py (its inventory in inventory(NAME)); returns what lab.py recorded."""
    subprocess.run([sys.executable, str(PROJECT / "lab" / "lab.py"), "up", "--name", name, "--blue", str(blue),
                    "--green", str(green), "--lb", str(lb), "--inventory", str(inventory(name))],
                   check=True, env=ENV, stdout=subprocess.DEVNULL)
    return json.loads((PROJECT / ".lab" / name / "lab.json").read_text())


def lab_down(name):
    """Removes lab NAME; says so on stderr when that failed (it runs in `finally`, so it does not raise)."""
    result = subprocess.run([sys.executable, str(PROJECT / "lab" / "lab.py"), "down", "--name", name], env=ENV,
                            stdout=subprocess.DEVNULL)
    if result.returncode != 0:
        print(f"bench: lab.py down --name {name} failed (rc={result.returncode})", file=sys.stderr)


def addresses(lab, group):
    return [host["address"] for host in lab["hosts"] if group in host["groups"]]


def answers(url, count=20):
    """{(host, version)} of `count` requests through `url`, each on a new connection."""
    seen = set()
    for _ in range(count):
        request = urllib.request.Request(url, headers={"Connection": "close"})
        with urllib.request.urlopen(request, timeout=5) as response:
            body = json.loads(response.read())
        seen.add((body["host"], body["version"]))
    return seen


def lb_url(lab):
    return f"http://{addresses(lab, 'lb')[0]}/"


def lb_urls(lab):
    """{lb name: its URL} of every LB of the lab."""
    return {host["name"]: f"http://{host['address']}/" for host in lab["hosts"] if "lb" in host["groups"]}


def epoch(event):
    """An ansible-runner event's time (`created`, UTC) as an epoch."""
    moment = datetime.fromisoformat(event["created"])
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


class Run:
    """A finished playbook run through ansible-runner: rc, status and events (kept after its folder is gone), and
    the seconds the whole run took (start-up and parsing included, which the events' wall time leaves out)."""

    def __init__(self, name, runner, seconds=None):
        self.name, self.rc, self.status, self.events = name, runner.rc, runner.status, list(runner.events)
        self.seconds = seconds

    def results(self, task):
        """The results of the task called `task` that ended ok, in order."""
        return [event["event_data"]["res"] for event in self.events
                if event["event"] == "runner_on_ok" and event["event_data"].get("task") == task]

    def times(self, kind, task=None):
        """Epochs of the events of this kind (of the task called `task`, if given), in order."""
        return [epoch(event) for event in self.events
                if event["event"] == kind and (task is None or event["event_data"].get("task") == task)]

    def host_times(self, kind, task):
        """{host: epoch} of the events of this kind of the task called `task` (the last one per host)."""
        return {event["event_data"]["host"]: epoch(event) for event in self.events
                if event["event"] == kind and event["event_data"].get("task") == task}

    def wall(self):
        """From the playbook's start to its stats, as the runner's events saw them (None if either is missing)."""
        start, stats = self.times("playbook_on_start"), self.times("playbook_on_stats")
        return stats[-1] - start[0] if start and stats else None

    def failures(self):
        return "; ".join(event["event_data"]["res"].get("msg", "") for event in self.events
                         if event["event"] == "runner_on_failed" and not event["event_data"].get("ignore_errors"))


def run_playbook(lab_name, name, **extravars):
    """Runs playbooks/NAME on lab LAB_NAME with ansible-runner, each run in a folder of its own; returns a Run."""
    with tempfile.TemporaryDirectory(prefix=f"{lab_name}-runner-") as folder:
        started = time.monotonic()
        runner = ansible_runner.run(private_data_dir=folder, project_dir=str(PROJECT),
                                    playbook=str(PROJECT / "playbooks" / name), inventory=str(inventory(lab_name)),
                                    extravars=extravars, quiet=True,
                                    envvars={"ANSIBLE_CONFIG": ENV["ANSIBLE_CONFIG"], "PATH": ENV["PATH"]})
        return Run(name, runner, time.monotonic() - started)


def median_range(values, unit="", digits=2):
    """('median unit', 'min to max unit') of the values; ('-', '-') when there are none."""
    values = sorted(value for value in values if value is not None)
    if not values:
        return "-", "-"
    return (f"{statistics.median(values):,.{digits}f}{unit}",
            f"{values[0]:,.{digits}f} to {values[-1]:,.{digits}f}{unit}")


class Load:
    """tools/loadgen.py at `rate` requests/s through `url`, each on a new connection, from LEAD_SECONDS before the
    with-block until TAIL_SECONDS after it; then .report holds its JSON report."""

    def __init__(self, url, rate):
        self.url, self.rate, self.report = url, rate, None

    def start(self):
        self._file = tempfile.NamedTemporaryFile(suffix=".json")
        self._process = subprocess.Popen([sys.executable, str(PROJECT / "tools" / "loadgen.py"), self.url,
                                          "--rate", str(self.rate), "--duration", "3000",
                                          "--json", self._file.name, "--quiet"])

    def stop(self, keep):
        """Ends the load; with keep, checks its exit code and reads its report."""
        try:
            self._process.send_signal(signal.SIGTERM)
            rc = self._process.wait(timeout=60)
            if keep:
                if rc != 0:
                    raise RuntimeError(f"bench: tools/loadgen.py exited with {rc}")
                self.report = json.loads(Path(self._file.name).read_text())
        finally:
            if self._process.poll() is None:
                self._process.kill()
            self._file.close()

    def __enter__(self):
        self.start()
        time.sleep(LEAD_SECONDS)
        return self

    def __exit__(self, kind, *_):
        if kind is None:
            time.sleep(TAIL_SECONDS)
        self.stop(keep=kind is None)


class Loads:
    """Load through several URLs at once (each at `rate`), with one lead and one tail: .loads[i].report."""

    def __init__(self, urls, rate):
        self.loads = [Load(url, rate) for url in urls]

    def __enter__(self):
        for load in self.loads:
            load.start()
        time.sleep(LEAD_SECONDS)
        return self

    def __exit__(self, kind, *_):
        if kind is None:
            time.sleep(TAIL_SECONDS)
        errors = []
        for load in self.loads:
            try:
                load.stop(keep=kind is None)
            except RuntimeError as error:
                errors.append(str(error))
        if errors:
            raise RuntimeError("; ".join(errors))


def lb_log_size(container, path="/var/log/nginx/access.log"):
    """Bytes in the LB's access log now (an offset for lb_log)."""
    return int(subprocess.run(["podman", "exec", container, "stat", "-c", "%s", path], env=ENV, check=True,
                              capture_output=True, text=True).stdout)


def lb_log(container, offset, path="/var/log/nginx/access.log"):
    """The LB's access log lines (parsed JSON) from byte `offset` on."""
    text = subprocess.run(["podman", "exec", container, "tail", "-c", f"+{offset + 1}", path], env=ENV, check=True,
                          capture_output=True, text=True).stdout
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def answered_by(line):
    """The backend (host:port) that gave the request's answer (the last one Nginx tried), or None."""
    return lblog.answered_by(line.get("upstream"))
