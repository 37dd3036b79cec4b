"""Run the modules the way the playbooks do: ansible-playbook on localhost, against real Nginx in temporary prefixes."""

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
# The ansible-playbook of the virtualenv running pytest, so both see the same ansible-core.
ANSIBLE_BIN = Path(sys.executable).parent
ANSIBLE_ENV = dict(os.environ, ANSIBLE_CONFIG=str(REPO / 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
                   ANSIBLE_LOCALHOST_WARNING='false', ANSIBLE_INVENTORY_UNPARSED_WARNING='false')
TIMEOUT = 10  # seconds for any one wait, so a broken Nginx fails the test instead of hanging it

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


NOBODY = 65534


def lf_spaces_utf8(text):
    return text.encode()


def crlf_tabs_latin1(text):
    return text.replace('    ', '\t').replace('\n', '\r\n').encode('latin-1')


# Every file layout the modules must keep as they find it.
LAYOUTS = [lf_spaces_utf8, crlf_tabs_latin1]


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

    def task(self, module, name, **options):
        """A task of module on the file of this prefix, checked by this prefix's nginx -t."""
        return {'name': name, module: dict({'path': str(self.conf), 'test_command': self.test_command}, **options)}

    def write_owned_by_nobody(self, data):
        """Write the file the modules edit, with an owner and a mode that a change must keep."""
        self.conf.write_bytes(data)
        os.chown(self.conf, NOBODY, NOBODY)
        self.conf.chmod(0o640)

    def ownership(self):
        stat = self.conf.stat()
        return stat.st_uid, stat.st_gid, stat.st_mode & 0o777

    def snapshot(self):
        """What a failed task must leave as it was: every file of conf/ with its bytes, inode, mode, owner, mtime."""
        return {entry.name: (entry.read_bytes(), entry.lstat().st_ino, entry.lstat().st_mode,
                             entry.lstat().st_uid, entry.lstat().st_mtime_ns)
                for entry in sorted(self.conf_dir.iterdir())}


def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def wait_until(condition, what):
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, 'gave up after %ss waiting for %s' % (TIMEOUT, what)
        time.sleep(0.05)


class RunningNginx:
    """The Nginx of a prefix running in the foreground of a child process, listening on 127.0.0.1:port."""

    def __init__(self, prefix, port):
        self.prefix = prefix
        self.port = port
        self.reload_command = 'nginx -s reload ' + prefix.options
        self.log = open(prefix.path / 'run' / 'nginx.log', 'wb')
        self.master = subprocess.Popen(['nginx', *prefix.options.split(), '-g', 'daemon off;'],
                                       stdout=self.log, stderr=self.log)
        wait_until(self._accepts, 'Nginx to listen on 127.0.0.1:%d' % port)

    def _accepts(self):
        assert self.master.poll() is None, 'Nginx exited: %s' % Path(self.log.name).read_text()
        try:
            socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def workers(self):
        """Pids of the master's children, read from /proc."""
        children = set()
        for stat in Path('/proc').glob('[0-9]*/stat'):
            try:
                parent = int(stat.read_text().rsplit(')', 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # the process ended while we looked
            if parent == self.master.pid:
                children.add(int(stat.parent.name))
        return children

    def wait_for_reload(self, old_workers):
        """Once only new workers are left, every new connection sees the new configuration."""
        wait_until(lambda: self.workers() and not self.workers() & old_workers, 'the old Nginx workers to exit')

    def get(self, path, headers=None):
        """The body of a 200 answer to GET path, on a new connection."""
        connection = http.client.HTTPConnection('127.0.0.1', self.port, timeout=TIMEOUT)
        try:
            connection.request('GET', path, headers=headers or {})
            response = connection.getresponse()
            body = response.read().decode()
            assert response.status == 200, (response.status, body)
            return body
        finally:
            connection.close()

    def stop(self):
        self.master.terminate()
        try:
            self.master.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.master.kill()
            self.master.wait(timeout=TIMEOUT)
        self.log.close()


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


def failure_messages(nginx, workdir, tasks):
    """Run tasks that must each fail and leave nginx's conf/ folder exactly as it was; return their messages."""
    before = nginx.snapshot()
    results = run_playbook(workdir, {name: dict(task, ignore_errors=True) for name, task in tasks.items()})
    assert nginx.snapshot() == before
    assert all(result['failed'] for result in results.values()), results
    return {name: result['msg'] for name, result in results.items()}
