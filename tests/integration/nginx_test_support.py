"""Run the modules the way the playbooks do: ansible-playbook on localhost, against real Nginx in temporary prefixes."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
# The ansible-playbook of the virtualenv running pytest, so both see the same ansible-core.
ANSIBLE_BIN = Path(sys.executable).parent
ANSIBLE_ENV = dict(os.environ, ANSIBLE_CONFIG=str(REPO / 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
                   ANSIBLE_LOCALHOST_WARNING='false', ANSIBLE_INVENTORY_UNPARSED_WARNING='false')

MAIN_CONF = '''\
worker_processes 1;
pid {prefix}/run/nginx.pid;
error_log stderr;
events {{
    worker_connections 256;
}}
http {{
    access_log off;
    client_body_temp_path {prefix}/run/client_body;
    proxy_temp_path {prefix}/run/proxy;
    fastcgi_temp_path {prefix}/run/fastcgi;
    uwsgi_temp_path {prefix}/run/uwsgi;
    scgi_temp_path {prefix}/run/scgi;
    include {prefix}/conf/upstreams.conf;
{http_extra}}}
'''


class NginxPrefix:
    """A throw-away Nginx prefix: conf/nginx.conf includes conf/upstreams.conf, the file the modules work on.

    What Nginx writes (pid, temporary files) goes to run/, so conf/ changes only when a module changes it.
    """

    def __init__(self, path, http_extra=''):
        assert shutil.which('nginx'), 'these tests need the nginx binary (Debian: nginx-light)'
        self.path = path
        self.conf_dir = path / 'conf'
        self.conf = self.conf_dir / 'upstreams.conf'
        self.main_conf = self.conf_dir / 'nginx.conf'
        self.conf_dir.mkdir(parents=True)
        (path / 'run').mkdir()
        self.main_conf.write_text(MAIN_CONF.format(prefix=path, http_extra=http_extra))
        self.options = '-p %s -c %s -e stderr' % (path, self.main_conf)
        self.test_command = 'nginx -t ' + self.options

    def snapshot(self):
        """What a failed task must leave as it was: every file of conf/ with its bytes, inode, mode, owner, mtime."""
        return {entry.name: (entry.read_bytes(), entry.lstat().st_ino, entry.lstat().st_mode,
                             entry.lstat().st_uid, entry.lstat().st_mtime_ns)
                for entry in sorted(self.conf_dir.iterdir())}


class _PlaybookDumper(yaml.SafeDumper):
    """Indents lists under their key, as yamllint (and so ansible-lint) wants."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def run_playbook(workdir, tasks, play_vars=None):
    """Run tasks (register name -> task) as one play on localhost and return what each task registered."""
    workdir.mkdir(exist_ok=True)
    results = workdir / 'results.json'
    everything = '{%s}' % ', '.join("'%s': %s" % (name, name) for name in tasks)
    play = {
        'name': 'Exercise the nginx modules',
        'hosts': 'localhost',
        'gather_facts': False,
        'vars': play_vars or {},
        'tasks': [dict(task, register=name) for name, task in tasks.items()] + [{
            'name': 'Hand the results to pytest',
            'ansible.builtin.copy': {'content': '{{ %s | to_json }}' % everything, 'dest': str(results),
                                     'mode': '0600'},
            'check_mode': False,
            'diff': False,
        }],
    }
    playbook = workdir / 'playbook.yml'
    playbook.write_text(yaml.dump([play], Dumper=_PlaybookDumper, explicit_start=True, sort_keys=False, width=120))
    run = subprocess.run([str(ANSIBLE_BIN / 'ansible-playbook'), '-i', 'localhost,', '-c', 'local', str(playbook)],
                         cwd=REPO, env=ANSIBLE_ENV, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(results.read_text())
