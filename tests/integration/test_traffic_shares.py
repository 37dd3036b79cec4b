"""Exact shares end to end: traffic_weights -> nginx_upstream -> reload -> 2,000 requests through a real Nginx; and
who may steer a request with X-Canary, through the nginx_lb role's own nginx.conf and route file."""

import http.client
import json
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from nginx_test_support import REPO, TIMEOUT, NginxPrefix, RunningNginx, free_port, run_playbook, wait_until

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


def start_backends(count):
    """`count` tiny HTTP servers that answer with their own address, and those addresses."""
    backends = [ThreadingHTTPServer(('127.0.0.1', 0), AnswerWithOwnAddress) for _ in range(count)]
    for backend in backends:
        # A short poll interval lets shutdown() in stop() return at once.
        threading.Thread(target=backend.serve_forever, kwargs={'poll_interval': 0.1}, daemon=True).start()
    return backends, ['127.0.0.1:%d' % backend.server_address[1] for backend in backends]


def stop_backends(backends):
    for backend in backends:
        backend.shutdown()
        backend.server_close()


class Stoppable:
    """A local Nginx (self.nginx) in front of backends (self.backends) that stop together."""

    def stop(self):
        self.nginx.stop()
        stop_backends(self.backends)


class Balancer(Stoppable):
    """Nginx on 127.0.0.1 in front of BACKENDS tiny HTTP servers that answer with their own address."""

    def __init__(self, path):
        self.backends, self.addresses = start_backends(BACKENDS)
        port = free_port()
        self.prefix = NginxPrefix(path, http_extra=(
            '    server {\n        listen 127.0.0.1:%d;\n'
            '        location / {\n            proxy_pass http://app;\n        }\n    }\n' % port))
        self.prefix.conf.write_text(
            'upstream app {\n%s}\n' % ''.join('    server %s;\n' % address for address in self.addresses))
        self.nginx = RunningNginx(self.prefix, port)

    def count_answers(self, requests):
        return Counter(self.nginx.get('/') for _ in range(requests))


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


ROLE = REPO / 'roles' / 'nginx_lb'
UPSTREAMS = ('app', 'app-canary', 'app-mix')  # stable, canary, and where the users' split sends them here
TESTER, OUTSIDER = '127.0.0.2', '127.0.0.3'  # loopback addresses besides 127.0.0.1, all this host's


class RoleBalancer(Stoppable):
    """The nginx_lb role's nginx.conf and route file as Ansible renders them (its defaults, the tester TESTER), with
    the host's paths of pid and logs moved into a throw-away prefix and without the host's dynamic modules, in
    front of one backend per upstream. The
    splits are set the way the canary strategy sets them: users to app-mix, `X-Canary: always` to app-canary."""

    def __init__(self, path):
        self.backends, addresses = start_backends(len(UPSTREAMS))
        self.answerer = dict(zip(UPSTREAMS, addresses))
        self.prefix = NginxPrefix(path)
        self.log = path / 'run' / 'access.log'
        upstream_dir = path / 'upstreams'
        upstream_dir.mkdir()
        for name, address in self.answerer.items():
            (upstream_dir / f'{name}.conf').write_text(f'upstream {name} {{\n    server {address};\n}}\n')
        port = free_port()
        role_vars = dict(yaml.safe_load((ROLE / 'defaults' / 'main.yml').read_text()), app_name='app',
                         nginx_lb_hosts=[], nginx_lb_upstream_dir=str(upstream_dir), nginx_lb_listen_port=port,
                         nginx_lb_status_port=free_port(), nginx_lb_canary_tester_addresses=[TESTER])
        route = str(upstream_dir / 'app-route.conf')
        split = {'path': route, 'test_command': self.prefix.test_command}
        run_playbook(path / 'render', {
            'route': {'ansible.builtin.template': {'src': str(ROLE / 'templates' / 'route.conf.j2'), 'dest': route,
                                                   'mode': '0644'}},
            'main': {'ansible.builtin.template': {'src': str(ROLE / 'templates' / 'nginx.conf.j2'),
                                                  'dest': str(self.prefix.main_conf), 'mode': '0644'}},
            'moved': {'ansible.builtin.replace': {'path': str(self.prefix.main_conf), 'regexp': '/(run|var/log/nginx)/',
                                                  'replace': f'{path}/run/'}},
            'no_modules': {'ansible.builtin.lineinfile': {'path': str(self.prefix.main_conf), 'state': 'absent',
                                                          'regexp': '^include /etc/nginx/modules-enabled/'}},
            'users': {'fleet.deployer.nginx_split_clients': dict(split, variable='fleet_split', splits=[
                {'value': 'app-mix', 'percent': '*'}])},
            'always': {'fleet.deployer.nginx_split_clients': dict(split, variable='fleet_always', splits=[
                {'value': 'app-canary', 'percent': '*'}])},
        }, play_vars=role_vars)
        self.nginx = RunningNginx(self.prefix, port)

    def logged(self):
        """The access log's lines, as bytes."""
        return self.log.read_bytes().splitlines() if self.log.exists() else []

    def send(self, source, request):
        """Sends the raw `request` from the address `source`; returns (status, body, the log's line)."""
        lines = len(self.logged())
        with socket.create_connection(('127.0.0.1', self.nginx.port), timeout=TIMEOUT,
                                      source_address=(source, 0)) as connection:
            connection.sendall(request)
            response = http.client.HTTPResponse(connection)
            response.begin()
            body = response.read().decode()
        # Nginx logs a request once it has answered it.
        wait_until(lambda: len(self.logged()) > lines, 'the request in the access log')
        return response.status, body, self.logged()[lines]

    def ask(self, source, request):
        """Sends the raw `request` from the address `source`; returns (the upstream that answered, the log's line)."""
        _, answerer, line = self.send(source, request)
        return next(name for name, address in self.answerer.items() if address == answerer), line


@pytest.fixture(scope='module')
def role_balancer(tmp_path_factory):
    running = RoleBalancer(tmp_path_factory.mktemp('role_balancer'))
    yield running
    running.stop()


@pytest.mark.parametrize('source, choice, upstream, route', [
    ('127.0.0.1', 'always', 'app-canary', 'tester'),  # the LB itself
    (TESTER, 'always', 'app-canary', 'tester'),
    (TESTER, 'never', 'app', 'tester'),
    (TESTER, None, 'app-mix', 'user'),
    (OUTSIDER, 'always', 'app-mix', 'user'),
    (OUTSIDER, 'never', 'app-mix', 'user'),
    (OUTSIDER, None, 'app-mix', 'user'),
])
def test_x_canary_steers_only_a_testers_request_and_the_log_says_so(role_balancer, source, choice, upstream, route):
    header = b'X-Canary: %s\r\n' % choice.encode() if choice else b''
    answered, line = role_balancer.ask(source, b'GET / HTTP/1.1\r\nHost: lb\r\n%sConnection: close\r\n\r\n' % header)

    assert answered == upstream
    assert (json.loads(line)['remote'], json.loads(line)['route']) == (source, route)


@pytest.mark.parametrize('source', ['127.0.0.1', TESTER, OUTSIDER])
@pytest.mark.parametrize('path', ['/healthz', '/metrics'])
def test_the_services_health_and_metrics_are_not_served_on_the_public_port(role_balancer, source, path):
    """The LBs and the monitoring host ask each backend directly; through the LB nobody reaches them."""
    request = b'GET %s HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n' % path.encode()
    status, _, line = role_balancer.send(source, request)

    assert (status, json.loads(line)['upstream']) == (404, '')


def test_a_raw_0xff_in_the_request_line_is_logged_as_it_came_and_judged(role_balancer, tmp_path):
    """Nginx's escape=json writes a byte >= 0x80 as it is: the line is not UTF-8, yet the analysis reads it."""
    answered, line = role_balancer.ask(OUTSIDER, b'GET /caf\xff%FF HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n')

    assert answered == 'app-mix' and b'"request":"GET /caf\xff%FF HTTP/1.1"' in line
    judged = run_playbook(tmp_path, {'judged': {'fleet.deployer.traffic_analysis': {
        'new': [role_balancer.answerer['app-canary']], 'log_path': str(role_balancer.log), 'lookback': 300,
        'settings': {'min_requests': 1}}}})['judged']
    users = [json.loads(logged.decode(errors='replace')) for logged in role_balancer.logged()]
    users = [entry for entry in users if entry['route'] == 'user']
    assert judged['new']['requests'] == 0 and judged['reference']['requests'] == len(users)
