#!/usr/bin/python
# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT

from __future__ import annotations


DOCUMENTATION = r"""
---
module: backend_probe
short_description: Ask many backends over HTTP from one host, all at once
description:
  - Run on a load balancer, asks each backend directly, the way Nginx reaches it, on a new connection per
    request; every backend is asked at the same time, so many backends cost one task and one connection to
    the host that asks.
  - For each backend it polls O(health_path) until it answers 200 (for at most O(health_timeout) seconds), then
    sends O(request_path) once, then asks O(health_path) again every second for O(stay_healthy_seconds).
  - Reports what each backend answered and never fails because of a backend; judging the answers is up to the
    caller. Changes nothing. Python standard library only.
options:
  backends:
    description: The backends to ask, each by the name its answers are reported under (an inventory host) with
      the C(host:port) to connect to.
    type: dict
    required: true
  health_path:
    description: Path that answers 200 when the backend is ready.
    type: str
    default: /healthz
  health_timeout:
    description:
      - Seconds to keep polling O(health_path) until it answers 200; V(0) asks once.
    type: float
    default: 0
  request_path:
    description: Path asked once after the health check answered 200 (a smoke request); none when not set.
    type: str
  stay_healthy_seconds:
    description: After that, ask O(health_path) once a second for this many seconds; each must answer 200.
    type: int
    default: 0
  version_header:
    description: Response header that names the version that answered.
    type: str
    default: X-App-Version
  timeout:
    description: Seconds each request may take.
    type: float
    default: 2
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only sends GET requests.
  diff_mode:
    support: none
  platform:
    platforms: posix
author:
  - Fleet deployer team (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Smoke-test every idle host from the first LB, in one task there
  fleet.deployer.backend_probe:
    backends: "{{ idle_backends }}"  # {green1: "10.0.2.1:8000", ...}
    health_timeout: 10
    request_path: /
  delegate_to: "{{ groups['lb'][0] }}"
  run_once: true
  register: probe

- name: Ask the health of two backends once
  fleet.deployer.backend_probe:
    backends:
      app1: "10.0.0.11:8000"
      app2: "10.0.0.12:8000"
"""

RETURN = r"""
answers:
  description: What each backend answered, by its name.
  returned: success
  type: dict
  sample:
    app1: {"address": "10.0.0.11:8000", "health": 200, "health_version": "1.1.0", "request": 200,
           "version": "1.1.0", "unhealthy": [], "error": "", "seconds": 0.21}
    app2: {"address": "10.0.0.12:8000", "health": null, "health_version": "", "request": null, "version": "",
           "unhealthy": [], "error": "health: [Errno 111] Connection refused", "seconds": 10.0}
  contains:
    address:
      description: The address asked.
      type: str
    health:
      description: Status of the last health answer (null when none came).
      type: int
    health_version:
      description: O(version_header) of the last health answer ('' when none).
      type: str
    request:
      description: Status of O(request_path) (null when it was not sent or no answer came).
      type: int
    version:
      description: O(version_header) of the O(request_path) answer ('' when none).
      type: str
    unhealthy:
      description: The statuses (or errors) of the O(stay_healthy_seconds) checks that did not answer 200.
      type: list
      elements: str
    error:
      description: Why the last request without an answer got none ('' when every request got one).
      type: str
    seconds:
      description: How long this backend's requests took in all.
      type: float
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fleet.deployer.plugins.module_utils.http_health import Probe, address_error


def main():
    module = AnsibleModule(
        argument_spec=dict(
            backends=dict(type='dict', required=True),
            health_path=dict(type='str', default='/healthz'),
            health_timeout=dict(type='float', default=0),
            request_path=dict(type='str'),
            stay_healthy_seconds=dict(type='int', default=0),
            version_header=dict(type='str', default='X-App-Version'),
            timeout=dict(type='float', default=2),
        ),
        supports_check_mode=True,
    )
    error = address_error(module.params['backends'])
    if error:
        module.fail_json(msg=error)
    module.exit_json(changed=False, answers=Probe(module.params).run())


if __name__ == '__main__':
    main()
