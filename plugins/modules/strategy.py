#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
# The code is the action plugin plugins/action/strategy.py; this file holds its documentation.

from __future__ import annotations


DOCUMENTATION = r"""
---
module: strategy
short_description: Decide what a release strategy does next, from the state of the fleet
description:
  - Runs on the controller. Reads the fleet from C(hostvars) - what each app host runs (the release role's
    C(release_running_version), C(release_previous_version), C(release_rolled_back)), each load balancer's
    upstream (C(nginx_lb_live_servers)) and what each host recorded (C(deploy_steps_outcome)) - and calls the
    strategy's pure decision function.
  - A decision that refuses fails the task with a message that names the bad value and says that nothing was
    changed. Nothing on any host is changed by this action.
version_added: 1.0.0
author:
  - Fleet deployer team (!UNKNOWN)
options:
  strategy:
    description: The release strategy.
    type: str
    required: true
    choices: [rolling, bluegreen, canary]
  decide:
    description:
      - V(preflight) checks the inventory and the inputs before any host is contacted (blue-green, canary).
      - V(plan) plans the run, or refuses it.
      - V(bake) says what the bake after a rolling batch judges (C(bake) - C(new), C(reference), C(baseline)),
        or what a blue-green bake's verdict (C(options.bake)) makes the run do.
      - V(batch) says whether a rolling update stops after the current batch (its bake in C(options.bake)).
      - V(gate) fails unless every idle host passed its smoke test (blue-green).
      - V(switch) says whether every LB switched (blue-green; each LB's C(__bluegreen_lb_done), the LBs in
        O(lb_hosts), the switch's start in C(options.started)); returns C(switch) - C(failure), C(seconds).
      - V(report) builds the deploy report.
    type: str
    required: true
    choices: [preflight, plan, bake, batch, gate, step, switch, report]
  options:
    description:
      - The strategy's inputs, e.g. C(version), C(batch), C(rollback), C(max_fail_percentage), C(min_in_service)
        for rolling; C(action), C(version), C(full_checks), C(health_path), C(version_header) for blue-green.
    type: dict
    default: {}
  plan:
    description: The plan an earlier V(plan) decision returned (for V(batch), V(gate) and V(report)).
    type: dict
    default: {}
  hooks:
    description: Step name to task file; each one given must be a file (relative to the playbook's folder).
    type: dict
    default: {}
  app_hosts:
    description: The app hosts to read; default the C(app) group.
    type: list
    elements: str
    default: []
  lb_hosts:
    description: The load balancers to read; default the C(lb) group.
    type: list
    elements: str
    default: []
  address_var:
    description: Host variable holding each app host's V(host:port) as the LB reaches it.
    type: str
    default: app_backend_address
  switch:
    description: For a blue-green V(report), how far the switch got - C(seconds), C(failure), C(stopped).
    type: dict
    default: {}
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Decides the same way; a blue-green plan in check mode skips the smoke tests of a deploy.
  diff_mode:
    support: none
  platform:
    platforms: all
    details: Runs on the controller only.
seealso:
  - module: fleet.deployer.nginx_upstream_info
"""

EXAMPLES = r"""
- name: Plan the rollout
  fleet.deployer.strategy:
    strategy: rolling
    decide: plan
    options:
      version: 1.1.0
      batch: 25%
  register: rollout

- name: Print the deploy report
  fleet.deployer.strategy:
    strategy: rolling
    decide: report
    plan: "{{ rollout.plan }}"
  register: rollout_report
"""

RETURN = r"""
plan:
  description: The plan (decide=plan); its keys depend on the strategy.
  returned: decide=plan
  type: dict
  sample: {"strategy": "rolling", "target": "1.1.0", "live": ["app1", "app2"], "skip": {}}
add_hosts:
  description: The hosts to put into in-memory groups, each with its own part of the plan.
  returned: decide=plan, and decide=preflight for blue-green and canary
  type: list
  elements: dict
  sample: [{"name": "app1", "groups": ["live"], "plan": {"target": "1.1.0", "skip": ""}}]
stop:
  description: Whether the rolling update stops after this batch.
  returned: decide=batch
  type: bool
  sample: false
reason:
  description: Why it stops.
  returned: decide=batch
  type: str
  sample: "batch app1: app1 failed (1 of 1, more than rolling_max_fail_percentage=0%)"
last:
  description: Whether this batch is the last one.
  returned: decide=batch
  type: bool
  sample: true
report:
  description: The deploy report - strategy, change, outcome, times, the seed's comparison rows, hosts, steps.
  returned: decide=report
  type: dict
  sample: {"strategy": "rolling update", "change": "1.0.0 -> 1.1.0", "outcome": "completed"}
text:
  description: The report as text.
  returned: decide=report
  type: str
  sample: "rolling update: 1.0.0 -> 1.1.0 - completed"
stopped:
  description: Why a rolling update stopped, empty when it did not.
  returned: decide=report and strategy=rolling
  type: str
  sample: ""
started:
  description: Epoch seconds when the run started (decide=preflight).
  returned: decide=preflight
  type: float
  sample: 1764230000.5
lb_probe:
  description:
    - What every LB asks while it reads its upstream, as O(fleet.deployer.nginx_upstream_info#module:probe) takes
      it - every app host for a break-glass rollback (from C(options.health_path) and C(options.version_header)),
      no backend otherwise.
  returned: decide=preflight and strategy=bluegreen
  type: dict
  sample: {"backends": {"blue1": "10.0.1.1:8000"}, "health_path": "/healthz", "version_header": "X-App-Version"}
"""
