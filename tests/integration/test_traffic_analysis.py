"""fleet.deployer.traffic_analysis through ansible-playbook, reading a real file over a real connection (local): the
watch that judges while lines arrive, the look back of a status, an LB off the asked share, a baseline, and the
deprecated canary_watch that redirects to it."""

import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest
import yaml

from nginx_test_support import ANSIBLE_BIN, ANSIBLE_ENV, REPO, run_playbook

NEW, OLD = '10.0.0.5:8000', '10.0.0.6:8000'
FAST = {'interval_seconds': 0.3, 'min_requests': 50}


def line(when, upstream, status=200):
    return json.dumps({'time': '-', 'msec': '%.3f' % when, 'remote': '10.0.0.1', 'request': 'GET / HTTP/1.1',
                       'status': status, 'upstream': upstream, 'upstream_status': str(status),
                       'request_time': 0.002, 'upstream_response_time': '0.002', 'version': '1.1.0'}) + '\n'


def traffic(log, seconds, every=0.004, new_share=5, errors_every=0, start=None):
    """Appends a request to `log` every `every` s for `seconds`: every (100 / new_share)th one answered by NEW, and
    of those every `errors_every`th one a 500. With `start`, writes the lines at once, dated from `start` on."""
    period = round(100 / new_share)
    with open(log, 'a', encoding='utf-8') as handle:
        for number in range(int(seconds / every)):
            when = start + number * every if start is not None else time.time()
            ours = number % period == 0
            failed = ours and errors_every and (number // period) % errors_every == 0
            handle.write(line(when, NEW if ours else OLD, 500 if failed else 200))
            handle.flush()
            if start is None:
                time.sleep(every)


def watch(tmp_path, options, load=None):
    """Runs the action on localhost while `load(log)` writes the log in a thread; returns its result."""
    log = tmp_path / 'access.log'
    log.touch()
    writer = threading.Thread(target=load, args=(log,)) if load else None
    if writer:
        writer.start()
    try:
        return run_playbook(tmp_path / 'play', {'judged': {'fleet.deployer.traffic_analysis': dict(
            {'lbs': ['localhost'], 'new': [NEW], 'log_path': str(log), 'settings': FAST}, **options)}})['judged']
    finally:
        if writer:
            writer.join()


def test_a_healthy_new_side_passes_after_its_seconds(tmp_path):
    judged = watch(tmp_path, {'seconds': 2, 'deadline_seconds': 10}, lambda log: traffic(log, 12))
    assert judged['decision'] == 'pass', judged['reason']
    assert judged['finished'] - judged['started'] >= 2
    assert judged['new']['requests'] >= 50 and judged['reference']['requests'] >= 19 * 50
    assert judged['source'] == 'lb_log' and judged['lbs']['localhost']['new'] == judged['new']['requests']


def test_errors_fail_as_soon_as_they_show(tmp_path):
    judged = watch(tmp_path, {'seconds': 30}, lambda log: traffic(log, 6, errors_every=4))
    assert judged['decision'] == 'fail' and 'error rate' in judged['reason'], judged['reason']
    assert judged['finished'] - judged['started'] < 10 and judged['p_value'] < 0.05


def test_no_traffic_is_not_enough_data_at_the_deadline(tmp_path):
    judged = watch(tmp_path, {'seconds': 1, 'deadline_seconds': 2})
    assert (judged['decision'], judged['reason']) == ('not enough data', 'not enough requests: 0 of 50')


def test_an_lb_off_the_asked_share_fails_naming_it(tmp_path):
    judged = watch(tmp_path, {'seconds': 3, 'share': 50, 'deadline_seconds': 10}, lambda log: traffic(log, 12))
    assert judged['decision'] == 'fail'
    assert re.fullmatch(r'localhost sent [0-9.]+% of its \d+ requests to the new side, not 50% \(within 1 point\)',
                        judged['reason']), judged['reason']


def test_a_baseline_is_the_reference(tmp_path):
    """Only the new side serves now; the reference is what the log held before, in the baseline window."""
    log = tmp_path / 'access.log'
    before = float(int(time.time()) - 30)  # whole seconds: the log's msec would round a fraction out of the window
    traffic(log, 20, new_share=100, start=before - 1000)  # long before the baseline: ignored
    traffic(log, 20, new_share=1, start=before)
    judged = watch(tmp_path, {'seconds': 2, 'deadline_seconds': 10, 'baseline': {'start': before, 'end': before + 20}},
                   lambda log: traffic(log, 8, new_share=100))
    assert judged['decision'] == 'pass', judged['reason']
    assert judged['reference']['requests'] == 5000 and judged['baseline'] == {'start': before, 'end': before + 20}


def test_a_raw_0xff_in_a_request_line_is_judged_not_a_traceback(tmp_path):
    """A client's invalid UTF-8 as Nginx logs it (see test_traffic_shares.py): 10 of NEW's requests are 500s with a
    raw 0xFF byte in their request line. They fail the step: neither a traceback nor lines skipped as garbled."""
    def load(log):
        traffic(log, 3, new_share=100)
        with open(log, 'ab') as handle:
            for _ in range(10):
                handle.write(line(time.time(), NEW, 500).encode().replace(b'GET / ', b'GET /caf\xff%FF '))
        traffic(log, 3, new_share=100)

    judged = watch(tmp_path, {'seconds': 30}, load)
    assert judged['decision'] == 'fail' and judged['new']['errors'] == 10, judged['reason']


def read_since_written(log):
    """Whether the watch has read `log` since it was last written: the access time (relatime) is at its change."""
    status = log.stat()
    return status.st_atime_ns >= status.st_mtime_ns


def rotate(log, how):
    """Once the watch has read `log`, rotates it `how` while NEW's requests go on; returns how many there were.
    Renamed (logrotate's create): 50 into the renamed file, which Nginx writes until it reopens its log, before
    and 50 after the new file appears, then 100 into the new one. Truncated (copytruncate): 100 into the cut file.
    Either way the log at the path holds fewer bytes than were read before, so only a rotation check finds them."""
    with open(log, 'a', encoding='utf-8') as handle:
        handle.write(''.join(line(time.time(), OLD) for _ in range(250)))
    deadline = time.monotonic() + 60  # ansible-playbook's start, on a busy machine
    while not read_since_written(log):
        assert time.monotonic() < deadline, 'the watch never read the log'
        time.sleep(0.05)
    if how == 'truncated':
        os.truncate(log, 0)
        traffic(log, 0.4, new_share=100)
        return 100
    renamed = log.with_name('access.log.1')
    log.rename(renamed)
    traffic(renamed, 0.2, new_share=100)
    time.sleep(1)  # the watch looks while there is no log at the path
    log.touch()
    time.sleep(1)  # and while the new one is empty
    traffic(renamed, 0.2, new_share=100)
    traffic(log, 0.4, new_share=100)
    return 200


@pytest.mark.parametrize('how', ['renamed', 'truncated'])
def test_a_rotated_log_is_followed(tmp_path, how):
    written = []
    judged = watch(tmp_path, {'seconds': 8, 'deadline_seconds': 20}, lambda log: written.append(rotate(log, how)))
    assert judged['decision'] == 'pass' and judged['new']['requests'] == written[0], judged


def test_a_status_looks_back_once(tmp_path):
    log = tmp_path / 'access.log'
    traffic(log, 10, start=time.time() - 10)
    judged = watch(tmp_path, {'lookback': 30})
    assert judged['decision'] == 'pass' and judged['new']['requests'] == 125
    assert judged['finished'] - judged['started'] < 2


@pytest.mark.parametrize('settings, message', [
    ({'provider': 'statsd'}, "analysis_provider='statsd' is not one of lb_log, prometheus"),
    ({'provider': 'prometheus'}, "analysis_prometheus_url='' is not an http(s) URL"),
    ({'max_error_rate': 2}, 'analysis_max_error_rate=2 must be a number above 0 and below 1'),
])
def test_bad_settings_are_refused_by_name(tmp_path, settings, message):
    (tmp_path / 'access.log').touch()
    judged = run_playbook(tmp_path / 'play', {'judged': {'fleet.deployer.traffic_analysis': {
        'new': [NEW], 'log_path': str(tmp_path / 'access.log'), 'settings': settings}, 'ignore_errors': True}})
    assert judged['judged']['failed'] and message in judged['judged']['msg']


def test_canary_watch_still_works_with_a_deprecation(tmp_path):
    log = tmp_path / 'access.log'
    traffic(log, 10, start=time.time() - 10)
    judged = run_playbook(tmp_path / 'play', {'judged': {'fleet.deployer.canary_watch': {
        'canary_addresses': [NEW], 'share': 5, 'lookback': 30, 'log_path': str(log),
        'rules': {'min_requests': 50, 'latency_floor': 0.05}}}})['judged']
    assert judged['decision'] == 'pass' and judged['rules']['min_requests'] == 50
    assert judged['rules']['latency_floor'] == 0.05
    assert any('canary_watch has been deprecated' in text for text in
               [str(item.get('msg', item)) for item in judged.get('deprecations', [])]), judged.get('deprecations')


def test_every_lb_is_read_each_over_its_own_connection(tmp_path):
    """Two LBs of an inventory (both local here, so both read the same file): the task runs on the first, the action
    connects to the second the way Ansible would - from its inventory variables only, so a variable that needs
    `hostvars` (as the lab's group_vars have) does not get in the way."""
    log = tmp_path / 'access.log'
    traffic(log, 10, start=time.time() - 10)
    inventory = tmp_path / 'hosts.yml'
    inventory.write_text(yaml.safe_dump({'all': {
        'hosts': {name: {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}
                  for name in ('lb_a', 'lb_b')},
        'vars': {'needs_hostvars': "{{ groups['all'] | map('extract', hostvars, 'ansible_connection') | list }}"}}}))
    playbook = tmp_path / 'play.yml'
    playbook.write_text(yaml.safe_dump([{'hosts': 'lb_a', 'gather_facts': False, 'tasks': [
        {'fleet.deployer.traffic_analysis': {'lbs': ['lb_a', 'lb_b'], 'new': [NEW], 'lookback': 30,
                                             'log_path': str(log), 'settings': FAST}, 'register': 'judged'},
        {'ansible.builtin.copy': {'content': '{{ judged | to_json }}', 'dest': str(tmp_path / 'judged.json'),
                                  'mode': '0600'}}]}]))
    run = subprocess.run([str(ANSIBLE_BIN / 'ansible-playbook'), '-i', str(inventory), str(playbook)], cwd=REPO,
                         env=ANSIBLE_ENV, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    judged = json.loads((tmp_path / 'judged.json').read_text())
    assert judged['lbs'] == {'lb_a': {'requests': 2500, 'new': 125}, 'lb_b': {'requests': 2500, 'new': 125}}
    assert judged['new']['requests'] == 250 and judged['decision'] == 'pass'
