"""Exact shares end to end: traffic_weights -> nginx_upstream -> reload -> 2,000 requests through a real Nginx."""

import http.client
import socket
import subprocess
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from nginx_test_support import NginxPrefix, run_playbook

REQUESTS = 2000
BACKENDS = 5
TIMEOUT = 10  # seconds for any one wait, so a broken Nginx fails the test instead of hanging it


class AnswerWithOwnAddress(BaseHTTPRequestHandler):
    def do_GET(self):
        body = ('127.0.0.1:%d' % self.server.server_address[1]).encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        """Keep 2,000 access lines out of the test output."""


def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def wait_until(condition, what):
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, 'gave up after %ss waiting for %s' % (TIMEOUT, what)
        time.sleep(0.05)


class Balancer:
    """Nginx on 127.0.0.1 in front of BACKENDS tiny HTTP servers that answer with their own address."""

    def __init__(self, path):
        self.backends = [ThreadingHTTPServer(('127.0.0.1', 0), AnswerWithOwnAddress) for _ in range(BACKENDS)]
        for backend in self.backends:
            # A short poll interval lets shutdown() in stop() return at once.
            threading.Thread(target=backend.serve_forever, kwargs={'poll_interval': 0.1}, daemon=True).start()
        self.addresses = ['127.0.0.1:%d' % backend.server_address[1] for backend in self.backends]
        self.port = free_port()
        self.prefix = NginxPrefix(path, http_extra=(
            '    server {\n        listen 127.0.0.1:%d;\n'
            '        location / {\n            proxy_pass http://app;\n        }\n    }\n' % self.port))
        self.prefix.conf.write_text(
            'upstream app {\n%s}\n' % ''.join('    server %s;\n' % address for address in self.addresses))
        self.log = open(path / 'run' / 'nginx.log', 'wb')
        self.master = subprocess.Popen(['nginx', *self.prefix.options.split(), '-g', 'daemon off;'],
                                       stdout=self.log, stderr=self.log)
        wait_until(self._accepts, 'Nginx to listen on 127.0.0.1:%d' % self.port)

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
        """Once only new workers are left, every new connection sees the new weights."""
        wait_until(lambda: self.workers() and not self.workers() & old_workers, 'the old Nginx workers to exit')

    def count_answers(self, requests):
        answers = Counter()
        for _ in range(requests):
            connection = http.client.HTTPConnection('127.0.0.1', self.port, timeout=TIMEOUT)
            connection.request('GET', '/')
            response = connection.getresponse()
            assert response.status == 200
            answers[response.read().decode()] += 1
            connection.close()
        return answers

    def stop(self):
        self.master.terminate()
        try:
            self.master.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.master.kill()
            self.master.wait(timeout=TIMEOUT)
        self.log.close()
        for backend in self.backends:
            backend.shutdown()
            backend.server_close()


@pytest.fixture(scope='module')
def balancer(tmp_path_factory):
    running = Balancer(tmp_path_factory.mktemp('balancer'))
    yield running
    running.stop()


@pytest.mark.parametrize('canary_share, canaries', [(5, 1), (20, 2), (50, 2)])
def test_requests_follow_the_shares_set_through_the_filter(balancer, tmp_path, canary_share, canaries):
    groups = {'canary': {'share': canary_share, 'hosts': balancer.addresses[:canaries]},
              'stable': {'share': 100 - canary_share, 'hosts': balancer.addresses[canaries:]}}
    workers_before = balancer.workers()

    results = run_playbook(tmp_path, {'weights': {
        'name': 'Give the canary its share',
        'nginx_upstream': {
            'path': str(balancer.prefix.conf),
            'upstream': 'app',
            'servers': '{{ traffic_groups | traffic_weights | upstream_servers }}',
            'test_command': balancer.prefix.test_command,
            'reload': True,
            'reload_command': 'nginx -s reload ' + balancer.prefix.options,
        },
    }}, play_vars={'traffic_groups': groups})
    balancer.wait_for_reload(workers_before)
    answers = balancer.count_answers(REQUESTS)

    assert results['weights']['changed']
    assert sum(answers.values()) == REQUESTS
    for group in groups.values():
        group_percent = 100 * sum(answers[host] for host in group['hosts']) / REQUESTS
        assert group_percent == pytest.approx(group['share'], abs=1), answers
        for host in group['hosts']:
            assert 100 * answers[host] / REQUESTS == pytest.approx(group['share'] / len(group['hosts']), abs=1)
