# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
"""HTTP health checks for the modules that ask a service whether it is ready: one GET, and polling it."""

from __future__ import annotations

import time

from ansible.module_utils.six.moves import http_client

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
