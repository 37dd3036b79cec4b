#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
# The code is the action plugin plugins/action/traffic_analysis.py; this file holds its documentation.

from __future__ import annotations


DOCUMENTATION = r"""
---
module: traffic_analysis
short_description: Judge a new version on users' traffic, from every load balancer's log or from Prometheus
description:
  - The one judgement every strategy makes of a new version - a canary step, the rolling bake after a batch, the
    blue-green bake after the switch. Every C(settings.interval_seconds) it gathers what users got since the watch
    began and judges the new side (requests answered by one of O(new)) against a reference, until the judgement
    settles.
  - The reference is what every other backend answered in the same seconds or, with O(baseline), all the traffic
    of an earlier window (the old version before the change).
  - Only users' requests are judged. A request whose side a tester chose with the canary header (logged with
    C(route) V(tester) by the nginx_lb role's Nginx) counts on neither side; a line without C(route) is a user's.
  - The samples come from the access log of every LB in O(lbs) at once (each LB reached over its own connection,
    as Ansible reaches it; the task's host is one of them), merged; or, with C(settings.provider=prometheus), from
    PromQL over the Prometheus HTTP API at C(settings.prometheus_url), by the C(instance) label.
  - C(fail) as soon as the evidence is there - the new side's error rate (counting attempts Nginx retried
    elsewhere) significantly above C(settings.max_error_rate) by a one-sided binomial test, or its p95 latency
    above max(C(settings.max_latency_ratio) x the reference p95, C(settings.latency_floor_ms)) - or, with O(share),
    when an LB sends the new side a share off by more than O(share_tolerance) points (significantly so).
  - C(pass) only after O(seconds) and C(settings.min_requests) requests on the new side. Otherwise it waits up to
    O(deadline_seconds) and returns C(not enough data) - never a pass without data. What to do with each verdict is
    the strategy's decision, not this module's.
  - Needs scipy on the controller.
version_added: 1.2.0
author:
  - Fleet deployer team (!UNKNOWN)
options:
  lbs:
    description: The load balancers (inventory hosts) whose access logs are read, all of them.
    type: list
    elements: str
    required: true
  new:
    description: The new side's backends, V(host:port) as Nginx logs them in C($upstream_addr) and as Prometheus
      labels them in C(instance).
    type: list
    elements: str
    required: true
  reference:
    description: The reference's backends - for Prometheus, which labels only what it scrapes. The LB logs count
      every backend that is not new as the reference.
    type: list
    elements: str
    default: []
  seconds:
    description: How long the traffic is watched at least before it may pass.
    type: int
    default: 10
  deadline_seconds:
    description: How long it waits for enough data before it returns C(not enough data); at least O(seconds).
    type: int
    default: 0
  baseline:
    description: An earlier window (epoch seconds) whose traffic is the reference, instead of the other backends
      in the same seconds - the old version before the change, when no old host serves any more.
    type: dict
    suboptions:
      start:
        description: The window's start.
        type: float
        required: true
      end:
        description: The window's end (excluded).
        type: float
        required: true
  share:
    description: The share of requests (percent) the LBs were asked to send to the new side; each LB's own share
      is checked against it.
    type: float
  share_tolerance:
    description: Points an LB's share may be off O(share) before the step fails naming that LB.
    type: float
    default: 1.0
  settings:
    description: The analysis settings, as the lookup C(fleet.deployer.analysis_settings) returns them from the
      C(analysis_*) variables (provider, mode, prometheus_url, interval_seconds, baseline_seconds, max_error_rate,
      max_latency_ratio, latency_floor_ms, min_requests); defaults for those missing.
    type: dict
    default: {}
  log_path:
    description:
      - The access log on every LB, one JSON object per request (the nginx_lb role's C(upstream_json)).
      - Read as bytes; a line that is not UTF-8 (a client's raw bytes in its request line) is still judged.
      - A rotated log is followed - a new file at the path, or the file cut short. The renamed file is read to its
        end while it is in the same folder and the new one is still empty (Nginx writes into it until it reopens
        its log), then the new one from its beginning.
    type: path
    default: /var/log/nginx/access.log
  lookback:
    description: When above 0, judge the last O(lookback) seconds once and return at once (a status).
    type: int
    default: 0
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Only reads.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: fleet.deployer.strategy
"""

EXAMPLES = r"""
- name: Bake the batch - the hosts updated so far against those not yet updated, on every LB's log
  fleet.deployer.traffic_analysis:
    lbs: "{{ groups['lb'] }}"
    new: [10.0.0.21:8000, 10.0.0.22:8000]
    seconds: 10
    settings: "{{ lookup('fleet.deployer.analysis_settings') }}"
  delegate_to: "{{ groups['lb'] | first }}"
  run_once: true
  register: bake
"""

RETURN = r"""
decision:
  description: C(pass), C(fail) or C(not enough data).
  returned: always
  type: str
  sample: fail
reason:
  description: The metric, both values and the threshold.
  returned: always
  type: str
  sample: "error rate 4.8% (7 of 146) is above 0.1% (binomial test p=2.1e-10 < 0.05)"
p_value:
  description: The binomial test's p-value of the new side's error rate (null before any request).
  returned: always
  type: float
new:
  description: The new side's figures - requests, errors, retried, error_rate, p95 (and p50, p99 from the logs).
  returned: always
  type: dict
reference:
  description: The reference's figures, the same way.
  returned: always
  type: dict
window:
  description: The judged window, epoch seconds (start, end).
  returned: always
  type: dict
baseline:
  description: The baseline window, when the reference came from one.
  returned: always
  type: dict
share:
  description: The share asked (configured) and the share the new side answered (observed), percent.
  returned: always
  type: dict
lbs:
  description: Per LB, its requests and how many the new side answered (from the logs).
  returned: always
  type: dict
source:
  description: C(lb_log) or C(prometheus).
  returned: always
  type: str
queries:
  description: With Prometheus, every PromQL query of the last look and its value.
  returned: always
  type: list
rules:
  description: The thresholds the judgement used.
  returned: always
  type: dict
started:
  description: Epoch seconds when the watch began.
  returned: always
  type: float
finished:
  description: Epoch seconds when it ended.
  returned: always
  type: float
"""
