"""Counting the LB's access log: one JSON object per line (roles/nginx_lb/templates/nginx.conf.j2), written when
a request ends. This is what users got, whatever the playbook believed. Plain functions, tested from tables."""

from __future__ import annotations

import json
import math
import re
from collections import Counter

NO_VERSION = "none"  # the answer came from no app host (e.g. Nginx's own 502)
# What a line kept beside a report holds unless fleet runs with --keep-raw-logs: no client address, no request
# line (query strings may carry tokens).
REPORTED_FIELDS = ("msec", "status", "upstream", "upstream_status", "version", "request_time")


def parse(lines):
    """Log lines -> entries {t, status, version, upstream_status}. A line that does not decode is skipped: the
    copy may end in the middle of a line Nginx was writing."""
    entries = []
    for line in lines:
        try:
            record = json.loads(line)
            entries.append({"t": float(record["msec"]), "status": int(record["status"]),
                            "version": record.get("version") or NO_VERSION,
                            "upstream_status": record.get("upstream_status", "")})
        except (ValueError, KeyError, TypeError):
            continue
    return entries


def window_lines(lines, start, end):
    """The raw lines logged in [start, end), epoch seconds: the evidence kept beside a report."""
    return [line for line in lines if in_window(parse([line]), start, end)]


def reduced(line):
    """A log line with only the REPORTED_FIELDS (a line window_lines kept: it decodes)."""
    record = json.loads(line)
    return json.dumps({field: record[field] for field in REPORTED_FIELDS if field in record})


def in_window(entries, start, end):
    """The entries logged in [start, end), epoch seconds."""
    return [entry for entry in entries if start <= entry["t"] < end]


# Nginx separates the attempts of one request by ", " (same upstream) or " : " (another upstream) in both
# $upstream_addr and $upstream_status.
_ADDRESS_SEPARATOR = re.compile(r", | : ")


def _tried(upstream):
    """The backends $upstream_addr names, in the order Nginx tried them."""
    return [address for address in _ADDRESS_SEPARATOR.split(upstream or "") if address not in ("", "-")]


def failed_attempts(upstream, upstream_status):
    """The backends whose attempt at a request failed, in order - the one reading of an access-log line's
    $upstream_addr and $upstream_status that tests, benches and fleet share. Nginx tries the next backend only
    after a failure, so every attempt but the last failed; the last failed when its status is a 5xx or
    unreadable. "502, 200" is a request a backend failed and another one answered: the user saw 200, the drain
    did not work. "-" or "" means no attempt at all; a backend the address list does not name is "unknown"."""
    codes = [code.strip() for code in re.split(r"[,:]", upstream_status or "") if code.strip() not in ("", "-")]
    if not codes:
        return []
    tried = _tried(upstream)
    tried += ["unknown"] * (len(codes) - len(tried))
    last_failed = not codes[-1].isdigit() or int(codes[-1]) >= 500
    return tried[:len(codes) - 1] + ([tried[len(codes) - 1]] if last_failed else [])


def upstream_failures(records, excluded=()):
    """The decoded log lines with an attempt that a backend not in `excluded` failed: Nginx retried them elsewhere,
    or answered 5xx - a user's 200 hides these."""
    return [record for record in records
            if set(failed_attempts(record.get("upstream"), record.get("upstream_status"))) - set(excluded)]


def answered_by(upstream):
    """The backend that gave the answer: the last one $upstream_addr names, or None when Nginx answered itself."""
    tried = _tried(upstream)
    return tried[-1] if tried else None


def failed_attempt(upstream_status):
    """Whether any backend failed an attempt at the request (see failed_attempts)."""
    return bool(failed_attempts("", upstream_status))


def series(entries, start, end, bucket=1.0):
    """Per bucket of `bucket` seconds from start: {t, requests, versions, errors, failed_upstream}. errors are
    answers with status >= 500. Every bucket of [start, end) is there, empty ones too."""
    count = max(1, math.ceil((end - start) / bucket))
    buckets = [{"t": round(i * bucket, 3), "requests": 0, "versions": Counter(), "errors": 0, "failed_upstream": 0}
               for i in range(count)]
    for entry in in_window(entries, start, end):
        slot = buckets[min(count - 1, int((entry["t"] - start) // bucket))]
        slot["requests"] += 1
        slot["versions"][entry["version"]] += 1
        slot["errors"] += entry["status"] >= 500
        slot["failed_upstream"] += failed_attempt(entry["upstream_status"])
    return [dict(slot, versions=dict(sorted(slot["versions"].items()))) for slot in buckets]


def totals(buckets):
    """The sums of a series: {requests, versions, errors, failed_upstream}."""
    versions = Counter()
    for slot in buckets:
        versions.update(slot["versions"])
    return {"requests": sum(slot["requests"] for slot in buckets), "versions": dict(sorted(versions.items())),
            "errors": sum(slot["errors"] for slot in buckets),
            "failed_upstream": sum(slot["failed_upstream"] for slot in buckets)}


def peak_share(buckets, version, min_requests=10):
    """(share, t) of the bucket where `version` served the largest share of requests, counting only buckets with
    at least min_requests (a bucket of 2 requests says little); (None, None) when no bucket has that many."""
    best = (None, None)
    for slot in buckets:
        if slot["requests"] >= min_requests:
            share = slot["versions"].get(version, 0) / slot["requests"]
            if best[0] is None or share > best[0]:
                best = (round(share, 4), slot["t"])
    return best


def share(entries, version, start, end):
    """The share of the requests logged in [start, end) that `version` answered; None without requests."""
    window = in_window(entries, start, end)
    return round(sum(entry["version"] == version for entry in window) / len(window), 4) if window else None
