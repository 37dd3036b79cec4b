#!/usr/bin/env python3
"""Open-loop HTTP load generator for deployment-strategy tests.

Sends `GET` requests at a fixed rate, each on a new TCP connection, to a
loopback or private-network target while a playbook replaces the backends,
and reports every outcome plus the X-App-Version mix over time.
Standard library only: it also runs with a plain python3 on CI controllers.

    python3 tools/loadgen.py http://127.0.0.1:8080/ --rate 300 --duration 120 --json out.json

SIGTERM/SIGINT end the run early: no new requests, in-flight ones finish
(bounded by --timeout), then the report is written. Exit 0 when the run
completed (callers assert on the report), 1 with --fail-on-error if any
request failed, 2 on bad arguments.
"""

import argparse
import asyncio
import ipaddress
import json
import math
import os
import re
import signal
import socket
import sys
import time
from collections import Counter
from urllib.parse import urlsplit

# Project rule: test traffic goes only to loopback or the lab's own containers.
ALLOWED_NETS = [
    ipaddress.ip_network(net)
    for net in ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
]
MAX_RATE = 10000
MAX_DURATION = 3600
MAX_TIMEOUT = 300
TIMELINE_LINES = 60  # text summary groups seconds so a long run stays readable
PRIORITY = 10  # real-time round-robin priority asked for (root only), see raise_priority
# A header of --header: its name, then printable ASCII only, so it cannot end the request's head or add a line.
HEADER = re.compile(r"[A-Za-z0-9-]+: [\x20-\x7e]*")


class MalformedResponse(Exception):
    pass


def is_ok(outcome):
    """2xx/3xx status (int or its string form from by_status); failure reasons are not digits."""
    return str(outcome).isdigit() and 200 <= int(outcome) < 400


def resolve_target(url, headers=()):
    """URL and extra headers ('Name: value') -> (ipv4, port, request bytes); ValueError if it is not http:// to an
    allowed host."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(f"URL {url!r}: only http:// URLs are supported")
    if not parts.hostname:
        raise ValueError(f"URL {url!r}: no host")
    try:
        port = parts.port or 80
    except ValueError:
        raise ValueError(f"URL {url!r}: invalid port") from None
    try:
        infos = socket.getaddrinfo(parts.hostname, port, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ValueError(f"host {parts.hostname!r}: no IPv4 address ({exc.strerror})") from None
    addresses = sorted({info[4][0] for info in infos})
    refused = [a for a in addresses if not any(ipaddress.ip_address(a) in n for n in ALLOWED_NETS)]
    if refused:
        raise ValueError(
            f"host {parts.hostname!r} ({', '.join(refused)}) is not loopback or private "
            "(127/8, 10/8, 172.16/12, 192.168/16); test load may only go there"
        )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = parts.hostname + (f":{parts.port}" if parts.port else "")
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: loadgen\r\n"
        + "".join(f"{header}\r\n" for header in headers)
        + "Accept: */*\r\nConnection: close\r\n\r\n"
    ).encode("ascii")
    # Connect to the checked address, not the name, so a later lookup cannot differ.
    return addresses[0], port, request


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="loadgen.py",
        description="Open-loop HTTP load (one new connection per request) against a "
        "loopback/private http:// URL; stops after --duration or --requests, or on SIGTERM/SIGINT.",
    )
    parser.add_argument("url", help="http:// URL on 127/8, 10/8, 172.16/12 or 192.168/16")
    parser.add_argument("--rate", type=float, default=300.0, help="requests per second (default 300)")
    parser.add_argument("--duration", type=float, default=60.0,
                        help=f"stop scheduling after this many seconds (default 60, max {MAX_DURATION})")
    parser.add_argument("--requests", type=int, help="stop after this many requests (whichever bound comes first)")
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="seconds allowed per request, connect to end of response (default 5)")
    parser.add_argument("--max-in-flight", type=int, default=1000,
                        help="concurrency cap; requests due beyond it fail as 'overload' (default 1000)")
    parser.add_argument("--json", metavar="FILE", help="write the full report (JSON) to FILE")
    parser.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                        help="a header sent with every request, e.g. 'X-Canary: always' (repeatable)")
    parser.add_argument("--normal-priority", action="store_true",
                        help="stay in the normal scheduling class: for traffic that is part of the test (a flood), "
                             "not its witness, which must not take the CPU from the LB and the backends")
    parser.add_argument("--quiet", action="store_true", help="no text summary on stdout")
    parser.add_argument("--fail-on-error", action="store_true", help="exit 1 if any request failed")
    args = parser.parse_args(argv)
    # Written as `not (lo < x <= hi)` so NaN is refused too.
    checks = [
        ("--rate", args.rate, 0 < args.rate <= MAX_RATE, f"must be > 0 and <= {MAX_RATE}"),
        ("--duration", args.duration, 0 < args.duration <= MAX_DURATION,
         f"must be > 0 and <= {MAX_DURATION} (every run is bounded)"),
        ("--requests", args.requests, args.requests is None or args.requests > 0, "must be > 0"),
        ("--timeout", args.timeout, 0 < args.timeout <= MAX_TIMEOUT, f"must be > 0 and <= {MAX_TIMEOUT}"),
        ("--max-in-flight", args.max_in_flight, args.max_in_flight > 0, "must be > 0"),
    ]
    for name, value, valid, why in checks:
        if not valid:
            parser.error(f"{name} {value:g}: {why}")
    for header in args.header:
        if not HEADER.fullmatch(header):
            parser.error(f"--header {header!r}: must be 'Name: value', in printable ASCII")
    try:
        args.target = resolve_target(args.url, args.header)
    except ValueError as exc:
        parser.error(str(exc))
    return args


async def fetch(ip, port, request):
    """One GET on a fresh connection -> (status, X-App-Version or None)."""
    reader, writer = await asyncio.open_connection(ip, port)
    try:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        # We sent Connection: close, so the server ends the response by closing;
        # reading to EOF lets it close first and keep the TIME_WAIT sockets.
        body = await reader.read()
    finally:
        writer.close()
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    fields = status_line.split(" ", 2)
    if len(fields) < 2 or not fields[0].startswith("HTTP/1.") or not (len(fields[1]) == 3 and fields[1].isdigit()):
        raise MalformedResponse
    headers = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length")
    if length is not None and (not length.isdigit() or len(body) < int(length)):
        raise asyncio.IncompleteReadError(body, None)
    return int(fields[1]), headers.get("x-app-version")


async def run(args):
    """Send the load; returns (rows, started_at, duration, stopped_by, max_lag_s)."""
    loop = asyncio.get_running_loop()
    ip, port, request = args.target
    max_requests = args.requests or math.inf
    # Index = request number, so rows stay in start order whatever finishes first;
    # tuples of atoms are untracked by the GC, keeping its passes short on long runs.
    rows = []
    inflight = set()
    max_lag = 0.0
    started_at = time.time()
    t0 = loop.time()

    async def one(i, due):
        nonlocal max_lag
        start = loop.time()
        max_lag = max(max_lag, start - due)
        version = None
        try:
            outcome, version = await asyncio.wait_for(fetch(ip, port, request), args.timeout)
        except asyncio.TimeoutError:
            outcome = "timeout"
        except asyncio.IncompleteReadError:
            outcome = "incomplete response"
        except (MalformedResponse, asyncio.LimitOverrunError):
            outcome = "malformed response"
        except Exception as exc:  # ConnectionRefusedError, ConnectionResetError, ...
            outcome = type(exc).__name__
        rows[i] = (round(start - t0, 3), outcome, version if is_ok(outcome) else None,
                   round((loop.time() - start) * 1000, 1))

    async def schedule():
        nonlocal max_lag
        i = 0
        try:
            # Open loop: request i is due at t0 + i/rate, however earlier ones went.
            while i < max_requests and i / args.rate < args.duration:
                due = t0 + i / args.rate
                await asyncio.sleep(max(0.0, due - loop.time()))  # also yields when behind
                if len(inflight) >= args.max_in_flight:
                    now = loop.time()
                    max_lag = max(max_lag, now - due)
                    rows.append((round(now - t0, 3), "overload", None, 0.0))
                else:
                    rows.append(None)  # filled in by one()
                    task = asyncio.create_task(one(i, due))
                    inflight.add(task)
                    task.add_done_callback(inflight.discard)
                i += 1
        except asyncio.CancelledError:  # only our signal handler cancels this task
            return "signal", i
        return ("requests" if i >= max_requests else "duration"), i

    scheduler = asyncio.create_task(schedule())
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, scheduler.cancel)
    stopped_by, sent = await scheduler
    duration = max(loop.time() - t0, sent / args.rate)
    # The drain is bounded by --timeout and the report must get written: ignore repeats.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
        signal.signal(sig, signal.SIG_IGN)
    if inflight:
        await asyncio.wait(set(inflight))
    return rows, started_at, duration, stopped_by, max_lag


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


def build_report(url, target_rate, started_at, duration, stopped_by, max_lag_s, rows):
    by_status, versions, latencies, seconds = Counter(), Counter(), [], {}
    for t, outcome, version, latency in rows:
        second = seconds.setdefault(int(t), {"sent": 0, "failed": 0, "versions": Counter()})
        second["sent"] += 1
        by_status[str(outcome)] += 1
        if is_ok(outcome):
            versions[version or "none"] += 1
            second["versions"][version or "none"] += 1
            latencies.append(latency)
        else:
            second["failed"] += 1
    latencies.sort()
    ok = len(latencies)
    timeline = []
    for s in range(max(seconds) + 1 if seconds else 0):
        second = seconds.get(s, {"sent": 0, "failed": 0, "versions": {}})
        timeline.append({"t": s, "sent": second["sent"], "failed": second["failed"],
                         "versions": dict(sorted(second["versions"].items()))})
    return {
        "url": url,
        "target_rate": target_rate,
        "achieved_rate": round(len(rows) / duration, 2),
        "started_at": round(started_at, 3),
        "duration": round(duration, 3),
        "stopped_by": stopped_by,
        "requests": len(rows),
        "ok": ok,
        "failed": len(rows) - ok,
        "by_status": dict(sorted(by_status.items())),
        "versions": dict(sorted(versions.items())),
        "latency_ms": {name: percentile(latencies, p) for name, p in
                       (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))},
        "max_lag_ms": round(max_lag_s * 1000, 1),
        "timeline": timeline,
        "responses": rows,
    }


def version_share(report, version, window_s=1.0):
    """[(window start s, share of successful responses served by `version`)], windows without
    successes skipped. `report` is a report dict or the path of a --json file."""
    if not isinstance(report, dict):
        with open(report) as f:
            report = json.load(f)
    windows = {}
    for t, outcome, served_by, _ in report["responses"]:
        if is_ok(outcome):
            counts = windows.setdefault(int(t // window_s), [0, 0])
            counts[0] += served_by == version
            counts[1] += 1
    return [(w * window_s, hits / total) for w, (hits, total) in sorted(windows.items())]


def short_seconds(report, late_s=0.02):
    """The 1-second buckets of a run in which fewer requests went out than the rate asks:
    [(second, sent, asked)]; [] when the rate held in every one. A request counts in the second it was
    really sent, not the one it was due in, so a stall shows even though the open loop catches up after it.
    late_s: the scheduling jitter that is not a stall - a request due just before a second ends and sent
    just after counts in the next one, so any second may be short by rate x late_s (6 requests at 300/s;
    an idle 300/s run here lags at most 11 ms). The last second is partial: it asks only for the requests
    due before the run ended. Requests refused as 'overload' were never sent. `report`: a report dict."""
    rate, duration = report["target_rate"], report["duration"]
    sent = Counter(int(t) for t, outcome, *_ in report["responses"] if outcome != "overload")
    slack = math.ceil(rate * late_s)
    short = []
    for second in range(math.ceil(duration)):
        asked = math.ceil(min(second + 1, duration) * rate) - math.ceil(second * rate)
        if sent[second] < asked - slack:
            short.append((second, sent[second], asked))
    return short


def version_mix(versions):
    total = sum(versions.values())
    return "  ".join(f"{v} {100 * n / total:.0f}%" for v, n in sorted(versions.items())) or "-"


def summary(report):
    lat = {k: "-" if v is None else f"{v:g}" for k, v in report["latency_ms"].items()}
    failures = {k: n for k, n in report["by_status"].items() if not is_ok(k)}
    lines = [
        f"loadgen {report['url']}: {report['requests']} requests in {report['duration']:.1f} s, "
        f"{report['achieved_rate']:.1f}/s (target {report['target_rate']:g}/s), stopped by {report['stopped_by']}",
        f"ok {report['ok']}  failed {report['failed']}"
        + (": " + ", ".join(f"{k} x{n}" for k, n in failures.items()) if failures else ""),
        "versions: " + (", ".join(f"{v} {n}" for v, n in report["versions"].items()) or "-"),
        f"latency ms: p50 {lat['p50']}  p90 {lat['p90']}  p99 {lat['p99']}  max {lat['max']}"
        f"   max scheduling lag {report['max_lag_ms']:g} ms",
    ]
    timeline = report["timeline"]
    step = max(1, math.ceil(len(timeline) / TIMELINE_LINES))
    lines.append(f"timeline, {step} s per line:\n      t    sent  failed  versions")
    for i in range(0, len(timeline), step):
        group = timeline[i:i + step]
        versions = Counter()
        for entry in group:
            versions.update(entry["versions"])
        lines.append(f"{group[0]['t']:>6}s {sum(e['sent'] for e in group):>7} "
                     f"{sum(e['failed'] for e in group):>7}  {version_mix(versions)}")
    return "\n".join(lines)


def raise_priority():
    """Asks for the real-time round-robin class: on a saturated machine a starved load generator sends fewer
    requests in a second and looks like a stall. A nice value is not enough: with the kernel's autogroups it ranks
    a process only within its own session, and the lab's containers sit in cgroups of their own (two colliding
    deploys, 3 runs each: max lag 33-46 ms at nice -10, 5-8 ms at SCHED_RR). It needs a fraction of one core and
    the kernel keeps 5% of each for the rest, but it runs before a busy LB container: the lab gives the LBs the
    largest CPU weight, without which 100 app hosts lost 8% of requests to a starved LB (2% in the normal class).
    Returns the policy it runs under ("SCHED_RR 10", "SCHED_OTHER")."""
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(PRIORITY))
    except PermissionError:
        pass  # not root: it keeps the policy it was started with, and the report says which
    if os.sched_getscheduler(0) == os.SCHED_RR:
        return f"SCHED_RR {os.sched_getparam(0).sched_priority}"
    return "SCHED_OTHER"


def main(argv=None):
    args = parse_args(argv)
    scheduler = "SCHED_OTHER" if args.normal_priority else raise_priority()
    rows, started_at, duration, stopped_by, max_lag = asyncio.run(run(args))
    report = dict(build_report(args.url, args.rate, started_at, duration, stopped_by, max_lag, rows), scheduler=scheduler)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, separators=(",", ":"))
    if not args.quiet:
        print(summary(report))
    return 1 if args.fail_on_error and report["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
