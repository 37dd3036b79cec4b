"""The roles' preflights refuse, naming it, every value that would reach a unit, an env file or an Nginx file
unchecked - the reproductions of issue 26 - before any task that could change a host runs. One ansible-playbook
run on the controller: each case is an inventory host of its own whose variables hold the bad value."""

import os
import sys
from pathlib import Path

import ansible_runner
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
INJECTED_ADDRESS = '10.231.0.99:8000; } server { listen 8089; return 200 pwned; } upstream z { server 10.0.0.9:1'
COMMON = {'ansible_connection': 'local', 'app_name': 'user-api', 'app_version': '1.1.0', 'app_port': 8000,
          'app_health_path': '/healthz', 'app_artifact_dir': '/nonexistent', 'app_backend_address': '10.0.0.1:8000'}
RELEASE_CASES = {
    'env_key': ({'release_environment': {'X\nLD_PRELOAD': '/tmp/evil.so'}},
                'release_environment key="X\\nLD_PRELOAD" is not an environment variable name'),
    'address': ({'app_backend_address': INJECTED_ADDRESS}, 'app_backend_address of address="10.231.0.99:8000; } '
                                                          'server { listen 8089; return 200 pwned; } upstream z { '
                                                          'server 10.0.0.9:1" does not start with an IPv4 address'),
    'user': ({'release_user': 'app\nExecStartPre=/bin/sh'}, 'release_user="app\\nExecStartPre=/bin/sh" is not a '
                                                            'system user name'),
    'app_name': ({'app_name': 'app\nExecStartPre=/bin/sh'}, 'release_app_name="app\\nExecStartPre=/bin/sh" is not '
                                                            'a service name'),
    'args': ({'release_args': '-listen :8000\nExecStartPre=/bin/sh'}, 'release_args="-listen :8000\\nExecStartPre'),
}
LB_CASES = {
    'cookie': ({'nginx_lb_sticky_cookie': 'session-id'}, 'nginx_lb_sticky_cookie="session-id" is not a cookie name '
                                                         'Nginx can read: it becomes $cookie_session-id'),
    'port': ({'nginx_lb_listen_port': 99999}, 'nginx_lb_listen_port=99999 is out of range'),
    'timeout': ({'nginx_lb_fail_timeout': '10s; } server {'}, 'nginx_lb_fail_timeout="10s; } server {" is not an '
                                                              'Nginx time'),
}
RELEASE_CHECK = 'Check every value that goes into the unit and the env file, before anything renders'
LB_CHECK = 'Check every value that goes into the Nginx files, before anything renders'


# One play, so that a host failing (the good app host does, on its release missing here) stops no other case.
PLAYBOOK = [{'name': 'Preflights', 'hosts': 'all', 'gather_facts': False, 'tasks': [
    {'name': f'Preflight of {role}', 'ansible.builtin.include_role': {'name': f'fleet.deployer.{role}',
                                                                     'tasks_from': 'preflight'},
     'when': f"inventory_hostname in groups['{group}']"} for role, group in (('release', 'app'), ('nginx_lb', 'lb'))]}]


@pytest.fixture(scope='module')
def outcome(tmp_path_factory):
    """{host: (name of the task that failed it, its message)}, and the hosts that passed each check."""
    folder = tmp_path_factory.mktemp('preflight')
    # The good host switches to an installed release: the artifact check, which fails here, runs once for all hosts.
    release_hosts = dict({name: case for name, (case, _) in RELEASE_CASES.items()}, good={'release_use_installed': True})
    lb_hosts = dict({f'lb_{name}': case for name, (case, _) in LB_CASES.items()}, lb_good={})
    inventory = {'all': {'vars': COMMON, 'children': {
        'app': {'hosts': release_hosts},
        'lb': {'hosts': lb_hosts, 'vars': {'nginx_lb_initial_backends': ['good']}}}}}
    (folder / 'inventory.yml').write_text(yaml.safe_dump(inventory))
    (folder / 'playbook.yml').write_text(yaml.safe_dump(PLAYBOOK))
    (folder / 'runner').mkdir()
    with pytest.MonkeyPatch.context() as patch:
        # ansible-runner runs the ansible-playbook it finds on PATH: the one of this virtualenv.
        patch.setenv('PATH', '%s:%s' % (Path(sys.executable).parent, os.environ['PATH']))
        runner = ansible_runner.run(private_data_dir=str(folder / 'runner'), project_dir=str(REPO), quiet=True,
                                    playbook=str(folder / 'playbook.yml'), inventory=str(folder / 'inventory.yml'),
                                    envvars={'ANSIBLE_CONFIG': str(REPO / 'ansible.cfg')})
    failed, passed = {}, {}
    for event in runner.events:
        data = event.get('event_data', {})
        if event['event'] == 'runner_on_failed':
            failed[data['host']] = (data['task'], data['res'].get('msg', ''))
        elif event['event'] == 'runner_on_ok':
            passed.setdefault(data['task'], set()).add(data['host'])
    return failed, passed


@pytest.mark.parametrize('host, message', [(name, message) for name, (_, message) in RELEASE_CASES.items()] +
                         [(f'lb_{name}', message) for name, (_, message) in LB_CASES.items()])
def test_a_bad_value_fails_its_preflight_naming_it(outcome, host, message):
    failed, _ = outcome
    task, msg = failed[host]
    assert task in (RELEASE_CHECK, LB_CHECK) and message in msg, failed[host]
    assert msg.endswith('No host was changed.')


def test_good_values_pass_the_checks(outcome):
    _, passed = outcome
    assert 'good' in passed[RELEASE_CHECK] and 'lb_good' in passed[LB_CHECK]
