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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
TAIL_SECONDS = 10  # load goes on after the measured work: Nginx's passive checks act late
LEAD_SECONDS = 2  # and starts before it, so that it is steady
ENV = dict(os.environ, ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"),
           CONTAINERS_CONF=str(PROJECT / "lab" / "containers.conf"),
           PATH=f"{PROJECT / '.venv' / 'bin'}:{os.environ['PATH']}")


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


def lb_url(lab):
    return f"http://{addresses(lab, 'lb')[0]}/"


class Load:
    """tools/loadgen.py at `rate` requests/s through `url`, each on a new connection, from LEAD_SECONDS before the
    with-block until TAIL_SECONDS after it; then .report holds its JSON report."""

    def __init__(self, url, rate):
        self.url, self.rate, self.report = url, rate, None

    def __enter__(self):
        self._file = tempfile.NamedTemporaryFile(suffix=".json")
        self._process = subprocess.Popen([sys.executable, str(PROJECT / "tools" / "loadgen.py"), self.url,
                                          "--rate", str(self.rate), "--duration", "3000",
                                          "--json", self._file.name, "--quiet"])
        time.sleep(LEAD_SECONDS)
        return self

    def __exit__(self, kind, *_):
        try:
            if kind is None:
                time.sleep(TAIL_SECONDS)
            self._process.send_signal(signal.SIGTERM)
            rc = self._process.wait(timeout=60)
            if kind is None:
                if rc != 0:
                    raise RuntimeError(f"bench: tools/loadgen.py exited with {rc}")
                self.report = json.loads(Path(self._file.name).read_text())
        finally:
            if self._process.poll() is None:
                self._process.kill()
            self._file.close()


def lb_log_size(container, path="/var/log/nginx/access.log"):
    """Bytes in the LB's access log now (an offset for lb_log)."""
    return int(subprocess.run(["podman", "exec", container, "stat", "-c", "%s", path], env=ENV, check=True,
                              capture_output=True, text=True).stdout)


def lb_log(container, offset, path="/var/log/nginx/access.log"):
    """The LB's access log lines (parsed JSON) from byte `offset` on."""
    text = subprocess.run(["podman", "exec", container, "tail", "-c", f"+{offset + 1}", path], env=ENV, check=True,
                          capture_output=True, text=True).stdout
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def upstream_failures(lines):
    """Requests for which a backend failed and Nginx tried another (or answered 5xx): a user's 200 hides these."""
    def failed(status):
        codes = [code.strip() for code in status.replace(":", ",").split(",")]
        return len(codes) > 1 or any(code.isdigit() and int(code) >= 500 for code in codes)
    return sum(1 for line in lines if failed(line["upstream_status"]))
