#!/usr/bin/env python3
"""Benchmark (not a test): rolling.yml against the textbook rolling update, side by side, under load.

For 5 and 20 live hosts and batches of 1 and 25%, each run takes the fleet from 1.0.0 to 1.1.0 while
tools/loadgen.py sends 300 requests/s through the LB (a new connection each) until 10 s after the playbook
ends, and prints the playbook's wall time and the failed requests. The fleet goes back to 1.0.0 between runs.

    .venv/bin/python bench/rolling.py [--hosts 5 20] [--batches 1 25%] [--rate 300]

It makes its own lab (bench-rolling) and removes it at the end. Needs `make artifacts`.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
LAB = "bench-rolling"
INVENTORY = PROJECT / ".lab" / LAB / "inventory"
TAIL_SECONDS = 10
ENV = dict(os.environ, ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"),
           PATH=f"{PROJECT / '.venv' / 'bin'}:{os.environ['PATH']}")


def playbook(path, **extravars):
    """Runs ansible-playbook on the bench lab; returns (seconds, return code)."""
    started = time.monotonic()
    result = subprocess.run(["ansible-playbook", "-i", str(INVENTORY), str(path), "-e", json.dumps(extravars)],
                            cwd=PROJECT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - started, result.returncode


def under_load(lb_url, rate, path, **extravars):
    with tempfile.NamedTemporaryFile(suffix=".json") as report_file:
        load = subprocess.Popen([sys.executable, str(PROJECT / "tools" / "loadgen.py"), lb_url, "--rate", str(rate),
                                 "--duration", "3000", "--json", report_file.name, "--quiet"])
        time.sleep(2)
        seconds, rc = playbook(path, **extravars)
        time.sleep(TAIL_SECONDS)
        load.send_signal(signal.SIGTERM)
        load.wait(timeout=60)
        report = json.loads(Path(report_file.name).read_text())
    return seconds, rc, report


def lab_up(hosts):
    spec = [{"name": f"app{i}", "groups": ["app"]} for i in range(1, hosts + 1)] + [{"name": "lb1", "groups": ["lb"]}]
    with tempfile.NamedTemporaryFile("w", suffix=".json") as spec_file:
        json.dump(spec, spec_file)
        spec_file.flush()
        subprocess.run([sys.executable, str(PROJECT / "lab" / "lab.py"), "up", "--name", LAB, "--spec", spec_file.name,
                        "--inventory", str(INVENTORY)], check=True, env=ENV, stdout=subprocess.DEVNULL)
    lab = json.loads((PROJECT / ".lab" / LAB / "lab.json").read_text())
    return next(f"http://{h['address']}/" for h in lab["hosts"] if "lb" in h["groups"])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, nargs="+", default=[5, 20])
    parser.add_argument("--batches", nargs="+", default=["1", "25%"])
    parser.add_argument("--rate", type=int, default=300)
    args = parser.parse_args()

    rows = []
    try:
        for hosts in args.hosts:
            lb_url = lab_up(hosts)
            playbook(PROJECT / "playbooks" / "site.yml", app_version="1.0.0")
            for batch in args.batches:
                serial = int(batch) if batch.isdigit() else batch
                for name, path, knob in (("rolling.yml", PROJECT / "playbooks" / "rolling.yml", "rolling_batch"),
                                         ("textbook serial", PROJECT / "bench" / "textbook-rolling.yml", "textbook_batch")):
                    seconds, rc, report = under_load(lb_url, args.rate, path, app_version="1.1.0", **{knob: serial})
                    reasons = ", ".join(f"{why}: {n}" for why, n in sorted(report["by_status"].items()) if why != "200")
                    rows.append((hosts, batch, name, seconds, rc, report["requests"], report["failed"], reasons))
                    print(*rows[-1], flush=True, file=sys.stderr)
                    playbook(path, app_version="1.0.0", **{knob: serial})  # back to 1.0.0, unmeasured
    finally:
        subprocess.run([sys.executable, str(PROJECT / "lab" / "lab.py"), "down", "--name", LAB], env=ENV,
                       stdout=subprocess.DEVNULL)

    print(f"\n{args.rate} requests/s through the LB, a new connection each, until {TAIL_SECONDS} s after the playbook")
    print(f"| hosts | batch | playbook | wall time | exit | requests | failed | failures |")
    print("|---|---|---|---|---|---|---|---|")
    for hosts, batch, name, seconds, rc, requests, failed, reasons in rows:
        print(f"| {hosts} | {batch} | {name} | {seconds:.1f} s | {rc} | {requests} | {failed} | {reasons or '-'} |")


if __name__ == "__main__":
    main()
