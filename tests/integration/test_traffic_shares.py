"""Exact shares end to end: traffic_weights -> nginx_upstream -> reload -> 2,000 requests through a real Nginx."""

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nginx_test_support import NginxPrefix, RunningNginx, free_port, run_playbook

REQUESTS = 2000
BACKENDS = 5


class AnswerWithOwnAddress(BaseHTTPRequestHandler):
    def do_GET(self):
        body = ('127.0.0.1:%d' % self.server.server_address[1]).encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        """Keep 2,000 access lines out of the test output."""


class Balancer:
    """Nginx on 127.0.0.1 in front of BACKENDS tiny HTTP servers that answer with their own address."""

    def __init__(self, path):
        self.backends = [ThreadingHTTPServer(('127.0.0.1', 0), AnswerWithOwnAddress) for _ in range(BACKENDS)]
        for backend in self.backends:
            # A short poll interval lets shutdown() in stop() return at once.
            threading.Thread(target=backend.serve_forever, kwargs={'poll_interval': 0.1}, daemon=True).start()
        self.addresses = ['127.0.0.1:%d' % backend.server_address[1] for backend in self.backends]
        port = free_port()
        self.prefix = NginxPrefix(path, http_extra=(
            '    server {\n        listen 127.0.0.1:%d;\n'
            '        location / {\n            proxy_pass http://app;\n        }\n    }\n' % port))
        self.prefix.conf.write_text(
            'upstream app {\n%s}\n' % ''.join('    server %s;\n' % address for address in self.addresses))
        self.nginx = RunningNginx(self.prefix, port)

    def count_answers(self, requests):
        return Counter(self.nginx.get('/') for _ in range(requests))

    def stop(self):
        self.nginx.stop()
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
    workers_before = balancer.nginx.workers()

    results = run_playbook(tmp_path, {'weights': {
        'name': 'Give the canary its share',
        'fleet.deployer.nginx_upstream': {
            'path': str(balancer.prefix.conf),
            'upstream': 'app',
            'servers': '{{ traffic_groups | fleet.deployer.traffic_weights | fleet.deployer.upstream_servers }}',
            'test_command': balancer.prefix.test_command,
            'reload': True,
            'reload_command': balancer.nginx.reload_command,
        },
    }}, play_vars={'traffic_groups': groups})
    balancer.nginx.wait_for_reload(workers_before)
    answers = balancer.count_answers(REQUESTS)

    assert results['weights']['changed']
    assert sum(answers.values()) == REQUESTS
    for group in groups.values():
        group_percent = 100 * sum(answers[host] for host in group['hosts']) / REQUESTS
        assert group_percent == pytest.approx(group['share'], abs=1), answers
        for host in group['hosts']:
            assert 100 * answers[host] / REQUESTS == pytest.approx(group['share'] / len(group['hosts']), abs=1)
