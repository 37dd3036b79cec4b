"""nginx_split_clients run through ansible-playbook, checked by a real `nginx -t` and a real Nginx answering."""

import functools
import os

import pytest

from nginx_test_support import (
    LAYOUTS, NOBODY, NginxPrefix, RunningNginx, failure_messages, free_port, run_playbook,
)

SPLIT = 'fleet.deployer.nginx_split_clients'

# The canary's sticky split as the brief has it, with what the module must leave alone around it.
CANARY = '''\
# Café: a byte that is not UTF-8 in the latin-1 variant
upstream user-api-canary {
    server 127.0.0.1:18001;
}
upstream user-api-stable {
    server 127.0.0.1:18002;
}
map $cookie_uid $canary_key {
    ""      $remote_addr;
    default $cookie_uid;
}
split_clients "${canary_key}" $canary_upstream {
    5%   user-api-canary;   # first: it keeps its users as it grows
    *    user-api-stable;
}
'''
GROWN = CANARY.replace('5%   user-api-canary', '20%  user-api-canary')


def shares(canary):
    return [{'value': 'user-api-canary', 'percent': canary}, {'value': 'user-api-stable', 'percent': '*'}]


def split_task(nginx, name, **options):
    return nginx.task(SPLIT, name, **dict({'variable': '$canary_upstream'}, **options))


@pytest.mark.parametrize('layout', LAYOUTS)
def test_preview_grow_and_repeat_touch_only_the_percentage(nginx, tmp_path, layout):
    nginx.write_owned_by_nobody(layout(CANARY))

    results = run_playbook(tmp_path / 'play', {
        'read': split_task(nginx, 'Read the split', variable='canary_upstream'),
        'preview': dict(split_task(nginx, 'Preview', splits=shares(20)), check_mode=True, diff=True),
        'grow': dict(split_task(nginx, 'Grow the canary', splits=shares('20%')), diff=True),
        'repeat': split_task(nginx, 'Again', splits=shares(20.0)),
    })

    assert nginx.conf.read_bytes() == layout(GROWN)
    assert nginx.ownership() == (NOBODY, NOBODY, 0o640)
    read, preview, grow, repeat = results['read'], results['preview'], results['grow'], results['repeat']
    assert not read['changed'] and preview['changed'] and grow['changed'] and not repeat['changed']
    at_5 = [{'value': 'user-api-canary', 'percent': 5, 'share': 5},
            {'value': 'user-api-stable', 'percent': '*', 'share': 95}]
    at_20 = [{'value': 'user-api-canary', 'percent': 20, 'share': 20},
             {'value': 'user-api-stable', 'percent': '*', 'share': 80}]
    assert read['splits'] == read['previous_splits'] == at_5
    assert (grow['previous_splits'], grow['splits']) == (preview['previous_splits'], preview['splits']) == (at_5, at_20)
    assert repeat['previous_splits'] == repeat['splits'] == at_20
    # The change still found the original: the preview wrote nothing.
    assert grow['diff']['before'] == preview['diff']['before'] == layout(CANARY).decode('utf-8', 'replace')
    assert grow['diff']['after'] == preview['diff']['after'] == layout(GROWN).decode('utf-8', 'replace')
    assert 'backup_file' not in grow


def test_users_in_the_canary_stay_in_it_as_it_grows(tmp_path):
    port = free_port()
    prefix = NginxPrefix(tmp_path / 'nginx', http_extra=(
        '    server {\n        listen 127.0.0.1:%d;\n'
        '        location / {\n            return 200 $canary_upstream;\n        }\n    }\n' % port))
    prefix.conf.write_text(CANARY)
    nginx = RunningNginx(prefix, port)
    users = ['user%d' % number for number in range(2000)]

    def set_canary(percent):
        workers = nginx.workers()
        result = run_playbook(tmp_path / ('play%s' % percent), {'set': split_task(
            prefix, 'Canary at %s%%' % percent, splits=shares(percent), backup=True, reload=True,
            reload_command=nginx.reload_command)})['set']
        if result['changed']:
            nginx.wait_for_reload(workers)
        return result

    def canary_users():
        return {user for user in users
                if nginx.get('/', {'Cookie': 'uid=' + user}) == 'user-api-canary'}

    try:
        at_5 = canary_users()
        grown = set_canary(20)
        at_20 = canary_users()
        aborted = set_canary(0)
        at_0 = canary_users()
        set_canary(5)
        back_at_5 = canary_users()
    finally:
        nginx.stop()

    assert len(at_5) == pytest.approx(0.05 * len(users), abs=0.015 * len(users))
    assert len(at_20) == pytest.approx(0.20 * len(users), abs=0.015 * len(users))
    assert at_5 < at_20 and not at_0 and back_at_5 == at_5
    assert grown['changed'] and os.path.dirname(grown['backup_file']) == str(prefix.conf_dir)
    assert aborted['splits'] == [{'value': 'user-api-stable', 'percent': '*', 'share': 100}]
    # Back where it started, but for the comment that went with the canary's line at 0%.
    assert prefix.conf.read_text() == CANARY.replace('   # first: it keeps its users as it grows', '')


def test_failures_leave_the_folder_exactly_as_it_was(nginx, tmp_path):
    nginx.conf.write_text(CANARY)
    failing = functools.partial(split_task, nginx)

    messages = failure_messages(nginx, tmp_path / 'play', {
        'reload_fails': failing('Reload fails', splits=shares(20), backup=True, reload=True, reload_command='false'),
        'too_precise': failing('Three decimals', splits=shares('12.125')),
        'over_100': failing('Over 100', splits=[{'value': 'a', 'percent': 60}, {'value': 'b', 'percent': 40.5}]),
        'star_first': failing('Star first', splits=list(reversed(shares(5)))),
        'reordered': failing('Reordered', splits=[{'value': 'user-api-stable', 'percent': 95},
                                                  {'value': 'user-api-canary', 'percent': '*'}]),
        'unknown_variable': failing('Unknown variable', variable='canary', splits=shares(20)),
        'no_percent': failing('No percent', splits=[{'value': 'user-api-canary'}]),
        'missing_file': failing('Missing file', path=str(nginx.conf_dir / 'nope.conf'), splits=shares(20)),
    })
    # Someone's unfinished edit of another file that nginx.conf includes: nginx -t now fails whatever changes.
    nginx.main_conf.write_text(nginx.main_conf.read_text().replace(
        'include ', 'include %s/broken.conf;\n    include ' % nginx.path, 1))
    (nginx.path / 'broken.conf').write_text('split_clients "$x" $y {\n    5% a\n}\n')
    rejected = failure_messages(nginx, tmp_path / 'play_rejected', {
        'rejected': failing('Nginx rejects the configuration', splits=shares(20), backup=True)})['rejected']

    assert messages['reload_fails'].startswith('The reload failed (false, rc=1), so %s was put back' % nginx.conf)
    assert rejected.startswith('The configuration test failed (%s, rc=1), so %s was put back as it was:'
                               % (nginx.test_command, nginx.conf))
    assert 'broken.conf' in rejected
    refused = {
        'too_precise': "percent '12.125' of value 'user-api-canary' is not a percentage",
        'over_100': 'percentages add up to 100.5%, more than 100 (a: 60%, b: 40.5%)',
        'star_first': "value 'user-api-stable' has percent *, which only the last split can have",
        'reordered': 'in another order than the block (user-api-canary, user-api-stable)',
        'unknown_variable': "no split_clients named '$canary' (split_clients found: $canary_upstream)",
        'no_percent': 'missing required arguments: percent',
        'missing_file': 'path %s does not exist or is not a file' % (nginx.conf_dir / 'nope.conf'),
    }
    for name, reason in refused.items():
        assert reason in messages[name], messages[name]
