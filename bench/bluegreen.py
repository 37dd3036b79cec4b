#!/usr/bin/env python3
"""Benchmark (not a test): how fast bluegreen.yml switches and rolls back, as users see it, on two LBs.

On its own lab (bench-bg: 5 blue + 5 green app hosts + 2 LBs), each round starts from the same state - blue live
on 1.0.0 on both LBs, green idle on 1.0.0 with nothing of 1.1.0 on it (put back, then checked) - and runs, through
ansible-runner, while tools/loadgen.py sends RATE requests/s through each LB (each on a new connection) until
10 s after each playbook:
  deploy      bluegreen.yml -e app_version=1.1.0 (install on green, smoke-test, switch)
  break-glass bluegreen.yml -e bluegreen_action=rollback (reads only the LBs, switches back)
  (re-deploy  bluegreen.yml -e app_version=1.1.0 again, 1.1.0 now installed: the start of the next row)
  full checks bluegreen.yml -e bluegreen_action=rollback -e bluegreen_rollback_full_checks=true
Per run: the playbook's wall time (runner events: playbook start -> stats) and the whole run's (ansible-runner's
call: start-up and parsing too); the switch time, per LB, from the
switch task's start (its runner event) until every answer through that LB came from the other version (the LB's
access log: the end of the last request an old-colour backend answered); the spread between the two LBs (those
two moments, and the switch task's end on each LB in the runner's events); failed requests (load generators);
upstream failures in the LBs' logs. Every playbook's return code is checked; a run that did not complete is a row
of its own and stays out of the medians.

    .venv/bin/python bench/bluegreen.py [--rounds 3] [--rate 150]

It makes its own lab (bench-bg) and removes it at the end. Needs `make artifacts`.
"""

import argparse
import subprocess
import sys
import time

from common import (ENV, TAIL_SECONDS, Loads, addresses, answered_by, answers, lab_down, lab_up, lb_log, lb_log_size, lb_urls,
                    median_range, run_playbook, upstream_failures)

LAB = "bench-bg"
NEW, OLD = "1.1.0", "1.0.0"
SWITCH_TASK = "Make the new live set the upstream's only servers, on every load balancer"
KINDS = {
    "deploy": ("deploy 1.1.0 to green, switch", NEW, {"app_version": NEW}),
    "break-glass": ("break-glass rollback", OLD, {"bluegreen_action": "rollback"}),
    "redeploy": ("re-deploy 1.1.0 (installed), switch", NEW, {"app_version": NEW}),
    "full": ("rollback with the full checks", OLD, {"bluegreen_action": "rollback",
                                                    "bluegreen_rollback_full_checks": True}),
}


class BenchError(Exception):
    pass


def playbook(name, **extravars):
    run = run_playbook(LAB, name, **extravars)
    if run.rc != 0:
        raise BenchError(f"{name} {extravars} failed: rc={run.rc}, {run.status}: {run.failures()}")
    return run


def podman(*command):
    result = subprocess.run(["podman", *command], env=ENV, capture_output=True, text=True)
    if result.returncode != 0:
        raise BenchError(f"podman {' '.join(command)}: rc={result.returncode}: {result.stderr.strip()}")
    return result.stdout


def start_state(lab):
    """Blue live on 1.0.0 on every LB; green idle on 1.0.0 without the 1.1.0 release: put back, then checked."""
    blue = {host["name"] for host in lab["hosts"] if "blue" in host["groups"]}
    green = [host for host in lab["hosts"] if "green" in host["groups"]]

    def blue_live():
        return all(answers(url) <= {(name, OLD) for name in blue} for url in lb_urls(lab).values())

    if not blue_live():
        playbook("bluegreen.yml", bluegreen_action="rollback")
    playbook("site.yml", app_version=OLD)  # green (idle) back on 1.0.0; the live colour is left alone
    for host in green:
        podman("exec", f"{LAB}-{host['name']}", "rm", "-rf", f"/opt/user-api/releases/{NEW}")
    seen = {answers(f"http://{host['address']}:8000/", 1).pop() for host in green}
    if not blue_live() or {version for _, version in seen} != {OLD}:
        raise BenchError(f"not the start state: green answers {sorted(seen)}, LBs {[answers(u) for u in lb_urls(lab).values()]}")


def switched_at(lines, old_backends, since):
    """When the last request an old backend answered ended (LB log `msec`) after `since`; None if none did."""
    ends = [float(line["msec"]) for line in lines if float(line["msec"]) >= since and answered_by(line) in old_backends]
    return max(ends, default=None)


def measured(lab, rate, kind):
    """One run under load through every LB; its row (with `incomplete` saying why, if it did not complete)."""
    label, version, extravars = KINDS[kind]
    lbs = lb_urls(lab)
    offsets = {lb: lb_log_size(f"{LAB}-{lb}") for lb in lbs}
    with Loads(list(lbs.values()), rate) as loads:
        run = run_playbook(LAB, "bluegreen.yml", **extravars)
    lines = {lb: lb_log(f"{LAB}-{lb}", offsets[lb]) for lb in lbs}
    reports = [load.report for load in loads.loads]
    row = {"kind": kind, "label": label, "wall": run.wall(), "process": run.seconds,
           "requests": sum(r["requests"] for r in reports),
           "failed": sum(r["failed"] for r in reports), "rate": sum(r["achieved_rate"] for r in reports),
           "upstream": sum(len(upstream_failures(found)) for found in lines.values())}
    old_colour = "green" if version == OLD else "blue"
    old_backends = {f"{address}:8000" for address in addresses(lab, old_colour)}
    started = run.times("playbook_on_task_start", SWITCH_TASK)
    ended = run.host_times("runner_on_ok", SWITCH_TASK)
    if run.rc != 0 or not started or sorted(ended) != sorted(lbs):
        row["incomplete"] = f"rc={run.rc}, {run.status}, switch ended on {sorted(ended)}: {run.failures()[:300]}"
        return row
    per_lb = {lb: switched_at(lines[lb], old_backends, started[0]) for lb in lbs}
    if None in per_lb.values():
        row["incomplete"] = f"no answer from {old_colour} after the switch task started in an LB's log: {per_lb}"
        return row
    row.update(switch=max(per_lb.values()) - started[0], per_lb={lb: t - started[0] for lb, t in per_lb.items()},
               spread=max(per_lb.values()) - min(per_lb.values()),
               task_spread=max(ended.values()) - min(ended.values()))
    return row


def print_table(rows, rate, rounds, seconds):
    lbs = sorted({lb for row in rows for lb in row.get("per_lb", {})})
    print(f"\nbluegreen.yml on 5 blue + 5 green hosts + {len(lbs)} LBs, {rate} requests/s through each LB (new "
          f"connection each) until {TAIL_SECONDS} s after each playbook; each round from blue live on {OLD}, green "
          f"on {OLD} without {NEW}")
    print("\n| run | playbook wall time | whole run | switch (task start -> every answer new) | per LB | spread "
          "between LBs (LB logs; switch task ends) | requests | failed | upstream failures |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        if "incomplete" in row:
            print(f"| {row['label']}: DID NOT COMPLETE | {row['incomplete']} | | | | | {row['requests']:,} | "
                  f"{row['failed']} | {row['upstream']} |")
            continue
        per_lb = ", ".join(f"{lb} {row['per_lb'][lb]:.2f} s" for lb in lbs)
        print(f"| {row['label']} | {row['wall']:.2f} s | {row['process']:.2f} s | {row['switch']:.2f} s | {per_lb} | "
              f"{row['spread']:.3f} s; "
              f"{row['task_spread']:.3f} s | {row['requests']:,} | {row['failed']} | {row['upstream']} |")
    print(f"\nmedian and range of {rounds} runs (complete runs only)\n")
    print("| run | complete | playbook wall time | whole run | switch | spread between LBs (LB logs) | "
          "failed / requests | upstream failures |")
    print("|---|---|---|---|---|---|---|---|")
    for kind, (label, _, _) in KINDS.items():
        picked = [row for row in rows if row["kind"] == kind]
        done = [row for row in picked if "incomplete" not in row]
        wall = median_range([row["wall"] for row in done], " s")
        process = median_range([row["process"] for row in done], " s")
        switch = median_range([row["switch"] for row in done], " s")
        spread = median_range([row["spread"] for row in done], " s", 3)
        print(f"| {label} | {len(done)} of {len(picked)} | {wall[0]} ({wall[1]}) | {process[0]} ({process[1]}) | "
              f"{switch[0]} ({switch[1]}) | "
              f"{spread[0]} ({spread[1]}) | {sum(r['failed'] for r in picked)} / {sum(r['requests'] for r in picked):,} "
              f"| {sum(r['upstream'] for r in picked)} |")
    print(f"\nwhole bench: {seconds / 60:.1f} min")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each row (default 3)")
    parser.add_argument("--rate", type=int, default=150, help="requests/s through each LB (default 150: 300 in all)")
    args = parser.parse_args()

    began = time.monotonic()
    rows, failure = [], None
    try:
        lab = lab_up(LAB, lb=2)
        playbook("site.yml", app_version=OLD)
        for number in range(1, args.rounds + 1):
            start_state(lab)
            for kind in KINDS:
                rows.append(measured(lab, args.rate, kind))
                print(f"bench: round {number}: {rows[-1]}", file=sys.stderr, flush=True)
                if "incomplete" in rows[-1]:
                    break  # the next row needs this one's end state: the next round starts afresh
    except (BenchError, RuntimeError, subprocess.CalledProcessError) as error:
        failure = f"bench: stopped: {error}"
    finally:
        lab_down(LAB)
    print_table(rows, args.rate, args.rounds, time.monotonic() - began)
    if failure:
        sys.exit(failure)


if __name__ == "__main__":
    main()
