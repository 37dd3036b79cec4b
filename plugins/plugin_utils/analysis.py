# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleet.deployer contributors
# MIT License (see https://opensource.org/licenses/MIT)
# Controller side only: the judgement every strategy makes of a new version on users' traffic. Pure functions.

"""Judge a new version against a reference on users' traffic: ``pass``, ``fail`` or ``not enough data``.

Every strategy asks the same question over the same kind of window:
- a canary step: the canary hosts (new) against the stable hosts (reference), in the same seconds;
- a rolling bake: the hosts updated so far against those not yet updated, in the same seconds - or, once no old
  host serves, against the old version's traffic before the rollout's first change (a baseline);
- a blue-green bake: the new colour against the old colour's traffic before the switch (a baseline).

Flow: ``parse_line`` every LB's access log line into a ``Record`` (tagged with its LB), ``analyse(records,
new_addresses, start, end)`` -> a ``Window`` with the ``SideStats`` of both sides and each LB's counts (testers'
requests left out: they chose their side), or
``Figures`` straight from Prometheus; ``judge(new, reference, Rules())`` -> a ``Verdict`` with its numbers;
``settle`` says when a watch may stop; ``drifting_lbs`` names an LB whose share is off.

Units: times are epoch seconds, latencies seconds, error rates fractions (0.001 is 0.1%), traffic shares percent.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from dataclasses import asdict, dataclass, field
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

PASS, FAIL, NO_DATA = 'pass', 'fail', 'not enough data'
PROVIDERS = ('lb_log', 'prometheus')
MODES = ('enforce', 'dry_run')

# $upstream_addr and $upstream_status list one entry per attempt, separated by ", "; a " : " starts the entries of
# another upstream group after an internal redirect. A bare ':' is part of an address (host:port), never a separator.
_ATTEMPT_SEPARATOR = re.compile(r'\s*,\s*|\s+:\s+')
# The access log's `route` of a request whose side a tester chose with the canary header (nginx_lb's nginx.conf);
# every other request is a user's, also in lines logged before the field existed.
TESTER_ROUTE = 'tester'


@dataclass(frozen=True)
class Record:
    """One request of an access log: when it ended, what the client got, which backends Nginx tried, which LB."""

    when: float
    status: int
    request_time: float
    attempts: tuple = ()  # (address, status or None) per backend tried, in order: the last one answered
    version: str = ''
    lb: str = ''
    tester: bool = False  # its side was chosen, not split: never judged


@dataclass
class Figures:
    """What a side did, in the terms the judgement uses - from the access log (SideStats) or from Prometheus."""

    requests: int = 0  # requests this side answered
    errors: int = 0  # of those, answered 5xx to the client
    retried: int = 0  # attempts on this side that failed and that Nginx retried elsewhere (the client never saw)
    p95: float | None = None  # seconds
    latency_samples: int = 0  # how many requests the p95 stands on

    @property
    def attempts(self):
        """Requests answered plus attempts retried away: everything this side was asked to do."""
        return self.requests + self.retried

    @property
    def failed(self):
        """Errors the client saw plus failures a retry hid: a new version must not pass because Nginx covered it."""
        return self.errors + self.retried

    @property
    def error_rate(self):
        return self.failed / self.attempts if self.attempts else None

    def summary(self):
        rate = self.error_rate
        return {'requests': self.requests, 'errors': self.errors, 'retried': self.retried,
                'error_rate': None if rate is None else round(rate, 6),
                'p95': None if self.p95 is None else round(self.p95, 3)}


@dataclass
class SideStats:
    """What one side did in a window of the access log."""

    requests: int = 0
    errors: int = 0
    upstream_failures: int = 0  # attempts on this side's backends that failed: status >= 500 or followed by a retry
    retried: int = 0
    latencies: list = field(default_factory=list)  # request_time of each answered request

    def percentiles(self):
        """{'p50', 'p95', 'p99'} of request_time in seconds (None without data).

        statistics.quantiles from the standard library: its 'inclusive' method is the same linear interpolation as
        numpy.percentile's default.
        """
        if not self.latencies:
            return {'p50': None, 'p95': None, 'p99': None}
        if len(self.latencies) == 1:  # Python 3.11's quantiles() wants at least two points
            cuts = self.latencies * 99
        else:
            cuts = statistics.quantiles(self.latencies, n=100, method='inclusive')
        return {'p50': cuts[49], 'p95': cuts[94], 'p99': cuts[98]}

    def figures(self):
        return Figures(requests=self.requests, errors=self.errors, retried=self.retried,
                       p95=self.percentiles()['p95'], latency_samples=len(self.latencies))

    def summary(self):
        """JSON-able figures for the report (latencies rounded to the millisecond, as Nginx logs them)."""
        result = dict(self.figures().summary(), upstream_failures=self.upstream_failures)
        result.update((name, None if value is None else round(value, 3)) for name, value in self.percentiles().items())
        return result


@dataclass
class Window:
    """Both sides' stats over [start, end), each LB's counts, and what was left out."""

    new: SideStats
    reference: SideStats
    start: float | None = None
    end: float | None = None
    by_lb: dict = field(default_factory=dict)  # lb -> {'requests': n, 'new': m}
    skipped: int = 0  # blank or garbled lines
    outside: int = 0  # good lines outside the window
    testers: int = 0  # testers' requests in the window, left out

    @property
    def observed_share(self):
        """Percent of the window's requests the new side answered (None when there were none)."""
        total = self.new.requests + self.reference.requests
        return 100.0 * self.new.requests / total if total else None


@dataclass(frozen=True)
class Rules:
    """What a new version must show. The defaults are the seed's 0.1% error rate and common canary practice."""

    max_error_rate: float = 0.001
    alpha: float = 0.05  # fail on error rate when the binomial test's p-value is below this
    # The exact test alone fails one error in the first ~50 requests (1 of 20: p=0.02 against 0.1%), yet one 5xx
    # is often a one-off. Two errors are needed; a 5% canary still has them after a few dozen requests.
    min_errors: int = 2
    max_latency_ratio: float = 1.5  # new p95 at most this times the reference p95...
    latency_floor: float = 0.050  # ...but a p95 up to this many seconds is never counted as worse
    min_requests: int = 200  # requests on the new side before it may pass
    min_latency_samples: int = 50  # requests on each side before latency is judged

    def __post_init__(self):
        for name in ('max_error_rate', 'alpha'):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 1:
                raise ValueError('%s=%r is not a number between 0 and 1' % (name, value))
        for name in ('min_errors', 'min_requests', 'min_latency_samples', 'max_latency_ratio', 'latency_floor'):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value) or value < 0:
                raise ValueError('%s=%r is not a number >= 0' % (name, value))

    def summary(self):
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    decision: str  # PASS, FAIL or NO_DATA
    reason: str  # names the metric, both values and the threshold
    p_value: float | None = None


# ---- the settings: analysis_* for every strategy -----------------------------------------------------------------

# analysis_<name> -> its default. One vocabulary for the three strategies; the lookup analysis_settings reads them.
SETTINGS = {
    "provider": "lb_log",            # where the samples come from: the LBs' access logs, or Prometheus
    "mode": "enforce",               # dry_run: judge and report what would happen, change nothing because of it
    "prometheus_url": "",            # the Prometheus server's HTTP API, for provider prometheus
    "interval_seconds": 1,           # seconds between two looks at the traffic
    "baseline_seconds": 60,          # seconds of the old version's traffic a baseline takes, before the change
    "max_error_rate": 0.001,         # the new version's error rate must not be shown to be above this
    "max_latency_ratio": 1.5,        # its p95 at most this times the reference's...
    "latency_floor_ms": 50,          # ...and never judged worse up to this p95
    "min_requests": 200,             # requests on the new side before it may pass
}
# The canary's names of the same settings, kept for one release (a deprecation warning when they are used).
ALIASES = {"canary_max_error_rate": "max_error_rate", "canary_max_latency_ratio": "max_latency_ratio",
           "canary_latency_floor_ms": "latency_floor_ms", "canary_min_requests": "min_requests",
           "canary_interval_seconds": "interval_seconds"}
_URL = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~/\-]*)?$")


def _positive(value, name, kind=float, low=0.0, high=None, low_open=False):
    try:
        number = None if isinstance(value, bool) else float(str(value))
    except ValueError:
        number = None
    if kind is int and number is not None:  # 200, "200" and 200.0 are whole; 200.5 is not
        number = int(number) if math.isfinite(number) and number.is_integer() else None
    if number is None or not math.isfinite(number) or number < low or (low_open and number == low) or \
            (high is not None and number >= high):
        bounds = f"above {low:g}" if low_open else f"{low:g} or more"
        raise ValueError(f"analysis_{name}={value!r} must be a {'whole ' if kind is int else ''}number {bounds}"
                         + (f" and below {high:g}" if high is not None else ""))
    return number


def checked_settings(given):
    """The analysis settings with defaults filled in, each checked, or a ValueError naming the bad one. `given`
    holds the names without their analysis_ prefix."""
    unknown = sorted(set(given) - set(SETTINGS))
    if unknown:
        raise ValueError(f"unknown analysis settings: {', '.join(unknown)} (known: {', '.join(SETTINGS)})")
    settings = dict(SETTINGS, **given)
    for name, choices in (("provider", PROVIDERS), ("mode", MODES)):
        if settings[name] not in choices:
            raise ValueError(f"analysis_{name}={settings[name]!r} is not one of {', '.join(choices)}")
    url = str(settings["prometheus_url"] or "")
    if settings["provider"] == "prometheus" and not _URL.match(url):
        raise ValueError(f"analysis_prometheus_url={url!r} is not an http(s) URL, and analysis_provider=prometheus "
                         "needs one")
    checks = {"interval_seconds": dict(low_open=True), "baseline_seconds": dict(kind=int, low=1),
              "max_error_rate": dict(low_open=True, high=1), "max_latency_ratio": dict(low_open=True),
              "latency_floor_ms": {}, "min_requests": dict(kind=int, low=1)}
    settings.update({name: _positive(settings[name], name, **check) for name, check in checks.items()})
    return settings


def settings_from(variables):
    """(settings, deprecation messages) from a play's variables: analysis_* names, else the canary's old ones."""
    given, deprecated = {}, []
    for alias, name in ALIASES.items():
        if alias in variables:
            given[name] = variables[alias]
            deprecated.append(f"{alias} is deprecated: use analysis_{name} (read by every strategy)")
    given.update({name: variables[f"analysis_{name}"] for name in SETTINGS if f"analysis_{name}" in variables})
    return checked_settings(given), deprecated


def rules_of(settings):
    """The Rules a strategy's settings ask for."""
    return Rules(max_error_rate=settings["max_error_rate"], max_latency_ratio=settings["max_latency_ratio"],
                 latency_floor=settings["latency_floor_ms"] / 1000.0, min_requests=settings["min_requests"])


# ---- reading the access log -----------------------------------------------------------------------------------

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


def parse_line(line, lb=''):
    """One access log line (bytes as read, or text) -> a Record, or None for a blank or garbled line (never an
    exception)."""
    if isinstance(line, bytes):
        # Nginx's escape=json writes a request's bytes >= 0x80 as they came: a client's invalid UTF-8 becomes
        # U+FFFD, never a surrogate that a later encode would choke on.
        line = line.decode('utf-8', errors='replace')
    try:
        entry = json.loads(line)
        if not isinstance(entry, dict):
            return None
        statuses = [_attempt_status(status) for status in _attempts(str(entry.get('upstream_status', '')))]
        return Record(when=_when(entry), status=_number(entry['status'], int),
                      request_time=_number(entry['request_time'], float),
                      attempts=_pair_attempts(_attempts(entry.get('upstream')), statuses),
                      version=str(entry.get('version') or ''), lb=lb, tester=entry.get('route') == TESTER_ROUTE)
    except (ValueError, TypeError, KeyError):  # json.JSONDecodeError is a ValueError
        return None


def is_new(address, new_addresses):
    """Whether the backend that answered is on the new side, given as host:port or as its host alone."""
    return bool(address) and (address in new_addresses or address.rpartition(':')[0] in new_addresses)


def analyse(records, new_addresses, start=None, end=None):
    """Records (None for a garbled line) -> a Window over [start, end) (epoch seconds; None leaves that end open).

    A request belongs to the side of the backend that answered it; each failed attempt before it (a retry) counts
    against the side of the backend that failed, so a new version's 502s stay its own even when the old one
    answered. With no new addresses every request is the reference's: a baseline. A tester's request is counted
    apart and judged on neither side: testers choose their side, so their traffic says nothing of users'.
    """
    new_addresses = frozenset([new_addresses] if isinstance(new_addresses, str) else new_addresses)
    window = Window(new=SideStats(), reference=SideStats(), start=start, end=end)
    for record in records:
        if record is None:
            window.skipped += 1
            continue
        if (start is not None and record.when < start) or (end is not None and record.when >= end):
            window.outside += 1
            continue
        if record.tester:
            window.testers += 1
            continue
        for number, (address, status) in enumerate(record.attempts, start=1):
            stats = window.new if is_new(address, new_addresses) else window.reference
            if number < len(record.attempts):  # Nginx tries the next backend only after a failure
                stats.retried += 1
                stats.upstream_failures += 1
            elif status is not None and status >= 500:
                stats.upstream_failures += 1
        answered_new = bool(record.attempts) and is_new(record.attempts[-1][0], new_addresses)
        stats = window.new if answered_new else window.reference
        stats.requests += 1
        stats.errors += record.status >= 500
        stats.latencies.append(record.request_time)
        counts = window.by_lb.setdefault(record.lb, {'requests': 0, 'new': 0})
        counts['requests'] += 1
        counts['new'] += answered_new
    return window


# ---- the judgement -----------------------------------------------------------------------------------------------

def _percent(fraction):
    value = 100 * fraction
    return ('%.1f%%' if value >= 1 else '%.2g%%') % value


def _ms(seconds):
    return '%.0f ms' % (1000 * seconds)


def _require_scipy():
    if not HAS_SCIPY:
        raise AnsibleError('the traffic analysis needs the Python library scipy on the controller (pinned in '
                           'requirements.txt): %s' % SCIPY_IMPORT_ERROR)


def _error_check(new, rules):
    """(failed?, text, p-value) for the new side's error rate, or None before it has done anything."""
    if not new.attempts:
        return None
    # One-sided exact test of H0 "rate <= max_error_rate": it weighs the sample size, so 7 errors in 146 fail
    # (p=2e-10) while 1 in 200 does not (p=0.18).
    p_value = float(binomtest(new.failed, new.attempts, rules.max_error_rate, alternative="greater").pvalue)
    hidden = ', %d of them retried elsewhere' % new.retried if new.retried else ''
    text = 'error rate %s (%d of %d%s)' % (_percent(new.error_rate), new.failed, new.attempts, hidden)
    test = 'binomial test p=%.2g' % p_value
    if p_value < rules.alpha and new.failed >= rules.min_errors:
        return True, '%s is above %s (%s < %s)' % (text, _percent(rules.max_error_rate), test, rules.alpha), p_value
    if p_value < rules.alpha:
        return False, '%s is not proof yet (%s, but fewer than %d errors)' % (text, test, rules.min_errors), p_value
    return False, '%s is not shown to be above %s (%s >= %s)' % (
        text, _percent(rules.max_error_rate), test, rules.alpha), p_value


def _latency_check(new, reference, rules):
    """(decision, text) for the new side's p95 latency, or None before it has enough samples."""
    if new.latency_samples < rules.min_latency_samples or new.p95 is None:
        return None
    if new.p95 <= rules.latency_floor:
        return PASS, 'p95 latency %s is within the %s floor' % (_ms(new.p95), _ms(rules.latency_floor))
    if reference.latency_samples < rules.min_latency_samples or reference.p95 is None:
        return NO_DATA, 'not enough requests to judge latency: reference %d of %d (new p95 %s is above the %s ' \
                        'floor)' % (reference.latency_samples, rules.min_latency_samples, _ms(new.p95),
                                    _ms(rules.latency_floor))
    limit = max(rules.max_latency_ratio * reference.p95, rules.latency_floor)
    outcome, where = (FAIL, 'above') if new.p95 > limit else (PASS, 'within')
    return outcome, 'p95 latency %s is %s the limit %s = max(%g x reference p95 %s, floor %s)' % (
        _ms(new.p95), where, _ms(limit), rules.max_latency_ratio, _ms(reference.p95), _ms(rules.latency_floor))


def judge(new, reference, rules=None):
    """The new side's and the reference's Figures -> Verdict. Fails as soon as the evidence is there; passes only
    with enough data; no data is never good news."""
    _require_scipy()
    rules = rules or Rules()
    checks, p_value = [], None
    errors = _error_check(new, rules)
    if errors:
        failed, text, p_value = errors
        if failed:
            return Verdict(FAIL, text, p_value)
        checks.append(text)
    latency = _latency_check(new, reference, rules)
    if latency and latency[0] == FAIL:
        return Verdict(FAIL, latency[1], p_value)
    if new.requests < rules.min_requests:
        return Verdict(NO_DATA, 'not enough requests: %d of %d' % (new.requests, rules.min_requests), p_value)
    if latency is None:  # only when min_latency_samples is above min_requests
        return Verdict(NO_DATA, 'not enough requests to judge latency: new %d of %d' % (
            new.latency_samples, rules.min_latency_samples), p_value)
    if latency[0] == NO_DATA:
        return Verdict(NO_DATA, latency[1], p_value)
    return Verdict(PASS, '; '.join(checks + [latency[1]]), p_value)


def settle(verdict, now, started, seconds, deadline):
    """Whether a watch that began at `started` may stop now with this verdict: a fail at once; a pass once it was
    watched `seconds`; anything at its deadline (the verdict as it stands: not enough data stays that)."""
    if verdict.decision == FAIL:
        return True
    if verdict.decision == PASS and now - started >= seconds:
        return True
    return now >= deadline


def drifting_lbs(by_lb, share, tolerance=1.0, alpha=0.001):
    """The LBs whose share of requests to the new side is off the asked `share` (%) by more than `tolerance` points,
    and significantly so (binomial test p < alpha): noise in a short window never aborts a step, an LB that was
    not given the new weights or splits does. Returns [(lb, observed %, requests)]."""
    _require_scipy()
    drifting = []
    for lb, counts in sorted(by_lb.items()):
        if not counts['requests']:
            continue
        observed = 100.0 * counts['new'] / counts['requests']
        if abs(observed - share) > tolerance and \
                binomtest(counts['new'], counts['requests'], min(max(share / 100.0, 1e-9), 1 - 1e-9)).pvalue < alpha:
            drifting.append((lb, round(observed, 2), counts['requests']))
    return drifting


def share_verdict(verdict, by_lb, share, tolerance):
    """A verdict that fails when an LB drifts from the asked share (see drifting_lbs), naming it."""
    drifting = drifting_lbs(by_lb, share, tolerance)
    if not drifting:
        return verdict
    named = "; ".join(f"{lb} sent {observed:g}% of its {requests} requests to the new side" for lb, observed, requests
                      in drifting)
    return Verdict(FAIL, f"{named}, not {share:g}% (within {tolerance:g} point)", verdict.p_value)


def summary(window_start, window_end, new, reference, verdict, rules, source, configured_share=None,
            observed_share=None, by_lb=None, baseline=None, queries=None):
    """The record of one judgement (JSON-able): window, both sides' figures, p-value, rules, source, verdict."""
    return {
        'window': {'start': window_start, 'end': window_end},
        'baseline': baseline,
        'source': source,
        'new': new.summary() if isinstance(new, Figures) else new,
        'reference': reference.summary() if isinstance(reference, Figures) else reference,
        'share': {'configured': configured_share,
                  'observed': None if observed_share is None else round(observed_share, 2)},
        'lbs': by_lb or {},
        'p_value': verdict.p_value,
        'rules': rules.summary(),
        'queries': queries or [],
        'decision': verdict.decision,
        'reason': verdict.reason,
    }
