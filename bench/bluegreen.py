#!/usr/bin/env python3
"""Benchmark (not a test): how fast bluegreen.yml switches and rolls back, as users see it.

On its own lab (bench-bg: 5 blue + 5 green app hosts + 1 LB), after site.yml has made blue live on 1.0.0,
each round deploys 1.1.0 (switch to green) and then rolls back (switch to blue) while tools/loadgen.py sends
300 requests/s through the LB, each on a new connection, until 10 s after each playbook ends. Per switch it
prints:
  - switch time: from the start of the switch task (its banner in the playbook's output) until 100% of the
    answers come from the new version (the start of the first request after the last one the old version
    answered), as measured by the load generator;
  - the switch time the playbook itself reports (switch task start -> every LB answered only the new version);
  - the playbook's wall time (for the rollback, what an operator waits for) and the failed requests.

    .venv/bin/python bench/bluegreen.py [--rounds 3] [--rate 300]

It makes its own lab (bench-bg) and removes it at the end. Needs `make artifacts`. The first deploy copies the
1.1.0 binary to the green hosts; later rounds find it installed, as a roll-forward after a rollback does.
"""

import argparse
import json
import re
import statistics
import subprocess
import sys
import time

from common import ENV, PROJECT, TAIL_SECONDS, Load, inventory, lab_down, lab_up, lb_url

LAB = "bench-bg"
INVENTORY = inventory(LAB)
SWITCH_BANNER = "TASK [fleet.deployer.nginx_lb : Make the new live set the upstream's only servers, on every load balancer]"
REPORTED_SWITCH = re.compile(r"switch: ([0-9.]+) s from the start of the switch")


def playbook(path, **extravars):
    """Runs ansible-playbook on the bench lab, timing each output line as it arrives.
    Returns (started, ended, epoch the switch task started or None, switch seconds it reported or None, rc)."""
    started = time.time()
    switch_started = reported = None
    with subprocess.Popen(["ansible-playbook", "-i", str(INVENTORY), str(path), "-e", json.dumps(extravars)],
                          cwd=PROJECT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as run:
        for line in run.stdout:
            if line.startswith(SWITCH_BANNER) and switch_started is None:
                switch_started = time.time()
            match = REPORTED_SWITCH.search(line)
            if match:
                reported = float(match.group(1))
    return started, time.time(), switch_started, reported, run.returncode


def seen_switch(report, since, new_version):
    """Seconds from `since` until every request started from then on was answered by new_version, or None."""
    rows = [(report["started_at"] + t, version) for t, _, version, _ in report["responses"]
            if report["started_at"] + t >= since]
    last_other = max((i for i, (_, version) in enumerate(rows) if version != new_version), default=-1)
    if last_other + 1 >= len(rows):
        return None
    return rows[last_other + 1][0] - since


def switch_under_load(url, rate, label, new_version, **extravars):
    """One bluegreen.yml run under load; returns its table row."""
    with Load(url, rate) as load:
        started, ended, switch_started, reported, rc = playbook(PROJECT / "playbooks" / "bluegreen.yml", **extravars)
    report = load.report
    if rc != 0 or switch_started is None:
        sys.exit(f"bench: {label} failed (rc={rc}); run it by hand on the lab {LAB} to see why")
    return {"run": label, "switch_s": seen_switch(report, switch_started, new_version), "reported_s": reported,
            "wall_s": ended - started, "requests": report["requests"], "failed": report["failed"],
            "rate": report["achieved_rate"]}


def cell(value, digits=2):
    return "-" if value is None else f"{value:.{digits}f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="deploy + rollback pairs (default 3)")
    parser.add_argument("--rate", type=int, default=300, help="requests/s through the LB (default 300)")
    args = parser.parse_args()

    rows = []
    try:
        url = lb_url(lab_up(LAB))
        if playbook(PROJECT / "playbooks" / "site.yml", app_version="1.0.0")[-1] != 0:
            sys.exit("bench: site.yml failed")
        for round_ in range(1, args.rounds + 1):
            rows.append(switch_under_load(url, args.rate, f"{round_}: deploy 1.1.0 (to green)", "1.1.0",
                                          app_version="1.1.0"))
            rows.append(switch_under_load(url, args.rate, f"{round_}: rollback (to blue)", "1.0.0",
                                          bluegreen_action="rollback"))
    finally:
        lab_down(LAB)

    print(f"bluegreen.yml on 5 blue + 5 green hosts + 1 LB, {args.rate} requests/s through the LB (new connection "
          f"each), until {TAIL_SECONDS} s after each playbook")
    print(f"{'run':<28} {'switch (users)':>14} {'switch (playbook)':>17} {'wall time':>9} {'requests':>8} "
          f"{'failed':>6} {'req/s':>6}")
    for row in rows:
        print(f"{row['run']:<28} {cell(row['switch_s']) + ' s':>14} {cell(row['reported_s']) + ' s':>17} "
              f"{cell(row['wall_s'], 1) + ' s':>9} {row['requests']:>8} {row['failed']:>6} {row['rate']:>6.0f}")
    for kind in ("deploy", "rollback"):
        picked = [row for row in rows if kind in row["run"]]
        switches = [row["switch_s"] for row in picked if row["switch_s"] is not None]
        print(f"median {kind}: switch {cell(statistics.median(switches) if switches else None)} s (users), "
              f"wall time {statistics.median(row['wall_s'] for row in picked):.1f} s, "
              f"failed requests {sum(row['failed'] for row in picked)}")


if __name__ == "__main__":
    main()
