# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleet.deployer contributors
# MIT License (see https://opensource.org/licenses/MIT)
# Controller side only: the canary strategy's judgement, pure functions over the LB's JSON access log.

"""Judge a canary step from the load balancer's access log: go on (``pass``), wait (``hold``) or abort (``fail``).

Flow: ``analyse(lines, canary_addresses, start, end)`` -> a ``Window`` with ``SideStats`` for the canary and the
stable side; ``judge(window.canary, window.stable, Rules())`` -> a ``Verdict``; ``at_deadline(verdict, now,
deadline)`` turns a step still waiting after its deadline into a failure; ``step_summary(...)`` is the report.

Units: times are epoch seconds, latencies seconds, error rates fractions (0.001 is 0.1%), traffic shares percent
(as the ``traffic_weights`` filter takes them).
"""

from __future__ import annotations

import json
import math
import re
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ansible.errors import AnsibleError

try:
    from scipy.stats import binomtest
except ImportError as exc:  # the import sanity test and a controller without scipy still load this file
    binomtest = None
    SCIPY_IMPORT_ERROR = exc
else:
    SCIPY_IMPORT_ERROR = None

HAS_SCIPY = SCIPY_IMPORT_ERROR is None

DECISIONS = ('pass', 'hold', 'fail')

# $upstream_addr and $upstream_status list one entry per attempt, separated by ", "; a " : " starts the entries of
# another upstream group after an internal redirect. A bare ':' is part of an address (host:port), never a separator.
_ATTEMPT_SEPARATOR = re.compile(r'\s*,\s*|\s+:\s+')


@dataclass(frozen=True)
class Record:
    """One request of the access log: when it ended, what the client got and which backends Nginx tried."""

    when: float
    status: int
    request_time: float
    attempts: tuple = ()  # (address, status or None) per backend tried, in order: the last one answered
    version: str = ''


@dataclass
class SideStats:
    """What one side (canary or stable) did in a window."""

    requests: int = 0  # requests this side answered (the last upstream tried was one of its backends)
    errors: int = 0  # of those, answered 5xx to the client
    upstream_failures: int = 0  # attempts on this side's backends that failed: status >= 500 or followed by a retry
    retried: int = 0  # of those, attempts Nginx retried elsewhere, so the client never saw them fail
    latencies: list = field(default_factory=list)  # request_time of each answered request

    @property
    def attempts(self):
        """Requests answered plus attempts retried away: everything this side was asked to do."""
        return self.requests + self.retried

    @property
    def failed(self):
        """Errors the client saw plus failures a retry hid: a canary must not pass because Nginx covered for it."""
        return self.errors + self.retried

    @property
    def error_rate(self):
        return self.failed / self.attempts if self.attempts else None

    def percentiles(self):
        """{'p50', 'p95', 'p99'} of request_time in seconds (None without data).

        statistics.quantiles from the standard library: no extra dependency for a sort and 99 cut points, and its
        'inclusive' method is the same linear interpolation as numpy.percentile's default.
        """
        if not self.latencies:
            return {'p50': None, 'p95': None, 'p99': None}
        if len(self.latencies) == 1:  # Python 3.11's quantiles() wants at least two points
            cuts = self.latencies * 99
        else:
            cuts = statistics.quantiles(self.latencies, n=100, method='inclusive')
        return {'p50': cuts[49], 'p95': cuts[94], 'p99': cuts[98]}

    def summary(self):
        """JSON-able figures for the report (latencies rounded to the millisecond, as Nginx logs them)."""
        rate = self.error_rate
        result = {'requests': self.requests, 'errors': self.errors, 'upstream_failures': self.upstream_failures,
                  'retried': self.retried, 'error_rate': None if rate is None else round(rate, 6)}
        result.update((name, None if value is None else round(value, 3)) for name, value in self.percentiles().items())
        return result


@dataclass
class Window:
    """Both sides' stats over [start, end), and what was left out."""

    canary: SideStats
    stable: SideStats
    start: float | None = None
    end: float | None = None
    skipped: int = 0  # blank or garbled lines
    outside: int = 0  # good lines outside the window

    @property
    def observed_share(self):
        """Percent of the window's requests the canary answered (None when there were none)."""
        total = self.canary.requests + self.stable.requests
        return 100.0 * self.canary.requests / total if total else None


@dataclass(frozen=True)
class Rules:
    """What a canary step must show. The defaults are the seed's 0.1% error rate and common canary practice."""

    max_error_rate: float = 0.001
    alpha: float = 0.05  # fail on error rate when the binomial test's p-value is below this
    # The exact test alone fails one error in the first ~50 requests (1 of 20: p=0.02 against 0.1%), yet one 5xx
    # is often a one-off. Two errors are needed; a 5% canary still has them after a few dozen requests.
    min_errors: int = 2
    max_latency_ratio: float = 1.5  # canary p95 at most this times the stable p95...
    latency_floor: float = 0.050  # ...but a p95 up to this many seconds is never counted as worse
    min_requests: int = 200  # canary requests before a step may pass
    min_latency_samples: int = 50  # requests on each side before latency is judged

    def __post_init__(self):
        for name in ('max_error_rate', 'alpha'):
            if not 0 < getattr(self, name) < 1:
                raise ValueError('canary rules: %s is %r, not between 0 and 1' % (name, getattr(self, name)))
        for name in ('min_errors', 'min_requests', 'min_latency_samples', 'max_latency_ratio', 'latency_floor'):
            if getattr(self, name) < 0:
                raise ValueError('canary rules: %s is %r, not a number >= 0' % (name, getattr(self, name)))


@dataclass(frozen=True)
class Verdict:
    decision: str  # one of DECISIONS
    reason: str  # names the metric, both values and the threshold


def _number(value, kind):
    # Nginx quotes some numbers ("msec"); bool is an int in Python and NaN a float, but neither is a number here.
    number = kind(value) if not isinstance(value, bool) else None
    if number is None or not math.isfinite(number) or number < 0:
        raise ValueError(value)
    return number


def _when(entry):
    if entry.get('msec') not in (None, ''):
        return _number(entry['msec'], float)  # millisecond resolution: windows are a few seconds long
    when = datetime.fromisoformat(entry['time'])
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def _attempts(text):
    text = (text or '').strip()
    return [] if text in ('', '-') else _ATTEMPT_SEPARATOR.split(text)


def _attempt_status(text):
    return int(text) if text.isdigit() else None  # '-' when Nginx got no status line


def _pair_attempts(addresses, statuses):
    # Both lists should be as long; if not, pair them from the end, where the attempt that answered is.
    statuses = [None] * (len(addresses) - len(statuses)) + statuses[len(statuses) - len(addresses):]
    return tuple(zip(addresses, statuses))


def parse_line(line):
    """One access log line -> a Record, or None for a blank or garbled line (never an exception)."""
    if isinstance(line, bytes):
        line = line.decode('utf-8', errors='replace')
    try:
        entry = json.loads(line)
        if not isinstance(entry, dict):
            return None
        statuses = [_attempt_status(status) for status in _attempts(str(entry.get('upstream_status', '')))]
        return Record(when=_when(entry), status=_number(entry['status'], int),
                      request_time=_number(entry['request_time'], float),
                      attempts=_pair_attempts(_attempts(entry.get('upstream')), statuses),
                      version=str(entry.get('version') or ''))
    except (ValueError, TypeError, KeyError):  # json.JSONDecodeError is a ValueError
        return None


def side_of(address, canary_addresses):
    """'canary' when the address is a canary backend, given as host:port or as its host alone; else 'stable'."""
    if address and (address in canary_addresses or address.rpartition(':')[0] in canary_addresses):
        return 'canary'
    return 'stable'


def analyse(lines, canary_addresses, start=None, end=None):
    """Access log lines -> a Window over [start, end) (epoch seconds; None leaves that end open).

    A request belongs to the side of the backend that answered it; each failed attempt before it (a retry) counts
    against the side of the backend that failed, so a canary's 502s stay the canary's even when stable answered.
    """
    if isinstance(canary_addresses, str):
        canary_addresses = [canary_addresses]
    canary_addresses = frozenset(canary_addresses)
    window = Window(canary=SideStats(), stable=SideStats(), start=start, end=end)
    for line in lines:
        record = parse_line(line)
        if record is None:
            window.skipped += 1
            continue
        if (start is not None and record.when < start) or (end is not None and record.when >= end):
            window.outside += 1
            continue
        for number, (address, status) in enumerate(record.attempts, start=1):
            stats = getattr(window, side_of(address, canary_addresses))
            if number < len(record.attempts):  # Nginx tries the next backend only after a failure
                stats.retried += 1
                stats.upstream_failures += 1
            elif status is not None and status >= 500:
                stats.upstream_failures += 1
        answered = record.attempts[-1][0] if record.attempts else None
        stats = getattr(window, side_of(answered, canary_addresses))
        stats.requests += 1
        stats.errors += record.status >= 500
        stats.latencies.append(record.request_time)
    return window


def _percent(fraction):
    value = 100 * fraction
    return ('%.1f%%' if value >= 1 else '%.2g%%') % value


def _ms(seconds):
    return '%.0f ms' % (1000 * seconds)


def _require_scipy():
    if not HAS_SCIPY:
        raise AnsibleError('canary analysis needs the Python library scipy on the controller (pip install scipy; '
                           'pinned in requirements.txt): %s' % SCIPY_IMPORT_ERROR)


def _error_check(canary, rules):
    """(failed?, text) for the canary's error rate, or None before it has done anything."""
    if not canary.attempts:
        return None
    # One-sided exact test of H0 "rate <= max_error_rate": it weighs the sample size, so 7 errors in 146 fail
    # (p=2e-10) while 1 in 200 does not (p=0.18).
    p_value = binomtest(canary.failed, canary.attempts, rules.max_error_rate, alternative='greater').pvalue
    hidden = ', %d of them retried elsewhere' % canary.retried if canary.retried else ''
    text = 'error rate %s (%d of %d%s)' % (_percent(canary.error_rate), canary.failed, canary.attempts, hidden)
    test = 'binomial test p=%.2g' % p_value
    if p_value < rules.alpha and canary.failed >= rules.min_errors:
        return True, '%s is above %s (%s < %s)' % (text, _percent(rules.max_error_rate), test, rules.alpha)
    if p_value < rules.alpha:
        return False, '%s is not proof yet (%s, but fewer than %d errors)' % (text, test, rules.min_errors)
    return False, '%s is not shown to be above %s (%s >= %s)' % (
        text, _percent(rules.max_error_rate), test, rules.alpha)


def _latency_check(canary, stable, rules):
    """('fail' | 'hold' | 'pass', text) for the canary's p95 latency, or None before it has enough samples."""
    if len(canary.latencies) < rules.min_latency_samples:
        return None
    canary_p95 = canary.percentiles()['p95']
    if canary_p95 <= rules.latency_floor:
        return 'pass', 'p95 latency %s is within the %s floor' % (_ms(canary_p95), _ms(rules.latency_floor))
    if len(stable.latencies) < rules.min_latency_samples:  # above the floor, but nothing to compare it with
        return 'hold', 'not enough requests to judge latency: stable %d of %d (canary p95 %s is above the %s floor)' % (
            len(stable.latencies), rules.min_latency_samples, _ms(canary_p95), _ms(rules.latency_floor))
    stable_p95 = stable.percentiles()['p95']
    limit = max(rules.max_latency_ratio * stable_p95, rules.latency_floor)
    outcome, where = ('fail', 'above') if canary_p95 > limit else ('pass', 'within')
    return outcome, 'p95 latency %s is %s the limit %s = max(%g x stable p95 %s, floor %s)' % (
        _ms(canary_p95), where, _ms(limit), rules.max_latency_ratio, _ms(stable_p95), _ms(rules.latency_floor))


def judge(canary, stable, rules=None):
    """Canary and stable SideStats -> Verdict. Fails as soon as the evidence is there, passes only with enough data."""
    _require_scipy()
    rules = rules or Rules()
    checks = []
    errors = _error_check(canary, rules)
    if errors:
        if errors[0]:
            return Verdict('fail', errors[1])
        checks.append(errors[1])
    latency = _latency_check(canary, stable, rules)
    if latency and latency[0] == 'fail':
        return Verdict('fail', latency[1])
    if canary.requests < rules.min_requests:  # no data is not good news
        return Verdict('hold', 'not enough requests: %d of %d' % (canary.requests, rules.min_requests))
    if latency is None:  # only when min_latency_samples is above min_requests
        return Verdict('hold', 'not enough requests to judge latency: canary %d of %d' % (
            len(canary.latencies), rules.min_latency_samples))
    if latency[0] == 'hold':
        return Verdict('hold', latency[1])
    return Verdict('pass', '; '.join(checks + [latency[1]]))


def at_deadline(verdict, now, deadline):
    """A step still on hold once its deadline (epoch seconds) has come fails: waiting for data cannot go on forever."""
    if verdict.decision == 'hold' and deadline is not None and now >= deadline:
        return Verdict('fail', '%s when the step deadline passed' % verdict.reason)
    return verdict


def step_summary(window, verdict, configured_share, step=None):
    """The report of one step (JSON-able): shares configured and observed, both sides' figures, decision and why."""
    observed = window.observed_share
    return {
        'step': step,
        'window': {'start': window.start, 'end': window.end},
        'share': {'configured': configured_share, 'observed': None if observed is None else round(observed, 2)},
        'canary': window.canary.summary(),
        'stable': window.stable.summary(),
        'lines': {'skipped': window.skipped, 'outside_window': window.outside},
        'decision': verdict.decision,
        'reason': verdict.reason,
    }
