"""The built collection works where a user puts it: a new virtualenv with the controller's lock, nothing from the repo."""

import os
import re
import subprocess
import sys
import tarfile

from nginx_test_support import ANSIBLE_BIN, REPO, NginxPrefix

UPSTREAM = '''\
upstream app {
    server 10.0.0.1:8080 weight=5;  # drained by the playbook below
    server 10.0.0.2:8080;
}
'''

PLAYBOOK = '''\
---
- name: Drain a server with the installed collection
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Mark 10.0.0.1 down
      fleet.deployer.nginx_upstream:
        path: {conf}
        upstream: app
        servers:
          - address: 10.0.0.1:8080
            down: true
        test_command: {test_command}
'''


def run(command, **kwargs):
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, '%s\n%s%s' % (command, done.stdout, done.stderr)
    return done


def test_built_collection_installs_and_runs_in_a_new_virtualenv(tmp_path):
    run([str(ANSIBLE_BIN / 'ansible-galaxy'), 'collection', 'build', '--output-path', str(tmp_path), str(REPO)])
    tarball = tmp_path / 'fleet-deployer-1.0.0.tar.gz'
    with tarfile.open(tarball) as archive:
        shipped = set(archive.getnames())
    # Only what a user of the collection has: no repo ansible.cfg, no link to the checkout.
    user_dir = tmp_path / 'user'
    user_dir.mkdir()
    collections = tmp_path / 'collections'
    env = {name: value for name, value in os.environ.items() if not name.startswith('ANSIBLE_')}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='false',
               ANSIBLE_INVENTORY_UNPARSED_WARNING='false')
    venv = tmp_path / 'venv'
    run([sys.executable, '-m', 'venv', str(venv)], cwd=user_dir, env=env)
    # What docs/collection.md tells a user to install: the controller's lock, every package at its version and hash.
    run([str(venv / 'bin' / 'pip'), 'install', '--quiet', '--require-hashes', '-r', str(REPO / 'requirements.lock')],
        cwd=user_dir, env=env)
    run([str(venv / 'bin' / 'ansible-galaxy'), 'collection', 'install', '-p', str(collections), str(tarball)],
        cwd=user_dir, env=env)

    doc = run([str(venv / 'bin' / 'ansible-doc'), 'fleet.deployer.nginx_upstream'], cwd=user_dir, env=env)

    installed = collections / 'ansible_collections' / 'fleet' / 'deployer'
    assert 'MODULE fleet.deployer.nginx_upstream (%s/plugins/modules/nginx_upstream.py)' % installed in doc.stdout
    options = re.findall(r'^([-=]) (\w+) ', doc.stdout.partition('ATTRIBUTES:')[0], re.MULTILINE)
    # path, test_command, reload, reload_command, backup and lock come from the doc fragment, so it was found.
    assert options == [('-', 'backup'), ('-', 'lock'), ('=', 'path'), ('-', 'purge'), ('-', 'reload'),
                       ('-', 'reload_command'), ('-', 'servers'), ('-', 'test_command'), ('=', 'upstream')]
    assert not doc.stderr, doc.stderr

    nginx = NginxPrefix(tmp_path / 'nginx')
    nginx.conf.write_text(UPSTREAM)
    playbook = user_dir / 'drain.yml'
    playbook.write_text(PLAYBOOK.format(conf=nginx.conf, test_command=nginx.test_command))

    play = run([str(venv / 'bin' / 'ansible-playbook'), '-i', 'localhost,', '-c', 'local', str(playbook),
                '-e', 'ansible_python_interpreter=%s' % (venv / 'bin' / 'python')], cwd=user_dir, env=env)

    assert nginx.conf.read_text() == UPSTREAM.replace('weight=5;', 'weight=5 down;')
    assert re.search(r'localhost\s+: ok=1\s+changed=1\s+unreachable=0\s+failed=0', play.stdout), play.stdout
    assert {'plugins/modules/nginx_upstream.py', 'plugins/module_utils/nginx_file_edit.py', 'meta/runtime.yml',
            'roles/release/tasks/main.yml', 'README.md'} <= shipped
    assert not {name for name in shipped if name.split('/')[0] in ('app', 'lab', 'bench', 'molecule', 'tools')
                or name.startswith(('tests/unit', 'tests/integration', '.'))}
