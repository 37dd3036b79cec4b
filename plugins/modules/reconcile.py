#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
# The code is the action plugin plugins/action/reconcile.py; this file holds its documentation.

from __future__ import annotations


DOCUMENTATION = r"""
---
module: reconcile
short_description: Decide which upstream servers go back into rotation and which go out
description:
  - Runs on the controller, once for all load balancers, after each LB asked its upstream's servers for their
    health (M(fleet.deployer.backend_probe), registered as O(probes_var) on each LB host).
  - The expected release of an app host is the one its C(current) link points to (the host variable named by
    O(release_var); unset when the host could not be read). A host is in line when its LB got a 200 from its
    health check, answered with that version; it then belongs in rotation. A host that gives no
    answer, an error or another version belongs out of it. A healthy host whose release could not be read is
    left as it is, and so is a server that is no app host of the inventory.
  - Refuses, naming the numbers and each host's reason, when taking hosts out would leave fewer than
    O(min_in_service) servers of an LB in rotation. It refuses before any LB changes. Nothing on any host is
    changed by this action.
version_added: 1.1.0
author:
  - Fleet deployer team (!UNKNOWN)
options:
  lb_hosts:
    description: The load balancers to reconcile; each has C(nginx_lb_live_servers) and the probe results.
    type: list
    elements: str
    required: true
  app_hosts:
    description: The app hosts that may be in the upstreams; default the C(app) group.
    type: list
    elements: str
    default: []
  address_var:
    description: Host variable holding each app host's V(host:port) as the LB reaches it.
    type: str
    default: app_backend_address
  probes_var:
    description: Variable of each LB host holding the registered result of M(fleet.deployer.backend_probe).
    type: str
    required: true
  release_var:
    description: Variable of each app host holding the release its C(current) link points to.
    type: str
    default: release_current_version
  min_in_service:
    description: Servers of each LB kept in rotation, a count (1 or more) or a percentage of its servers.
    type: raw
    default: 1
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Decides the same way; its report lines say "would go in" and "would go out".
  diff_mode:
    support: none
  platform:
    platforms: all
    details: Runs on the controller only.
seealso:
  - module: fleet.deployer.backend_probe
  - module: fleet.deployer.nginx_upstream
"""

EXAMPLES = r"""
- name: Decide what goes in and what goes out, on every LB
  fleet.deployer.reconcile:
    lb_hosts: "{{ ansible_play_hosts }}"
    probes_var: backend_health
  run_once: true
  register: decided
"""

RETURN = r"""
changes:
  description: For each LB, the servers whose C(down) flag changes, in the shape M(fleet.deployer.nginx_upstream) takes.
  returned: success
  type: dict
  sample: {"lb1": [{"address": "10.0.0.11:8000", "down": false}]}
rows:
  description: For each LB, one row per server - host, address, action (in, out, unchanged), down after, why.
  returned: success
  type: dict
  sample: {"lb1": [{"host": "app1", "address": "10.0.0.11:8000", "action": "in", "down": false,
           "why": "healthy on its current release 1.1.0"}]}
lines:
  description: The report, one line per LB and server, and a count per LB.
  returned: success
  type: list
  elements: str
  sample: ["lb1 app1     10.0.0.11:8000       in: healthy on its current release 1.1.0"]
changed:
  description: Always false - the action changes nothing; whether any LB needs a change is in RV(changes).
  returned: always
  type: bool
  sample: false
"""
