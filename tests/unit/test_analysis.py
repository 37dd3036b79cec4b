"""The traffic analysis every strategy judges with (plugins/plugin_utils/analysis.py), from access log lines as
Nginx writes them: the canary's steps are its oldest use, so the tables speak of a canary and its stable side."""

import json
import random
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy
import pytest
from ansible.errors import AnsibleError

# `make setup` links the repository in here as the collection fleet.deployer (ansible-test units has it on its path).
COLLECTIONS = Path(__file__).resolve().parents[2] / '.collections'
if COLLECTIONS.is_dir() and str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

from ansible_collections.fleet.deployer.plugins.plugin_utils import analysis as ca  # noqa: E402

T0 = 1764230000.0
CANARY = '10.89.0.5:8000'
STABLE = ['10.89.0.6:8000', '10.89.0.7:8000', '10.89.0.8:8000', '10.89.0.9:8000']


def log_line(when, upstream, status=200, upstream_status=None, request_time=0.002, version='1.1.0', msec=True,
             route=None):
    """One line exactly as the LB's log_format upstream_json (escape=json) writes it; without `route`, as it was
    written before the field existed."""
    upstreams = [upstream] if isinstance(upstream, str) else upstream
    if upstream_status is None:
        upstream_status = ', '.join(['502'] * (len(upstreams) - 1) + [str(status)])
    stamp = datetime.fromtimestamp(int(when), timezone.utc).isoformat()
    return ('{"time":"%s",%s"remote":"10.89.0.1","request":"GET / HTTP/1.1","status":%d,"upstream":"%s",'
            '"upstream_status":"%s","request_time":%.3f,"upstream_response_time":"%.3f","version":"%s"%s}') % (
        stamp, '"msec":"%.3f",' % when if msec else '', status, ', '.join(upstreams), upstream_status,
        request_time, request_time, version, ',"route":"%s"' % route if route else '')


def side(count, upstreams, latency=0.004, errors=0, start=T0, every=0.05, version='1.1.0', seed=1, added=0.0):
    """(when, line) for `count` requests answered round robin by `upstreams`, `errors` of them 500s spread evenly.

    request_time jitters between 0.5x and 1.5x `latency`, plus `added` (the service's -fault-latency), rounded to
    the millisecond like Nginx's.
    """
    upstreams = [upstreams] if isinstance(upstreams, str) else upstreams
    rng = random.Random(seed)
    rows = []
    for number in range(count):
        when = start + number * every
        failed = (number + 1) * errors // count > number * errors // count
        request_time = round(latency * rng.uniform(0.5, 1.5) + added, 3)
        rows.append((when, log_line(when, upstreams[number % len(upstreams)], 500 if failed else 200,
                                    request_time=request_time, version=version)))
    return rows


def log(*sides):
    """The sides' lines interleaved in time order, as one access log."""
    return [row[1] for row in sorted(row for rows in sides for row in rows)]


def analyse(lines, new, start=None, end=None, lb='lb1'):
    """The Window of access log lines, as one LB logged them."""
    return ca.analyse([ca.parse_line(line, lb) for line in lines], new, start, end)


def judge(window, rules=None):
    return ca.judge(window.new.figures(), window.reference.figures(), rules)


def step(canary_count, canary_latency=0.004, canary_added=0.0, canary_errors=0, stable_count=None,
         stable_latency=0.004, stable_errors=0, rules=None):
    """A step of a 5% canary over one window: 19 stable requests for each canary one unless told."""
    stable_count = 19 * canary_count if stable_count is None else stable_count
    # Both sides over the same span of time, as a weighted round robin spreads them.
    span = 60.0
    lines = log(side(canary_count, CANARY, canary_latency, canary_errors, every=span / max(canary_count, 1),
                     added=canary_added),
                side(stable_count, STABLE, stable_latency, stable_errors, every=span / max(stable_count, 1),
                     version='1.0.0', seed=2))
    window = analyse(lines, [CANARY], T0, T0 + span)
    return window, judge(window, rules)


# The verdict table: a step's traffic (see step()), the expected decision and the words the reason must hold.
# The log lines are seeded, so the figures in the reasons are exact.
VERDICTS = [
    pytest.param(dict(canary_count=250), 'pass',
                 ['error rate 0% (0 of 250) is not shown to be above 0.1% (binomial test p=1 >= 0.05)',
                  'p95 latency 6 ms is within the 50 ms floor'], id='healthy canary passes after enough requests'),
    pytest.param(dict(canary_count=146, canary_errors=7), 'fail',
                 ['error rate 4.8% (7 of 146) is above 0.1% (binomial test p=2.1e-10 < 0.05)'],
                 id='5% errors fail long before 200 requests'),
    pytest.param(dict(canary_count=40, canary_errors=2), 'fail',
                 ['error rate 5.0% (2 of 40) is above 0.1% (binomial test p=0.00076 < 0.05)'],
                 id='5% errors fail after 40 requests'),
    pytest.param(dict(canary_count=200, canary_errors=1), 'pass',
                 ['error rate 0.5% (1 of 200) is not shown to be above 0.1% (binomial test p=0.18 >= 0.05)'],
                 id='one error in 200 is not proof'),
    pytest.param(dict(canary_count=20, canary_errors=1), 'not enough data',
                 ['not enough requests: 20 of 200'], id='one error in 20 is not proof either (min_errors)'),
    pytest.param(dict(canary_count=200, canary_errors=2), 'fail',
                 ['error rate 1.0% (2 of 200) is above 0.1% (binomial test p=0.017 < 0.05)'],
                 id='two errors in 200 are'),
    pytest.param(dict(canary_count=250, canary_added=0.300), 'fail',
                 ['p95 latency 306 ms is above the limit 50 ms = max(1.5 x reference p95 6 ms, floor 50 ms)'],
                 id='+300 ms fails on latency'),
    pytest.param(dict(canary_count=60, canary_added=0.300), 'fail',
                 ['p95 latency 306 ms is above the limit 50 ms'],
                 id='latency fails before min requests once both sides have 50'),
    pytest.param(dict(canary_count=250, canary_latency=0.200, canary_added=0.300, stable_latency=0.200), 'fail',
                 ['p95 latency 589 ms is above the limit 435 ms = max(1.5 x reference p95 290 ms, floor 50 ms)'],
                 id='+300 ms on a 200 ms service fails against 1.5x its p95'),
    pytest.param(dict(canary_count=250, canary_latency=0.200, canary_added=0.100, stable_latency=0.200), 'pass',
                 ['p95 latency 389 ms is within the limit 435 ms'], id='+100 ms on a 200 ms service passes'),
    pytest.param(dict(canary_count=250, canary_latency=0.002, canary_added=0.040, stable_latency=0.002), 'pass',
                 ['p95 latency 43 ms is within the 50 ms floor'],
                 id='latency below the floor never fails, 15x stable or not'),
    pytest.param(dict(canary_count=37), 'not enough data', ['not enough requests: 37 of 200'], id='too few requests hold'),
    pytest.param(dict(canary_count=0, stable_count=500), 'not enough data', ['not enough requests: 0 of 200'],
                 id='no canary traffic holds, never passes'),
    pytest.param(dict(canary_count=250, canary_latency=0.080, stable_count=10), 'not enough data',
                 ['not enough requests to judge latency: reference 10 of 50 (new p95', 'above the 50 ms floor)'],
                 id='latency above the floor needs a stable to compare with'),
    pytest.param(dict(canary_count=250, stable_count=0), 'pass', ['within the 50 ms floor'],
                 id='below the floor needs no stable'),
]


@pytest.mark.parametrize('scenario, decision, words', VERDICTS)
def test_verdict(scenario, decision, words):
    verdict = step(**scenario)[1]

    assert verdict.decision == decision, verdict.reason
    for text in words:
        assert text in verdict.reason


def test_a_five_percent_canary_fails_after_a_few_dozen_requests():
    lines = log(side(400, CANARY, errors=20))  # 5% errors, evenly spread: the 2nd error is request 40

    first_fail = next(count for count in range(10, 401, 10)
                      if judge(analyse(lines[:count], [CANARY])).decision == 'fail')

    assert first_fail == 40


@pytest.mark.parametrize('decision, now, seconds, deadline, done', [
    ('fail', T0 + 1, 60, T0 + 300, True),             # a failure at once
    ('pass', T0 + 59, 60, T0 + 300, False),           # a pass only after the watched seconds
    ('pass', T0 + 60, 60, T0 + 300, True),
    ('not enough data', T0 + 299, 60, T0 + 300, False),  # waiting for data, up to the deadline
    ('not enough data', T0 + 300, 60, T0 + 300, True),
    ('not enough data', T0 + 10, 10, T0 + 10, True),  # a bake: its deadline is its length
])
def test_settle(decision, now, seconds, deadline, done):
    assert ca.settle(ca.Verdict(decision, 'x'), now, T0, seconds, deadline) is done


# Attribution: (upstream, upstream_status, client status) -> expected figures of each side.
# An attempt followed by another is a retry: it failed, on the side of its own backend.
ATTRIBUTION = [
    pytest.param([CANARY, STABLE[0]], '502, 200', 200,
                 dict(requests=0, errors=0, upstream_failures=1, retried=1),
                 dict(requests=1, errors=0, upstream_failures=0, retried=0), id='canary 502 hidden by a stable retry'),
    pytest.param([STABLE[0], CANARY], '502, 200', 200,
                 dict(requests=1, errors=0, upstream_failures=0, retried=0),
                 dict(requests=0, errors=0, upstream_failures=1, retried=1), id='stable 502, canary answered'),
    pytest.param([CANARY, STABLE[0], STABLE[1]], '504, 502, 502', 502,
                 dict(requests=0, errors=0, upstream_failures=1, retried=1),
                 dict(requests=1, errors=1, upstream_failures=2, retried=1), id='three tries, all failed'),
    pytest.param([CANARY], '500', 500,
                 dict(requests=1, errors=1, upstream_failures=1, retried=0),
                 dict(requests=0, errors=0, upstream_failures=0, retried=0), id='canary 500 not retried'),
    pytest.param(['user_api'], '502', 502,
                 dict(requests=0, errors=0, upstream_failures=0, retried=0),
                 dict(requests=1, errors=1, upstream_failures=1, retried=0), id='no live upstream is stable'),
    pytest.param('-', '-', 499,
                 dict(requests=0, errors=0, upstream_failures=0, retried=0),
                 dict(requests=1, errors=0, upstream_failures=0, retried=0), id='no upstream at all is stable'),
    pytest.param('%s : %s' % (CANARY, STABLE[0]), '502 : 200', 200,
                 dict(requests=0, errors=0, upstream_failures=1, retried=1),
                 dict(requests=1, errors=0, upstream_failures=0, retried=0), id='groups after an internal redirect'),
]


@pytest.mark.parametrize('upstream, upstream_status, status, canary, stable', ATTRIBUTION)
def test_attribution(upstream, upstream_status, status, canary, stable):
    window = analyse([log_line(T0, upstream, status, upstream_status)], [CANARY])

    for name, expected in (('new', canary), ('reference', stable)):
        stats = getattr(window, name)
        assert {key: getattr(stats, key) for key in expected} == expected, name


def test_a_canary_that_fails_behind_retries_fails_the_step():
    # Every canary attempt is a 502 that Nginx retries on stable: the clients see only 200s.
    retried = [(T0 + n, log_line(T0 + n, [CANARY, STABLE[n % 4]], 200, '502, 200')) for n in range(30)]
    window = analyse(log(retried, side(570, STABLE, version='1.0.0')), [CANARY])

    verdict = judge(window)

    assert (window.new.requests, window.reference.errors) == (0, 0)
    assert (verdict.decision, verdict.reason) == ('fail', 'error rate 100.0% (30 of 30, 30 of them retried '
                                                          'elsewhere) is above 0.1% (binomial test p=1e-90 < 0.05)')


@pytest.mark.parametrize('canary', [['10.89.0.5'], '10.89.0.5:8000', {'10.89.0.5:8000', '10.89.0.99:8000'}])
def test_canary_backends_by_address_or_host(canary):
    window = analyse(log(side(3, CANARY), side(7, STABLE)), canary)

    assert (window.new.requests, window.reference.requests) == (3, 7)


GOOD = log_line(T0, CANARY)


@pytest.mark.parametrize('bad', [
    '', '   ', '\n', 'not json', GOOD[:40], '[1, 2]', 'null', '{}',
    GOOD.replace('"status":200', '"status":"abc"'),
    GOOD.replace('"status":200', '"status":true'),
    GOOD.replace('"request_time":0.002', '"request_time":NaN'),
    GOOD.replace('"request_time":0.002', '"request_time":-1'),
    GOOD.replace('"msec":"%.3f"' % T0, '"msec":"soon"'),
    GOOD.replace('"msec":"%.3f",' % T0, '').replace('2025-11-27T07:53:20+00:00', 'yesterday'),
    b'\xff\xfe{"status":200}',
])
def test_garbled_lines_are_skipped_and_counted(bad):
    window = analyse([GOOD, bad, GOOD], [CANARY])

    assert (window.skipped, window.new.requests) == (1, 2)


@pytest.mark.parametrize('route, tester', [(None, False), ('user', False), ('tester', True), ('other', False)])
def test_only_the_tester_route_marks_a_tester(route, tester):
    assert ca.parse_line(log_line(T0, CANARY, route=route)).tester is tester


def requests_from_testers(count, latency=0.002, every=0.003):
    """Requests a tester sent to the canary (X-Canary: always), as the LB logs them."""
    return [log_line(T0 + number * every, CANARY, request_time=latency, route='tester') for number in range(count)]


@pytest.mark.parametrize('canary_count, canary_errors, tester_lines, decision, as_users', [
    pytest.param(200, 10, requests_from_testers(20000), 'fail', 'pass',
                 id='fast 200s do not pass a canary with 5% errors'),
    pytest.param(250, 0, requests_from_testers(300, latency=1.0, every=0.2), 'pass', 'fail',
                 id='slow requests do not fail a healthy canary'),
])
def test_testers_requests_are_judged_on_neither_side(canary_count, canary_errors, tester_lines, decision, as_users):
    users = log(side(canary_count, CANARY, errors=canary_errors), side(19 * canary_count, STABLE, seed=2))
    window = analyse(users + tester_lines, [CANARY])

    assert window.testers == len(tester_lines)
    assert window.by_lb == {'lb1': {'requests': 20 * canary_count, 'new': canary_count}}
    assert judge(window) == judge(analyse(users, [CANARY])) and judge(window).decision == decision
    # the finding: had the LB logged them as users', the testers would have turned the verdict
    as_users_lines = [line.replace('"route":"tester"', '"route":"user"') for line in tester_lines]
    assert judge(analyse(users + as_users_lines, [CANARY])).decision == as_users


def test_a_garbled_log_is_not_enough_data_not_a_traceback():
    window = analyse(['\x00' * 50, 'GET / HTTP/1.1" 200', '{"status":', ''] * 50, [CANARY])

    assert window.skipped == 200 and window.new.requests == 0
    assert judge(window).decision == 'not enough data'


@pytest.mark.parametrize('when, inside', [
    (T0 - 0.001, False), (T0, True), (T0 + 9.999, True), (T0 + 10, False),
])
def test_window_is_start_inclusive_end_exclusive(when, inside):
    window = analyse([log_line(when, CANARY)], [CANARY], T0, T0 + 10)

    assert (window.new.requests, window.outside) == ((1, 0) if inside else (0, 1))


@pytest.mark.parametrize('start, end, requests', [(None, None, 20), (T0 + 5, None, 15), (None, T0 + 5, 5)])
def test_open_windows(start, end, requests):
    window = analyse(log(side(20, CANARY, every=1.0)), [CANARY], start, end)

    assert window.new.requests == requests


def test_without_msec_the_iso_time_places_the_line():
    lines = [log_line(T0 + 0.9, CANARY, msec=False), log_line(T0 + 1.2, CANARY, msec=False)]

    window = analyse(lines, [CANARY], T0, T0 + 1)  # second resolution: both stamps are whole seconds

    assert (window.new.requests, window.outside) == (1, 1)


@pytest.mark.parametrize('canary_count, stable_count, share', [(50, 950, 5.0), (200, 800, 20.0), (1, 2, 33.33),
                                                               (0, 10, 0.0), (0, 0, None)])
def test_observed_share(canary_count, stable_count, share):
    window = analyse(log(side(canary_count, CANARY), side(stable_count, STABLE)), [CANARY])

    assert window.observed_share == (None if share is None else pytest.approx(share, abs=0.01))


def test_summary_is_json_and_names_both_sides():
    window, verdict = step(canary_count=146, canary_errors=7)

    summary = json.loads(json.dumps(ca.summary(T0, T0 + 60, window.new.summary(), window.reference.summary(), verdict,
                                               ca.Rules(), 'lb_log', 5, window.observed_share, window.by_lb)))

    assert summary['share'] == {'configured': 5, 'observed': 5.0}
    assert summary['new']['requests'] == 146 and summary['new']['errors'] == 7
    assert summary['new']['error_rate'] == pytest.approx(7 / 146, abs=1e-6)
    assert summary['reference']['requests'] == 146 * 19 and summary['reference']['error_rate'] == 0
    assert set(summary['new']) >= {'p50', 'p95', 'p99', 'upstream_failures'}
    assert summary['decision'] == 'fail' and summary['reason'] == verdict.reason
    assert summary['p_value'] == pytest.approx(2.1e-10, rel=0.05) and summary['source'] == 'lb_log'
    assert summary['lbs'] == {'lb1': {'requests': 146 * 20, 'new': 146}}
    assert summary['rules']['max_error_rate'] == 0.001


@pytest.mark.parametrize('latencies', [[0.004], [0.001, 0.009], [0.001 * n for n in range(1, 1001)],
                                       numpy.random.default_rng(3).exponential(0.005, 777).round(3).tolist()])
def test_percentiles_match_numpy_default(latencies):
    stats = ca.SideStats(requests=len(latencies), latencies=latencies)

    assert list(stats.percentiles().values()) == pytest.approx(numpy.percentile(latencies, [50, 95, 99]))


def test_no_latency_data_has_no_percentiles():
    assert ca.SideStats().summary()['p95'] is None


@pytest.mark.parametrize('rules', [dict(max_error_rate=0), dict(max_error_rate=1.5), dict(alpha=1),
                                   dict(min_requests=-1), dict(latency_floor=-0.1)])
def test_rules_refuse_nonsense(rules):
    with pytest.raises(ValueError, match=next(iter(rules))):
        ca.Rules(**rules)


def test_rules_change_the_thresholds():
    verdict = step(canary_count=37, rules=ca.Rules(min_requests=30, min_latency_samples=30))[1]

    assert verdict.decision == 'pass'


def test_without_scipy_judging_says_what_is_missing(monkeypatch):
    monkeypatch.setattr(ca, 'HAS_SCIPY', False)
    monkeypatch.setattr(ca, 'SCIPY_IMPORT_ERROR', ImportError("No module named 'scipy'"))

    with pytest.raises(AnsibleError, match='needs the Python library scipy'):
        ca.judge(ca.Figures(), ca.Figures())


# ---- the settings every strategy shares (analysis_*) --------------------------------------------------------

def test_settings_default_to_the_documented_values():
    settings, deprecated = ca.settings_from({})
    assert settings == ca.SETTINGS and deprecated == []
    assert ca.rules_of(settings) == ca.Rules()


@pytest.mark.parametrize('given, expected', [
    ({'analysis_max_error_rate': '0.01'}, {'max_error_rate': 0.01}),
    ({'analysis_min_requests': '300', 'analysis_latency_floor_ms': 100}, {'min_requests': 300, 'latency_floor_ms': 100}),
    ({'analysis_min_requests': 200.0}, {'min_requests': 200}),
    ({'analysis_provider': 'prometheus', 'analysis_prometheus_url': 'http://10.0.0.9:9090'},
     {'provider': 'prometheus', 'prometheus_url': 'http://10.0.0.9:9090'}),
    ({'analysis_mode': 'dry_run'}, {'mode': 'dry_run'}),
])
def test_settings_read_the_analysis_variables(given, expected):
    settings, _ = ca.settings_from(given)
    assert {name: settings[name] for name in expected} == expected


def test_the_canary_names_still_work_with_a_deprecation_and_lose_to_the_new_ones():
    settings, deprecated = ca.settings_from({'canary_min_requests': 20, 'canary_max_error_rate': 0.01,
                                             'analysis_max_error_rate': 0.02})
    assert (settings['min_requests'], settings['max_error_rate']) == (20, 0.02)
    assert deprecated == ['canary_max_error_rate is deprecated: use analysis_max_error_rate (read by every strategy)',
                          'canary_min_requests is deprecated: use analysis_min_requests (read by every strategy)']


@pytest.mark.parametrize('given, message', [
    ({'analysis_provider': 'statsd'}, "analysis_provider='statsd' is not one of lb_log, prometheus"),
    ({'analysis_mode': 'enforced'}, "analysis_mode='enforced' is not one of enforce, dry_run"),
    ({'analysis_provider': 'prometheus'}, "analysis_prometheus_url='' is not an http(s) URL"),
    ({'analysis_provider': 'prometheus', 'analysis_prometheus_url': 'http://x:9090/"; rm -rf /'},
     'is not an http(s) URL'),
    ({'analysis_max_error_rate': 'abc'}, "analysis_max_error_rate='abc' must be a number above 0 and below 1"),
    ({'analysis_max_error_rate': 1}, 'analysis_max_error_rate=1 must be a number above 0 and below 1'),
    ({'analysis_min_requests': 0}, 'analysis_min_requests=0 must be a whole number 1 or more'),
    ({'analysis_min_requests': 10.5}, 'analysis_min_requests=10.5 must be a whole number 1 or more'),
    ({'analysis_interval_seconds': 0}, 'analysis_interval_seconds=0 must be a number above 0'),
    ({'analysis_latency_floor_ms': -1}, 'analysis_latency_floor_ms=-1 must be a number 0 or more'),
    ({'analysis_max_latency_ratio': True}, 'analysis_max_latency_ratio=True must be a number above 0'),
    ({'analysis_baseline_seconds': 'nan'}, "analysis_baseline_seconds='nan' must be a whole number 1 or more"),
])
def test_bad_settings_are_refused_by_name(given, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ca.settings_from(given)


def test_unknown_settings_are_named():
    with pytest.raises(ValueError, match='unknown analysis settings: max_errors'):
        ca.checked_settings({'max_errors': 1})


# ---- every LB's share ------------------------------------------------------------------------------------

@pytest.mark.parametrize('by_lb, share, drifting', [
    ({'lb1': {'requests': 4000, 'new': 200}, 'lb2': {'requests': 4000, 'new': 201}}, 5, []),
    ({'lb1': {'requests': 4000, 'new': 200}, 'lb2': {'requests': 4000, 'new': 0}}, 5, [('lb2', 0.0, 4000)]),
    ({'lb1': {'requests': 4000, 'new': 800}}, 5, [('lb1', 20.0, 4000)]),
    ({'lb1': {'requests': 20, 'new': 2}}, 5, []),          # 10% of 20 requests is noise, not drift
    ({'lb1': {'requests': 0, 'new': 0}}, 5, []),           # an LB that carried nothing says nothing
    ({'lb1': {'requests': 10000, 'new': 5110}}, 50, []),   # 51.1%: off by more than a point, but not significantly
])
def test_drifting_lbs(by_lb, share, drifting):
    assert ca.drifting_lbs(by_lb, share) == drifting


def test_an_lb_that_drifts_fails_the_verdict_naming_it():
    verdict = ca.share_verdict(ca.Verdict('pass', 'fine'), {'lb2': {'requests': 3000, 'new': 0}}, 5, 1.0)
    assert (verdict.decision, verdict.reason) == ('fail', 'lb2 sent 0% of its 3000 requests to the new side, not 5% '
                                                          '(within 1 point)')


def test_a_baseline_window_counts_every_request_as_the_reference():
    lines = log(side(100, CANARY, start=T0), side(300, STABLE, start=T0))
    window = analyse(lines, (), T0, T0 + 60)
    assert (window.new.requests, window.reference.requests) == (0, 400)
