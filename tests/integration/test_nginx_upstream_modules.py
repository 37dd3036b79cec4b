"""nginx_upstream and nginx_upstream_info run through ansible-playbook, checked by a real `nginx -t`."""

import functools
import os
import subprocess
from pathlib import Path

import pytest
from http_backends import closed_port, server

from nginx_test_support import ANSIBLE_BIN, ANSIBLE_ENV, LAYOUTS, NOBODY, REPO, failure_messages, run_playbook

UPSTREAM = 'fleet.deployer.nginx_upstream'
INFO = 'fleet.deployer.nginx_upstream_info'

# A file with every syntax the module must leave alone around the block it edits.
SITE = '''\
# upstream app { server 10.9.9.9:80; }   <- a comment that looks like config
# Café: a byte that is not UTF-8 in the latin-1 variant
upstream app_v2 {
    server 10.0.0.1:8080 weight=7;
}

upstream app {
    zone app 64k;
    server 10.0.0.1:8080 weight=5 max_conns=100;  # first
    server 10.0.0.2:8080
           weight=3   # spread over lines
           max_fails=2;
    server "10.0.0.3:8080" weight=6 down;
    keepalive 32;
}

upstream app2 {
    server 10.0.0.1:8080;
}

server {
    listen 127.0.0.1:18081;
    location / {
        return 200 "upstream app { server 10.0.0.66:80; } ;";
    }
    location /quote {
        return 200 '}';
    }
}
'''

SITE_CHANGED = SITE.replace(
    'weight=5 max_conns=100;', 'weight=2 max_conns=100;').replace(
    'max_fails=2;', 'max_fails=2 down;').replace(
    '"10.0.0.3:8080" weight=6 down;', '"10.0.0.3:8080" weight=6;\n    server 10.0.0.4:8080 weight=4;')

CHANGES = [
    {'address': '10.0.0.1:8080', 'weight': 2},
    {'address': '10.0.0.2:8080', 'down': True},
    {'address': '10.0.0.3:8080', 'down': False},
    {'address': '10.0.0.4:8080', 'weight': 4},
]


def upstream_task(nginx, name='Set the servers of app', **options):
    return nginx.task(UPSTREAM, name, **dict({'upstream': 'app'}, **options))


@pytest.mark.parametrize('layout', LAYOUTS)
def test_preview_change_and_repeat_touch_only_the_changed_servers(nginx, tmp_path, layout):
    nginx.write_owned_by_nobody(layout(SITE))

    results = run_playbook(tmp_path / 'play', {
        'preview': dict(upstream_task(nginx, 'Preview', servers=CHANGES), check_mode=True, diff=True),
        'change': dict(upstream_task(nginx, 'Change', servers=CHANGES), diff=True),
        'repeat': upstream_task(nginx, 'Repeat', servers=CHANGES),
    })

    assert nginx.conf.read_bytes() == layout(SITE_CHANGED)
    assert nginx.ownership() == (NOBODY, NOBODY, 0o640)
    preview, change, repeat = results['preview'], results['change'], results['repeat']
    assert preview['changed'] and change['changed'] and not repeat['changed']
    # The change still found the original: the preview wrote nothing.
    assert change['diff']['before'] == preview['diff']['before'] == layout(SITE).decode('utf-8', 'replace')
    assert change['diff']['after'] == preview['diff']['after'] == layout(SITE_CHANGED).decode('utf-8', 'replace')
    assert preview['servers'] == change['servers'] == repeat['servers']
    assert [(server['address'], server['weight'], server['down'], server['max_fails'])
            for server in change['servers']] == [
        ('10.0.0.1:8080', 2, False, 1), ('10.0.0.2:8080', 3, True, 2),
        ('10.0.0.3:8080', 6, False, 1), ('10.0.0.4:8080', 4, False, 1)]
    assert change['servers'][0]['other_params'] == {'max_conns': '100'}
    assert 'backup_file' not in change


BLUE = '''\
upstream app {
    hash $request_uri consistent;
    zone app 64k;
    server 10.0.0.1:8080;
    server 10.0.0.2:8080 max_conns=50;
    server 10.0.0.3:8080;
    keepalive 32;
}
'''
BLUE_WITHOUT_3 = BLUE.replace('    server 10.0.0.3:8080;\n', '')
GREEN = BLUE_WITHOUT_3.replace(
    '    server 10.0.0.1:8080;\n    server 10.0.0.2:8080 max_conns=50;\n',
    '    server 10.0.1.1:8080;\n    server 10.0.1.2:8080 weight=2;\n')


def test_remove_then_swap_the_whole_set_through_a_symlink(nginx, tmp_path):
    nginx.conf.write_text(BLUE)
    link = tmp_path / 'sites-enabled-app.conf'
    link.symlink_to(nginx.conf)

    results = run_playbook(tmp_path / 'play', {
        'remove': upstream_task(nginx, 'Remove one blue server', path=str(link),
                                servers=[{'address': '10.0.0.3:8080', 'state': 'absent'}]),
        'swap': upstream_task(nginx, 'Make green live', path=str(link), purge=True, backup=True,
                              servers=[{'address': '10.0.1.1:8080'}, {'address': '10.0.1.2:8080', 'weight': 2}]),
    })

    assert nginx.conf.read_text() == GREEN
    assert link.is_symlink()
    assert results['remove']['changed'] and results['swap']['changed']
    assert [server['address'] for server in results['swap']['servers']] == ['10.0.1.1:8080', '10.0.1.2:8080']
    backup = results['swap']['backup_file']
    assert os.path.dirname(backup) == str(nginx.conf_dir)
    assert Path(backup).read_text() == BLUE_WITHOUT_3


def test_reload_runs_only_after_a_change(nginx, tmp_path):
    nginx.conf.write_text(BLUE)
    marker = tmp_path / 'reloaded'
    drain = upstream_task(nginx, 'Drain', servers=[{'address': '10.0.0.1:8080', 'down': True}],
                          reload=True, reload_command='touch %s' % marker)

    results = run_playbook(tmp_path / 'play', {
        'drain': drain,
        'marker_after_change': {'name': 'Look for the marker', 'ansible.builtin.stat': {'path': str(marker)}},
        'forget': {'name': 'Remove the marker', 'ansible.builtin.file': {'path': str(marker), 'state': 'absent'}},
        'drain_again': dict(drain, name='Drain again'),
    })

    assert results['drain']['changed'] and results['marker_after_change']['stat']['exists']
    assert not results['drain_again']['changed'] and not marker.exists()


HASHED = '''\
upstream app {
    hash $remote_addr consistent;
    server 10.0.0.1:8080;
}
'''


def test_failures_leave_the_folder_exactly_as_it_was(nginx, tmp_path):
    nginx.conf.write_text(HASHED)
    failing = functools.partial(upstream_task, nginx)

    messages = failure_messages(nginx, tmp_path / 'play', {
        'rejected': failing('Backup server under hash', backup=True, reload=True,
                            servers=[{'address': '10.0.0.2:8080', 'backup': True}]),
        'reload_fails': failing('Reload fails', backup=True, reload=True, reload_command='false',
                                servers=[{'address': '10.0.0.2:8080'}]),
        'zero_weight': failing('Weight 0', servers=[{'address': '10.0.0.1:8080', 'weight': 0}]),
        'unknown_upstream': failing('Unknown upstream', upstream='ap'),
        'no_address': failing('Server without address', servers=[{'weight': 3}]),
        'bad_address': failing('Bad address', servers=[{'address': '10.0.0.1'}]),
        'bad_timeout': failing('Bad fail_timeout', servers=[{'address': '10.0.0.1:8080', 'fail_timeout': '5 s'}]),
        'missing_file': failing('Missing file', path=str(nginx.conf_dir / 'nope.conf')),
    })

    assert messages['rejected'].startswith('The configuration test failed (%s, rc=1), so %s was put back as it was:'
                                           % (nginx.test_command, nginx.conf))
    assert 'balancing method does not support parameter "backup"' in messages['rejected']
    assert messages['reload_fails'].startswith('The reload failed (false, rc=1), so %s was put back' % nginx.conf)
    assert 'weight 0 of server 10.0.0.1:8080 is below 1' in messages['zero_weight']
    assert 'down: true' in messages['zero_weight']
    assert "no upstream named 'ap' (upstreams found: app)" in messages['unknown_upstream']
    assert 'missing required arguments: address' in messages['no_address']
    assert "server address '10.0.0.1' is not host:port" in messages['bad_address']
    assert "fail_timeout '5 s' of server 10.0.0.1:8080" in messages['bad_timeout']
    assert messages['missing_file'] == 'path %s does not exist or is not a file' % (nginx.conf_dir / 'nope.conf')


def test_info_reads_a_file_or_the_whole_nginx_dump(nginx, tmp_path):
    nginx.conf.write_text(SITE)
    info = {'name': 'Read upstreams', INFO: {'path': str(nginx.conf)}}

    results = run_playbook(tmp_path / 'play', {
        'from_file': info,
        'only_app': dict(info, check_mode=True, **{INFO: {'path': str(nginx.conf), 'upstream': 'app'}}),
        'from_dump': dict(info, **{INFO: {'dump_command': 'nginx -T ' + nginx.options}}),
        'set_by_module': dict(upstream_task(nginx, servers=[{'address': '10.0.0.1:8080'}]), check_mode=True),
        'unknown': dict(info, ignore_errors=True, **{INFO: {'path': str(nginx.conf), 'upstream': 'ap'}}),
        'dump_fails': dict(info, ignore_errors=True, **{INFO: {
            'dump_command': 'nginx -T -p %s -c %s/missing.conf -e stderr' % (nginx.path, nginx.path)}}),
    })

    from_file = results['from_file']
    assert not from_file['changed']
    assert [(upstream['name'], upstream['path'], upstream['line']) for upstream in from_file['upstreams']] == [
        ('app_v2', str(nginx.conf), 3), ('app', str(nginx.conf), 7), ('app2', str(nginx.conf), 17)]
    app = from_file['upstreams'][1]
    assert app['directives'] == ['zone app 64k', 'keepalive 32']
    assert app['servers'] == results['set_by_module']['servers']
    assert results['only_app']['upstreams'] == [app]
    assert results['from_dump']['upstreams'] == from_file['upstreams']
    assert results['unknown']['msg'] == "no upstream named 'ap' in %s" % nginx.conf
    assert results['dump_fails']['msg'].startswith('nginx -T -p %s' % nginx.path)
    assert 'missing.conf' in results['dump_fails']['msg'] and 'No such file' in results['dump_fails']['msg']


def test_info_asks_the_backends_health_and_tests_the_configuration_in_the_same_run(nginx, tmp_path):
    nginx.conf.write_text(SITE)
    httpd, address = server([200], version='1.0.0')
    gone = closed_port()
    read = {'path': str(nginx.conf), 'upstream': 'app', 'test_command': 'nginx -t ' + nginx.options}
    broken_test = 'nginx -t %s -g "bogus on;"' % nginx.options
    try:
        results = run_playbook(tmp_path / 'play', {
            'probed': {'name': 'Read and ask', INFO: dict(read, probe={'backends': {'blue1': address, 'gone1': gone}})},
            'not_asked': {'name': 'Read, no backends', INFO: dict(read, probe={'backends': {}})},
            'bad_address': {'name': 'A backend without a port', 'ignore_errors': True,
                            INFO: dict(read, probe={'backends': {'blue1': address, 'blue2': 'nowhere'}})},
            'test_fails': {'name': 'nginx -t fails, reported', INFO: dict(read, test_command=broken_test)},
            'refused': {'name': 'nginx -t fails, refused', 'ignore_errors': True,
                        INFO: dict(read, test_command=broken_test, test_must_pass=True)},
            'passes': {'name': 'nginx -t passes, must pass', INFO: dict(read, test_must_pass=True)},
        })
    finally:
        httpd.shutdown()

    probed = results['probed']
    assert not probed['changed'] and probed['config_test']['rc'] == 0
    assert [upstream['name'] for upstream in probed['upstreams']] == ['app']
    assert {key: probed['probes']['blue1'][key] for key in ('address', 'health', 'health_version', 'error')} == {
        'address': address, 'health': 200, 'health_version': '1.0.0', 'error': ''}
    assert probed['probes']['gone1']['health'] is None
    assert 'Connection refused' in probed['probes']['gone1']['error']
    assert 'probes' not in results['not_asked'] and results['not_asked']['upstreams'] == probed['upstreams']
    assert results['bad_address']['msg'] == "backend address blue2='nowhere' is not host:port (a port from 1 to 65535)"
    assert not results['test_fails'].get('failed') and results['test_fails']['config_test']['rc'] == 1
    assert 'unknown directive "bogus"' in ' '.join(results['test_fails']['config_test']['output'])
    refused = results['refused']
    assert refused['failed'] and refused['config_test']['rc'] == 1
    assert refused['msg'].startswith(broken_test + ' fails (rc=1), so no edit of this configuration could be tested: ')
    assert 'unknown directive "bogus"' in refused['msg']
    assert not results['passes'].get('failed') and results['passes']['upstreams'] == probed['upstreams']


def test_ansible_doc_renders_modules_and_filters():
    modules = subprocess.run([str(ANSIBLE_BIN / 'ansible-doc'), UPSTREAM, INFO],
                             cwd=REPO, env=ANSIBLE_ENV, capture_output=True, text=True, timeout=60)
    filters = subprocess.run([str(ANSIBLE_BIN / 'ansible-doc'), '-t', 'filter', 'fleet.deployer.traffic_weights',
                              'fleet.deployer.upstream_servers'],
                             cwd=REPO, env=ANSIBLE_ENV, capture_output=True, text=True, timeout=60)

    assert modules.returncode == 0 and not modules.stderr, modules.stderr
    assert filters.returncode == 0 and not filters.stderr, filters.stderr
    for heading in ('MODULE %s ' % UPSTREAM, 'MODULE %s ' % INFO, 'reload_command', 'dump_command'):
        assert heading in modules.stdout
    for heading in ('FILTER fleet.deployer.traffic_weights ', 'FILTER fleet.deployer.upstream_servers '):
        assert heading in filters.stdout
