# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""The one deploy report: every strategy hands an outcome (a plain dict) to `render`.

An outcome holds the seed's comparison rows made real for one run:
  strategy, change ("1.0.0 -> 1.1.0"), outcome ("completed", "STOPPED after ..."), status (one of STATUSES),
  started, finished (epoch s),
  rows: [[label, text], ...] (resources, blast radius, rollback, ...),
  hosts: [{host, before, after, status, note}], steps: [{name, hosts, started, finished, status}].
The same dict is the run's machine-readable summary.
"""

from __future__ import annotations

HOST_COLUMNS = "  {:<12} {:<10} {:<10} {}"


def host_row(host, before, after, status, note=""):
    return {"host": host, "before": before or "", "after": after or "", "status": status, "note": note or ""}


def step_row(name, hosts, outcomes, status):
    """A batch or step, timed by the first start and the last end its hosts recorded."""
    started = [o["started"] for o in outcomes if o.get("started")]
    finished = [o["finished"] for o in outcomes if o.get("finished")]
    return {"name": name, "hosts": list(hosts), "status": status,
            "started": min(started) if started else None, "finished": max(finished) if finished else None}


STATUSES = ("completed", "unchanged", "stopped", "check", "failed")


def side_text(figures):
    """One side of a judgement on users' traffic, as the reports write it: '900 requests, 5.00% errors, p95 4 ms'."""
    rate = "-" if figures.get("error_rate") is None else f"{figures['error_rate'] * 100:.2f}%"
    p95 = "-" if figures.get("p95") is None else f"{round(figures['p95'] * 1000)} ms"
    return f"{figures.get('requests', 0)} requests, {rate} errors, p95 {p95}"


def outcome(strategy, change, result, status, started, finished, rows, hosts, steps=()):
    """status: completed; unchanged (nothing to do); stopped (every host serving, the LBs valid); check; failed
    (needs a person)."""
    if status not in STATUSES:
        raise ValueError(f"report status {status!r} is not one of {STATUSES}")
    return {"strategy": strategy, "change": change, "outcome": result, "status": status, "started": started,
            "finished": finished,
            "seconds": round(finished - started, 1) if started else None, "rows": [list(row) for row in rows],
            "hosts": list(hosts), "steps": list(steps)}


def _step_text(steps):
    timed = [f"{s['name']} {s['finished'] - s['started']:.1f} s" for s in steps if s["started"] and s["finished"]]
    return f"{len(steps)} - " + ", ".join(timed) if timed else str(len(steps))


def render(report):
    """The report as text, one line per row and per host."""
    lines = [f"{report['strategy']}: {report['change']} - {report['outcome']}"]
    if report.get("seconds") is not None:
        lines.append(f"  release speed: {report['seconds']} s wall time")
    lines += [f"  {label}: {text}" for label, text in report["rows"]]
    if report["steps"]:
        lines.append(f"  steps: {_step_text(report['steps'])}")
    if report["hosts"]:
        lines.append(HOST_COLUMNS.format("host", "before", "after", "note"))
        for row in report["hosts"]:
            note = f"{row['status']}: {row['note']}" if row["note"] else row["status"]
            lines.append(HOST_COLUMNS.format(row["host"], row["before"] or "-", row["after"] or "-", note))
    return "\n".join(lines)
