#!/usr/bin/env python3
"""Benchmark (not a test): rolling.yml against the textbook rolling update, side by side, under load.

For each fleet size (5 and 20 live hosts) and each row - the textbook playbook, rolling.yml with
rolling_min_healthy_seconds=0 and no bake at the same batches, and rolling.yml at its default settings with its
bake after each batch (10 s of users' traffic judged) and without it - it runs the
update from 1.0.0 to 1.1.0 three times while tools/loadgen.py sends 300 requests/s through the LB (a new
connection each) from 2 s before the playbook until 10 s after it. Before every run the fleet is put back to
a fresh 1.0.0 state (bench/reset-rolling.yml: 1.0.0 running, nothing of 1.1.0 on any host, every server up),
so every run, the textbook's too, pays the transfer of 1.1.0.

Wall time comes from ansible-runner's event times (playbook start to its stats), not from reading output.
Every playbook's return code is checked: a failed reset or site.yml stops the benchmark; a measured run that
did not complete is a row of its own. Per row: median and range of the wall time over the completed runs,
requests sent, failed, and the requests the LB's access log shows with a failed upstream attempt (Nginx
retried them on another backend: the user saw a 200, the backend failed it).

    .venv/bin/python bench/rolling.py [--hosts 5 20] [--runs 3] [--rate 300] [--mitogen 5]

The textbook and min_healthy 0 rows run again with Mitogen's strategy (an option, see docs/lab.md) at the sizes
--mitogen names (5 by default: the 20-host rows take the longest).

It makes its own lab (bench-rolling) and removes it at the end. Needs `make artifacts`.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import ansible_runner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (ENV, PROJECT, TAIL_SECONDS, Load, inventory, lab_down, lb_log, mitogen_env,  # noqa: E402
                    upstream_failures)

LAB = "bench-rolling"
BATCH = {5: 1, 20: "25%"}  # the batches bench/RESULTS.md's table compares at


class Failed(RuntimeError):
    pass


def playbook(path, mitogen=False, **extravars):
    """Runs a playbook on the bench lab with ansible-runner (with Mitogen's strategy if asked); returns (wall
    seconds from its events, rc)."""
    envvars = {"ANSIBLE_CONFIG": ENV["ANSIBLE_CONFIG"], **(mitogen_env() if mitogen else {})}
    with tempfile.TemporaryDirectory() as private:
        runner = ansible_runner.run(private_data_dir=private, project_dir=str(PROJECT), playbook=str(path),
                                    inventory=str(inventory(LAB)), extravars=extravars, quiet=True, envvars=envvars)
        times = {event["event"]: datetime.fromisoformat(event["created"]) for event in runner.events
                 if event["event"] in ("playbook_on_start", "playbook_on_stats")}
    seconds = (times["playbook_on_stats"] - times["playbook_on_start"]).total_seconds() if len(times) == 2 else None
    return seconds, runner.rc


def must(path, **extravars):
    seconds, rc = playbook(path, **extravars)
    if rc != 0:
        raise Failed(f"{Path(path).name} {extravars} exited with {rc}")
    return seconds


def lab_up(hosts):
    spec = [{"name": f"app{i}", "groups": ["app"]} for i in range(1, hosts + 1)] + [{"name": "lb1", "groups": ["lb"]}]
    with tempfile.NamedTemporaryFile("w", suffix=".json") as spec_file:
        json.dump(spec, spec_file)
        spec_file.flush()
        subprocess.run([sys.executable, str(PROJECT / "lab" / "lab.py"), "up", "--name", LAB, "--spec", spec_file.name,
                        "--inventory", str(inventory(LAB))], check=True, env=ENV, stdout=subprocess.DEVNULL)
    lab = json.loads((PROJECT / ".lab" / LAB / "lab.json").read_text())
    return next(f"http://{h['address']}/" for h in lab["hosts"] if "lb" in h["groups"])


def upstream_failures_between(since, until):
    """Requests in the LB's access log between since and until (epoch) for which a backend failed."""
    lines = lb_log(f"{LAB}-lb1", 0)
    return len(upstream_failures([line for line in lines if since <= float(line["msec"]) <= until]))


def measured(lb_url, rate, path, mitogen, **extravars):
    """One run from a fresh 1.0.0 fleet: (seconds, rc, requests, failed, upstream failures, failures by status)."""
    must(PROJECT / "bench" / "reset-rolling.yml")
    with Load(lb_url, rate) as load:
        seconds, rc = playbook(path, mitogen, app_version="1.1.0", **extravars)
    report = load.report
    started = report["started_at"]
    failures = upstream_failures_between(started, started + report["duration"])
    reasons = ", ".join(f"{why}: {n}" for why, n in sorted(report["by_status"].items()) if why != "200")
    return seconds, rc, report["requests"], report["failed"], failures, reasons


def row(hosts, batch, name, runs):
    """A table row over the runs: the wall time's median and range, and the sums of the traffic figures."""
    times = [run[0] for run in runs]
    spread = f"{min(times):.1f}-{max(times):.1f}" if len(times) > 1 else "-"
    return (f"| {hosts} | {batch} | {name} | {len(runs)} | {statistics.median(times):.1f} s | {spread} | "
            f"{sum(r[2] for r in runs):,} | {sum(r[3] for r in runs):,} | {sum(r[4] for r in runs):,} | "
            f"{'; '.join(sorted({r[5] for r in runs if r[5]})) or '-'} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, nargs="+", default=[5, 20])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=int, default=300)
    parser.add_argument("--mitogen", type=int, nargs="*", default=[5], metavar="HOSTS",
                        help="fleet sizes that also get the textbook and min_healthy 0 rows with Mitogen's strategy")
    args = parser.parse_args()

    textbook, rolling = PROJECT / "bench" / "textbook-rolling.yml", PROJECT / "playbooks" / "rolling.yml"
    table = []
    try:
        for hosts in args.hosts:
            batch = BATCH.get(hosts, "25%")
            lb_url = lab_up(hosts)
            must(PROJECT / "playbooks" / "site.yml", app_version="1.0.0")
            rows = [("textbook `serial`", textbook, False, {"textbook_batch": batch}),
                    ("`rolling.yml` min_healthy 0, bake off", rolling, False,
                     {"rolling_batch": batch, "rolling_min_healthy_seconds": 0, "rolling_bake_seconds": 0}),
                    ("`rolling.yml` defaults (bake 10 s)", rolling, False, {"rolling_batch": batch}),
                    ("`rolling.yml` defaults, bake off", rolling, False,
                     {"rolling_batch": batch, "rolling_bake_seconds": 0})]
            if hosts in args.mitogen:
                rows += [(f"{name}, Mitogen", path, True, extravars) for name, path, _, extravars in rows[:2]]
            for name, path, mitogen, extravars in rows:
                done, failed = [], []
                for _ in range(args.runs):
                    run = measured(lb_url, args.rate, path, mitogen, **extravars)
                    (done if run[1] == 0 and run[0] is not None else failed).append(run)
                    print(hosts, batch, name, *run, flush=True, file=sys.stderr)
                if done:
                    table.append(row(hosts, batch, name, done))
                if failed:
                    rcs = ",".join(str(run[1]) for run in failed)
                    table.append(row(hosts, batch, f"{name} - did not complete (exit {rcs})",
                                     [(r[0] or 0.0,) + r[1:] for r in failed]))
            lab_down(LAB)
    finally:
        lab_down(LAB)

    print(f"\n{args.rate} requests/s through the LB, a new connection each, from 2 s before each playbook until "
          f"{TAIL_SECONDS} s after it; every run from a fresh 1.0.0 fleet; wall time from ansible-runner's events")
    print("| hosts | batch | playbook | runs | wall time (median) | range | requests | failed | upstream failures "
          "(LB log) | failures |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(table))


if __name__ == "__main__":
    main()
