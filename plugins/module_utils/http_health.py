# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
"""HTTP health checks for the modules that ask a service whether it is ready: one GET, polling it, and asking
many backends at once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.six.moves import http_client
from ansible_collections.fleet.deployer.plugins.module_utils.inputs import InputError, normalised_address

POLL_SECONDS = 0.2  # a service that has just started answers within a few polls


def get(address, path, timeout, header=None):
    """(status, the header's value or '') of one GET on a new connection; raises on a network error."""
    host, port = address.rsplit(':', 1)
    connection = http_client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        connection.request('GET', path, headers={'Connection': 'close'})
        response = connection.getresponse()
        response.read()
        return response.status, (response.getheader(header) if header else None) or ''
    finally:
        connection.close()


def poll_until_200(ask, timeout):
    """Calls ask() - which returns a tuple starting with a status - every POLL_SECONDS until the status is 200 or
    timeout seconds have passed (0: once); returns the last answer."""
    deadline = time.time() + timeout
    while True:
        answer = ask()
        if answer[0] == 200 or time.time() + POLL_SECONDS > deadline:
            return answer
        time.sleep(POLL_SECONDS)


def address_error(backends):
    """The message naming the backends ({name: address}) whose address is not host:port with a port from 1 to
    65535 (99999 would be probed as 34463); '' when there are none."""
    bad = ['%s=%r' % (name, address) for name, address in sorted(backends.items()) if not _is_address(address, name)]
    return 'backend address %s is not host:port (a port from 1 to 65535)' % ', '.join(bad) if bad else ''


def _is_address(address, name):
    try:
        normalised_address(address, name)
    except InputError:
        return False
    return True


class Probe:
    """Asks every backend at once (params: fleet.deployer.backend_probe's options); run() returns {name: answer}."""

    def __init__(self, params):
        self.params = params

    def _ask(self, answer, what, path):
        try:
            return get(answer['address'], path, self.params['timeout'], self.params['version_header'])
        except (OSError, http_client.HTTPException) as error:
            answer['error'] = '%s: %s' % (what, error)
            return None, ''

    def backend(self, backend):
        name, address = backend
        params = self.params
        answer = dict(address=address, health=None, health_version='', request=None, version='',
                      unhealthy=[], error='')
        started = time.time()
        answer['health'], answer['health_version'] = poll_until_200(
            lambda: self._ask(answer, 'health', params['health_path']), params['health_timeout'])
        if answer['health'] == 200:
            answer['error'] = ''
            if params['request_path']:
                answer['request'], answer['version'] = self._ask(answer, 'request', params['request_path'])
            for dummy in range(params['stay_healthy_seconds']):
                time.sleep(1)
                status = self._ask(answer, 'stay healthy', params['health_path'])[0]
                if status != 200:
                    answer['unhealthy'].append(str(status or answer['error']))
        answer['seconds'] = round(time.time() - started, 2)
        return name, answer

    def run(self):
        backends = self.params['backends']
        if not backends:
            return {}
        with ThreadPoolExecutor(max_workers=min(64, len(backends))) as pool:
            return dict(pool.map(self.backend, sorted(backends.items())))
