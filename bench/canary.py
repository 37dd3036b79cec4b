#!/usr/bin/env python3
"""Benchmark (not a test): what a bad and a healthy canary of 1.1.0 cost users, under load.

On its own lab (bench-canary: 5 blue + 5 green app hosts + 2 LBs), after site.yml has made blue live on 1.0.0,
each run starts from the same state - blue live on 1.0.0 and no canary: put back if need be (canary abort,
blue-green rollback), then checked - and runs playbooks/canary.yml of 1.1.0 (the canary hosts come from green)
through ansible-runner while tools/loadgen.py sends 300 requests/s through lb1 (or, for the third row, lb2 only),
each on a new connection, until 10 s after the playbook ends. The clocks are the runner's event times (`created`)
and that LB's JSON access log (`msec`); the lab's containers share this machine's clock. The rows, interleaved, 3
runs each:

  bad canary (USER_API_FAULT_ERROR_RATE=0.05 on the canary, 10 s steps judged every 1 s), which must be aborted:
    - exposure: from the canary's first answer (the first LB log line answered by a green backend after the step
      began changing the LB) to 0% canary (the end of the abort's task "Send users to user-api");
    - from that abort change to the last canary answer in the LB log (negative: it came before the task ended);
    - failed requests / total (load generator); upstream failures in the LB log outside the canary (green) hosts;
  bad canary with every user coming through lb2 (the analysis reads every LB's log): the same figures;
  healthy canary (10 s steps, 5-20-50-100%), which must be promoted:
    - each step's share: configured vs observed in the LB log over the step's window (`started`/`finished` of
      the report's `canary_steps`), the share of lines answered by green backends;
    - wall time (first to last runner event), failed requests / total, upstream failures on any backend.

A run that did not end as it must (aborted, resp. promoted, with its numbers) gets its own row and is left out of
the medians.

    .venv/bin/python bench/canary.py [--runs 3] [--rate 300]

It makes its own lab (bench-canary) and removes it at the end. Needs `make artifacts`. The first bad run copies
the 1.1.0 binary to green; later runs find it installed and only rewrite its environment (fault or none).
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

from common import (ENV, TAIL_SECONDS, Load, addresses, answered_by, answers, lab_down, lab_up, lb_url, lb_urls, run_playbook,
                    upstream_failures)

LAB = "bench-canary"
ACCESS_LOG = "/var/log/nginx/access.log"
NEW, OLD = "1.1.0", "1.0.0"
BAD = {"release_environment": {"USER_API_FAULT_ERROR_RATE": "0.05"}, "canary_step_seconds": 10}
HEALTHY = {"canary_step_seconds": 10}
STEP_STARTS = "Put the canary hosts in the canary upstream on every LB"  # a step's first LB change
ABORT_DONE = "Send users to user-api"  # the abort's LB change: 0% to the canary


class BenchError(Exception):
    pass


def report_text(run):
    return "".join(result.get("msg", "") for result in run.results("Print the deploy report"))


def canary_steps(run):
    reports = run.results("Build the deploy report")
    return reports[-1]["report"]["canary_steps"] if reports else []


def playbook(name, **extravars):
    return run_playbook(LAB, name, **extravars)


def succeeded(run, what):
    if run.rc != 0:
        raise BenchError(f"{what} ({run.name}) failed: rc={run.rc}, {run.status}: {run.failures()}")
    return run


def lb(name, *command):
    container = f"{LAB}-{name}"
    result = subprocess.run(["podman", "exec", container, *command], env=ENV, capture_output=True, text=True)
    if result.returncode != 0:
        raise BenchError(f"podman exec {container} {' '.join(command)}: rc={result.returncode}: {result.stderr}")
    return result.stdout


def lb_log(name, offset):
    """LB `name`'s access log lines (parsed) from byte `offset` on."""
    lines = []
    for text in lb(name, "tail", "-c", f"+{offset + 1}", ACCESS_LOG).splitlines():
        try:
            lines.append(json.loads(text))
        except ValueError:
            print(f"bench: unreadable LB log line skipped: {text[:120]!r}", file=sys.stderr)
    return lines


def start_state(lab):
    """Blue live on 1.0.0 and no canary: put back if need be, then checked; raises BenchError if it is not."""
    blue = {host["name"] for host in lab["hosts"] if "blue" in host["groups"]}

    def no_canary():
        return "No canary runs." in report_text(succeeded(playbook("canary.yml", canary_action="status"), "status"))

    def blue_live():
        seen = answers(lb_url(lab))
        return {host for host, _ in seen} <= blue and {version for _, version in seen} == {OLD}, seen

    if not no_canary():
        succeeded(playbook("canary.yml", canary_action="abort"), "canary abort")
        if not no_canary():
            raise BenchError("a canary still runs after canary_action=abort")
    if not blue_live()[0]:
        succeeded(playbook("bluegreen.yml", bluegreen_action="rollback"), "blue-green rollback")
        live, seen = blue_live()
        if not live:
            raise BenchError(f"blue is not live on {OLD} after the rollback: the LB answered {sorted(seen)}")


def canary_under_load(lab, rate, extravars, through="lb1"):
    start_state(lab)
    offset = int(lb(through, "stat", "-c", "%s", ACCESS_LOG))
    with Load(lb_urls(lab)[through], rate) as load:
        run = playbook("canary.yml", app_version=NEW, **extravars)
    return run, load.report, lb_log(through, offset)


def bad_canary(lab, rate, through="lb1"):
    """One bad canary, its users coming through one LB; its numbers, and `incomplete` (why) unless it was aborted
    at a failed step as it must."""
    run, load, lines = canary_under_load(lab, rate, BAD, through)
    green = {f"{address}:8000" for address in addresses(lab, "green")}
    row = {"failed": load["failed"], "requests": load["requests"], "rate": load["achieved_rate"],
           "outside": len(upstream_failures(lines, excluded=green))}
    step_started, abort_done = run.times("playbook_on_task_start", STEP_STARTS), run.times("runner_on_ok", ABORT_DONE)
    canary = [float(line["msec"]) for line in lines if answered_by(line) in green]
    steps = canary_steps(run)
    if run.rc == 0 or not steps or steps[-1]["decision"] != "fail":
        row["incomplete"] = (f"not aborted at a failed step (rc={run.rc}, steps "
                             f"{[(s['share'], s['decision']) for s in steps]}): {run.failures() or report_text(run)}")
    elif not step_started or not abort_done:
        row["incomplete"] = f"no step start or no abort LB change among the runner's events: {run.failures()}"
    elif not [moment for moment in canary if moment >= step_started[0]]:
        row["incomplete"] = "no canary answer in the LB log"
    else:
        first = min(moment for moment in canary if moment >= step_started[0])
        row.update(exposure=abort_done[-1] - first, after=max(canary) - abort_done[-1], aborted_at=steps[-1]["share"])
    return row


def healthy_canary(lab, rate):
    """One healthy canary; its numbers, and `incomplete` (why) unless it went through 5-20-50% and was promoted."""
    run, load, lines = canary_under_load(lab, rate, HEALTHY)
    green = {f"{address}:8000" for address in addresses(lab, "green")}
    row = {"failed": load["failed"], "requests": load["requests"], "rate": load["achieved_rate"],
           "upstream": len(upstream_failures(lines)), "wall": max(run.times("playbook_on_stats") or [0]) -
           min(run.times("playbook_on_start") or [0]), "shares": {}}
    steps = canary_steps(run)
    if run.rc != 0 or [step["share"] for step in steps] != [5, 20, 50] or \
            any(step["decision"] != "pass" for step in steps) or "promoted" not in report_text(run):
        row["incomplete"] = (f"not promoted after 5-20-50% (rc={run.rc}, steps "
                             f"{[(s['share'], s['decision']) for s in steps]}): {run.failures() or report_text(run)}")
    for step in steps:
        window = [line for line in lines if step["started"] <= float(line["msec"]) < step["finished"]]
        if window:
            row["shares"][step["share"]] = 100.0 * sum(answered_by(line) in green for line in window) / len(window)
        else:
            row["incomplete"] = f"no LB log line in the window of step {step['share']}%"
    return row


def spread(values, unit="", digits=2):
    """'median unit' and 'min to max unit' of values."""
    values = sorted(values)
    if not values:
        return "-", "-"
    return f"{statistics.median(values):,.{digits}f}{unit}", f"{values[0]:,.{digits}f} to {values[-1]:,.{digits}f}{unit}"


def failed_cells(rows):
    share = [100.0 * row["failed"] / row["requests"] for row in rows if row["requests"]]
    failed, failed_range = spread([row["failed"] for row in rows], digits=0)
    total, total_range = spread([row["requests"] for row in rows], digits=0)
    percent, percent_range = spread(share, "%", 3)
    return f"{failed} / {total} ({percent})", f"{failed_range} / {total_range} ({percent_range})"


def print_bad_rows(title, rows):
    done = [row for row in rows if "incomplete" not in row]
    at = sorted({row["aborted_at"] for row in done})
    name = f"{title}, {len(done)} of {len(rows)} runs aborted (at {', '.join(f'{s}%' for s in at)})"
    print(f"| {name} | first canary answer -> 0% canary (abort's LB change done) | "
          f"{' | '.join(spread([row['exposure'] for row in done], ' s'))} |")
    print(f"| | abort's LB change -> last canary answer | {' | '.join(spread([row['after'] for row in done], ' s'))} |")
    print(f"| | failed requests / total | {' | '.join(failed_cells(done))} |")
    print(f"| | upstream failures outside the canary hosts | "
          f"{' | '.join(spread([row['outside'] for row in done], digits=0))} |")


def print_table(bad, bad_lb2, healthy, rate, runs, seconds):
    print(f"\ncanary.yml of {NEW} from green (5 blue live on {OLD} + 5 green + 2 LBs), {rate} requests/s through lb1 "
          f"(lb2 for the second row) on new connections until {TAIL_SECONDS} s after each playbook; median and range "
          f"of {runs} runs")
    print("| row | measure | median | range |")
    print("|---|---|---|---|")
    print_bad_rows("bad canary (5% errors)", bad)
    print_bad_rows("bad canary, every user through lb2", bad_lb2)
    done = [row for row in healthy if "incomplete" not in row]
    name = f"healthy canary, {len(done)} of {len(healthy)} runs promoted"
    for share in (5, 20, 50):
        observed = [row["shares"][share] for row in done]
        print(f"| {name if share == 5 else ''} | share at step {share}%: observed in the LB log | "
              f"{' | '.join(spread(observed, '%'))} |")
        print(f"| | share at step {share}%: observed - configured | "
              f"{' | '.join(spread([value - share for value in observed], ' pt'))} |")
    print(f"| | wall time | {' | '.join(spread([row['wall'] for row in done], ' s', 1))} |")
    print(f"| | failed requests / total | {' | '.join(failed_cells(done))} |")
    print(f"| | upstream failures (any backend) | {' | '.join(spread([row['upstream'] for row in done], digits=0))} |")
    for kind, rows in (("bad canary", bad), ("bad canary through lb2", bad_lb2), ("healthy canary", healthy)):
        for number, row in enumerate(rows, start=1):
            if "incomplete" in row:
                print(f"| {kind}, run {number}: DID NOT COMPLETE | {row['incomplete'][:300]} | "
                      f"{row['failed']} of {row['requests']} failed | - |")
    print(f"\nwhole bench: {seconds / 60:.1f} min (lab, site.yml, {3 * runs} measured runs, the resets between them)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs of each row (default 3)")
    parser.add_argument("--rate", type=int, default=300, help="requests/s through the LB (default 300)")
    args = parser.parse_args()

    began = time.monotonic()
    bad, bad_lb2, healthy = [], [], []
    rows = (("bad", lambda lab: bad_canary(lab, args.rate), bad),
            ("bad through lb2", lambda lab: bad_canary(lab, args.rate, "lb2"), bad_lb2),
            ("healthy", lambda lab: healthy_canary(lab, args.rate), healthy))
    try:
        lab = lab_up(LAB, lb=2)
        succeeded(playbook("site.yml", app_version=OLD), "site.yml")
        for number in range(1, args.runs + 1):
            for kind, measure, done in rows:
                done.append(measure(lab))
                print(f"bench: {kind} canary, run {number}: {done[-1]}", file=sys.stderr, flush=True)
    except BenchError as error:
        sys.exit(f"bench: {error}; the runs so far: bad {bad}, bad through lb2 {bad_lb2}, healthy {healthy}")
    finally:
        lab_down(LAB)
    print_table(bad, bad_lb2, healthy, args.rate, args.runs, time.monotonic() - began)


if __name__ == "__main__":
    main()
