#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
# The code is the action plugin plugins/action/canary_watch.py; this file holds its documentation.

from __future__ import annotations


DOCUMENTATION = r"""
---
module: canary_watch
short_description: Watch one canary step on a load balancer and judge it from the access log
description:
  - Reads, every O(interval) seconds, what Nginx logged on the task's host (delegate it to the LB) since the step
    began, splits the requests into the canary side (answered by one of O(canary_addresses)) and the stable side,
    and judges the canary against the stable side started at the same time.
  - Fails the step as soon as the evidence is there - the canary's error rate (counting attempts Nginx retried
    elsewhere) significantly above C(rules.max_error_rate) by a one-sided binomial test, or its p95 latency above
    max(C(rules.max_latency_ratio) x the stable p95, C(rules.latency_floor)).
  - Passes only after O(seconds) and at least C(rules.min_requests) canary requests; a step without enough
    requests holds until O(deadline_seconds) and then fails with "not enough requests".
  - Needs scipy on the controller.
version_added: 1.0.0
author:
  - Fleet deployer team (!UNKNOWN)
options:
  log_path:
    description: The access log, one JSON object per request (the nginx_lb role's C(upstream_json) format).
    type: path
    default: /var/log/nginx/access.log
  canary_addresses:
    description: The canary backends, V(host:port) as Nginx logs them in C($upstream_addr).
    type: list
    elements: str
    required: true
  share:
    description: The share of requests the step sends to the canary, in percent (for the report).
    type: float
    required: true
  seconds:
    description: How long the step is watched at least before it may pass.
    type: int
    default: 60
  deadline_seconds:
    description: When a step still without enough data fails.
    type: int
    default: 300
  interval:
    description: Seconds between two looks at the log.
    type: float
    default: 3.0
  lookback:
    description: When above 0, judge once the last O(lookback) seconds of the log and return at once (a status).
    type: int
    default: 0
  rules:
    description:
      - The thresholds - C(max_error_rate) (a fraction, default 0.001), C(alpha) (0.05), C(min_errors) (2),
        C(max_latency_ratio) (1.5), C(latency_floor) (seconds, 0.05), C(min_requests) (200),
        C(min_latency_samples) (50).
    type: dict
    default: {}
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Only reads the log.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: fleet.deployer.strategy
"""

EXAMPLES = r"""
- name: Watch the 5% step
  fleet.deployer.canary_watch:
    canary_addresses: [10.0.0.21:8000]
    share: 5
    seconds: 60
    rules:
      max_error_rate: 0.001
      min_requests: 200
  delegate_to: lb1
  register: step
"""

RETURN = r"""
decision:
  description: C(pass) or C(fail) (C(hold) only with O(lookback)).
  returned: always
  type: str
  sample: fail
reason:
  description: The metric, both values and the threshold.
  returned: always
  type: str
  sample: "error rate 4.8% (7 of 146) is above 0.1% (binomial test p=2.1e-10 < 0.05)"
step:
  description: The step's figures - shares configured and observed, both sides' requests, errors, p50/p95/p99.
  returned: always
  type: dict
  sample: {"share": {"configured": 5, "observed": 5.02}, "decision": "pass"}
started:
  description: Epoch seconds when the watch began.
  returned: always
  type: float
  sample: 1764230000.1
finished:
  description: Epoch seconds when it ended.
  returned: always
  type: float
  sample: 1764230060.4
"""
