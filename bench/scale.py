#!/usr/bin/env python3
"""Benchmark (not a test): how each strategy's time and the controller's memory grow with the fleet.

For each size N (hosts per colour; default 5 20 50, i.e. up to 100 app hosts) it makes its own lab (bench-scale: N blue + N green app
hosts and 2 LBs), deploys 1.0.0 with site.yml (blue live), then runs, each from the same start (blue live on a
fresh 1.0.0: bench/reset-rolling.yml on the app hosts - 1.0.0 running, nothing of 1.1.0 on any host - then
checked through the LB) and each while tools/loadgen.py sends 300 requests/s through lb1 on new connections
until 10 s after the playbook:

  rolling.yml to 1.1.0 in batches of 10%, and of 25%;
  bluegreen.yml deploy of 1.1.0 to green (smoke test, switch), then its break-glass rollback;
  canary.yml of 1.1.0 from green (10 s steps 5-20-50-100%, promoted).

Per row: wall time (ansible-runner's event times, first to last), the controller's peak memory (the summed RSS
of ansible-playbook and every process under it - forks, ssh - sampled from /proc every 0.2 s; the load
generator is not counted), requests sent and failed, and the requests lb1's access log shows with a failed
upstream attempt. Rolling rows also give the number of batches and the time per batch (median, max), from
the end of one batch's verdict to the next. Every playbook's return code is checked: a failed reset or
site.yml stops the benchmark; a measured run that did not complete is printed as such, not dropped, and the
bench then exits non-zero.

    .venv/bin/python bench/scale.py [5 20 50] [--rate 300] [--rows rolling-10 rolling-25 bluegreen break-glass canary]

One run per row (at 50 per colour a row takes minutes). The lab is removed at the end. Needs `make artifacts`.
"""

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import ansible_runner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (ENV, PROJECT, TAIL_SECONDS, Load, answers, inventory, lab_down, lab_up, lb_log, lb_log_size,  # noqa: E402
                    lb_url, upstream_failures)

LAB = "bench-scale"
LB_CONTAINER = f"{LAB}-lb1"
OLD, NEW = "1.0.0", "1.1.0"
BATCH_PLAY = "Replace the live hosts batch by batch - drain, deploy, verify, re-add"
BATCH_VERDICT = "Decide whether the rollout stops after this batch"
PAGE = os.sysconf("SC_PAGE_SIZE")


class BenchError(Exception):
    pass


def epoch(event):
    moment = datetime.fromisoformat(event["created"])
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


class TreeMemory:
    """Peak summed RSS of the ansible-playbook processes started by this one and every process under them (forks,
    ssh), sampled every 0.2 s."""

    def __init__(self):
        self.peak, self._stop = 0, threading.Event()

    @staticmethod
    def _processes():
        """{pid: (parent pid, rss bytes, command line)} of every process readable in /proc."""
        found = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                    rss_pages = int(Path(f"/proc/{entry}/statm").read_text().split()[1])
                    command = Path(f"/proc/{entry}/cmdline").read_bytes()
                except OSError:
                    continue  # ended meanwhile
                found[int(entry)] = (int(stat.rsplit(")", 1)[1].split()[1]), rss_pages * PAGE, command)
        return found

    def sample(self):
        processes = self._processes()
        children = {}
        for pid, (parent, _, _) in processes.items():
            children.setdefault(parent, []).append(pid)
        total = 0
        todo = [pid for pid in children.get(os.getpid(), []) if b"ansible-playbook" in processes[pid][2]]
        while todo:
            pid = todo.pop()
            total += processes[pid][1]
            todo.extend(children.get(pid, []))
        self.peak = max(self.peak, total)

    def _loop(self):
        while not self._stop.wait(0.2):
            self.sample()

    def __enter__(self):
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join()


def playbook(name, limit=None, **extravars):
    """Runs a playbook on the bench lab; returns {rc, wall, memory, events, failures}."""
    path = PROJECT / "bench" / name if name.startswith("reset") else PROJECT / "playbooks" / name
    with tempfile.TemporaryDirectory(prefix="bench-scale-runner-") as folder, TreeMemory() as memory:
        runner = ansible_runner.run(private_data_dir=folder, project_dir=str(PROJECT), playbook=str(path),
                                    inventory=str(inventory(LAB)), extravars=extravars, limit=limit, quiet=True,
                                    envvars={"ANSIBLE_CONFIG": ENV["ANSIBLE_CONFIG"], "PATH": ENV["PATH"]})
        events = list(runner.events)
    times = [epoch(event) for event in events]
    failures = "; ".join(event["event_data"]["res"].get("msg", "") for event in events
                         if event["event"] in ("runner_on_failed", "runner_on_unreachable")
                         and not event["event_data"].get("ignore_errors"))
    return {"name": name, "rc": runner.rc, "wall": max(times) - min(times) if times else None,
            "memory": memory.peak, "events": events, "failures": failures}


def must(name, limit=None, **extravars):
    run = playbook(name, limit=limit, **extravars)
    if run["rc"] != 0:
        raise BenchError(f"{name} {extravars} exited with {run['rc']}: {run['failures'][:500]}")
    return run


def batch_seconds(events):
    """Seconds of each rolling batch: from the batch play's start to the first verdict, then verdict to verdict."""
    starts = [epoch(e) for e in events if e["event"] == "playbook_on_play_start"
              and e["event_data"].get("play") == BATCH_PLAY]
    verdicts = [epoch(e) for e in events if e["event"] == "runner_on_ok"
                and e["event_data"].get("task") == BATCH_VERDICT]
    if not starts or not verdicts:
        return []
    marks = [starts[0]] + verdicts
    return [later - earlier for earlier, later in zip(marks, marks[1:])]


def start_state(lab):
    """Blue live on a fresh 1.0.0, green idle on a fresh 1.0.0; raises BenchError when the LB says otherwise."""
    must("reset-rolling.yml", limit="app")
    blue = {host["name"] for host in lab["hosts"] if "blue" in host["groups"]}
    seen = answers(lb_url(lab), 4 * len(blue))
    if {host for host, _ in seen} - blue or {version for _, version in seen} != {OLD}:
        raise BenchError(f"not blue live on {OLD} after the reset: the LB answered {sorted(seen)}")


def measured(lab, rate, label, name, **extravars):
    """One playbook under load: its row."""
    offset = lb_log_size(LB_CONTAINER)
    with Load(lb_url(lab), rate) as load:
        run = playbook(name, **extravars)
    report = load.report
    return {"row": label, "rc": run["rc"], "wall": run["wall"], "memory": run["memory"],
            "requests": report["requests"], "failed": report["failed"],
            "reasons": ", ".join(f"{why}: {n:,}" for why, n in sorted(report["by_status"].items()) if why != "200"),
            "upstream": len(upstream_failures(lb_log(LB_CONTAINER, offset))), "batches": batch_seconds(run["events"]),
            "failures": run["failures"]}


# Each row by its --rows name: its label, playbook, extra vars, and whether it starts from the fresh 1.0.0 state
# (the break-glass rollback starts where the blue-green deploy before it ended).
ROWS = {
    "rolling-10": ("rolling.yml, batches of 10%", "rolling.yml", {"rolling_batch": "10%"}, True),
    "rolling-25": ("rolling.yml, batches of 25%", "rolling.yml", {"rolling_batch": "25%"}, True),
    "bluegreen": ("bluegreen.yml deploy (to green, switch)", "bluegreen.yml", {}, True),
    "break-glass": ("bluegreen.yml rollback (break-glass)", "bluegreen.yml", {"bluegreen_action": "rollback"}, False),
    "canary": ("canary.yml 5-20-50-100%, 10 s steps", "canary.yml",
               {"canary_action": "deploy", "canary_step_seconds": 10}, True),
}


def size_rows(size, rate, names):
    rows = []
    began = time.monotonic()
    lab = lab_up(LAB, blue=size, green=size, lb=2)
    print(f"bench: lab of {size}+{size}+2 up in {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
    site = must("site.yml", app_version=OLD)
    rows.append({"row": "site.yml (no load)", "rc": 0, "wall": site["wall"], "memory": site["memory"]})
    for label, name, extravars, fresh in (ROWS[name] for name in ROWS if name in names):
        if fresh:
            start_state(lab)
        version = {} if extravars.get("bluegreen_action") else {"app_version": NEW}
        rows.append(measured(lab, rate, label, name, **version, **extravars))
        print(f"bench: {size} per colour, {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def cells(row):
    done = "" if row["rc"] == 0 else f" - DID NOT COMPLETE (exit {row['rc']}: {row.get('failures', '')[:200]})"
    batches = row.get("batches") or []
    per_batch = (f"{len(batches)} x {statistics.median(batches):.1f} s (max {max(batches):.1f} s)"
                 if batches else "-")
    reasons = f" ({row['reasons']})" if row.get("reasons") else ""
    traffic = (f"{row['requests']:,} | {row['failed']:,}{reasons} | {row['upstream']:,}" if "requests" in row
               else "- | - | -")
    wall = f"{row['wall']:.1f} s" if row["wall"] is not None else "-"
    return f"{row['row']}{done} | {wall} | {row['memory'] / 2**20:,.0f} MiB | {per_batch} | {traffic}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sizes", type=int, nargs="*", default=[5, 20, 50], help="hosts per colour")
    parser.add_argument("--rate", type=int, default=300, help="requests/s through lb1 (default 300)")
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS),
                        help="the rows to run (default all)")
    args = parser.parse_args()
    if "break-glass" in args.rows and "bluegreen" not in args.rows:
        parser.error("--rows break-glass rolls back the blue-green deploy: add bluegreen")

    began, table, stopped = time.monotonic(), [], None
    try:
        for size in args.sizes:
            table.extend((size, row) for row in size_rows(size, args.rate, args.rows))
    except BenchError as error:
        stopped = f"bench: stopped - {error}"
    finally:
        lab_down(LAB)
        print(f"\nbench-scale on {os.cpu_count()} cores: N blue + N green app hosts and 2 LBs; {args.rate} requests/s "
              f"through lb1 on new connections until {TAIL_SECONDS} s after each playbook; one run per row")
        print("| hosts per colour | playbook | wall time | controller peak RSS | batches x time (median) | "
              "requests | failed | upstream failures (lb1 log) |")
        print("|---|---|---|---|---|---|---|---|")
        for size, row in table:
            print(f"| {size} | {cells(row)} |")
        print(f"\nwhole bench: {(time.monotonic() - began) / 60:.1f} min")
    if stopped or any(row["rc"] != 0 for _, row in table):
        sys.exit(stopped or "bench: a row did not complete (see the table)")


if __name__ == "__main__":
    main()
