#!/usr/bin/python
# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT

from __future__ import annotations


DOCUMENTATION = r"""
---
module: nginx_upstream
short_description: Manage the server entries of one Nginx upstream block
description:
  - Adds, changes and removes C(server) lines of one C(upstream) block in one file, for example to drain a host,
    give a canary a share of the traffic or swap the whole live set of servers.
  - Only the lines of the servers it changes are touched.
options:
  upstream:
    description:
      - Name of the upstream block, matched exactly (C(app) does not match C(app_v2)).
      - The module fails if the file has no such block, or more than one, or if the block has an C(include), since the
        servers it brings in could not be read or changed here (a purge would leave them live).
    type: str
    required: true
  servers:
    description:
      - The servers to manage. A server not in the block is added after its last server line, indented like it.
      - A key that is not given leaves that part of an existing line alone. Parameters this module does not
        manage (C(max_conns), C(slow_start), ...) are always kept.
      - Addresses are compared as Nginx does, so V(10.0.0.1:80) matches a line C(server 10.0.0.1;).
    type: list
    elements: dict
    default: []
    suboptions:
      address:
        description:
          - V(host:port) (an IPv4 address or a DNS name), V([ipv6]:port) or V(unix:/path); the port from 1 to 65535.
        type: str
        required: true
      weight:
        description:
          - Weight for weighted round robin, from 1 to 1000000 (Nginx sums an upstream's weights in one integer).
          - There is no weight 0 in Nginx; to send a server no traffic, set O(servers[].down=true).
        type: int
      down:
        description:
          - Whether the server is marked C(down). V(false) removes the flag and keeps the weight, which is how a
            drained server is put back.
        type: bool
      backup:
        description:
          - Whether the server is a C(backup) server. Nginx refuses this with C(hash), C(ip_hash) and C(random).
        type: bool
      max_fails:
        description:
          - Failed attempts within O(servers[].fail_timeout) after which the server counts as unavailable; 0 turns
            this off.
        type: int
      fail_timeout:
        description:
          - An Nginx time, such as V(10s) or V(1m30s).
        type: str
      state:
        description:
          - Whether the server should be in the block.
        type: str
        choices: [absent, present]
        default: present
  purge:
    description:
      - Remove the servers of the block that are not listed in O(servers) with O(servers[].state=present).
      - With a completely new list this swaps the live set in one write; the block's other directives
        (C(keepalive), C(zone), C(hash), ...) stay.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - fleet.deployer.nginx_file_edit
notes:
  - Server lines without a weight, max_fails or fail_timeout are reported with Nginx's defaults (1, 1 and V(10s)),
    and asking for a default that is not written in the file changes nothing.
seealso:
  - module: fleet.deployer.nginx_upstream_info
  - module: fleet.deployer.nginx_split_clients
author:
  - Fleet deployer team (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Drain a host before updating it
  fleet.deployer.nginx_upstream:
    path: /etc/nginx/conf.d/app.conf
    upstream: app
    servers:
      - address: 10.0.0.11:8080
        down: true
    reload: true
    reload_command: systemctl reload nginx

- name: Put it back with the weight it had
  fleet.deployer.nginx_upstream:
    path: /etc/nginx/conf.d/app.conf
    upstream: app
    servers:
      - address: 10.0.0.11:8080
        down: false
    reload: true
    reload_command: systemctl reload nginx

- name: Send exactly 5% of the traffic to the canary
  fleet.deployer.nginx_upstream:
    path: /etc/nginx/conf.d/app.conf
    upstream: app
    servers: >-
      {{ {'canary': {'share': 5, 'hosts': ['10.0.0.11:8080']},
          'stable': {'share': 95, 'hosts': ['10.0.0.12:8080', '10.0.0.13:8080', '10.0.0.14:8080', '10.0.0.15:8080']}}
         | fleet.deployer.traffic_weights | fleet.deployer.upstream_servers }}
    reload: true

- name: Make green live in one write and one reload
  fleet.deployer.nginx_upstream:
    path: /etc/nginx/conf.d/app.conf
    upstream: app
    servers:
      - address: 10.0.1.11:8080
      - address: 10.0.1.12:8080
    purge: true
    backup: true
    reload: true
"""

RETURN = r"""
servers:
  description:
    - The servers of the block as they are now in the file (in check mode, as they would be), in file order.
    - A parameter the line does not set is reported with Nginx's default.
  returned: success
  type: list
  elements: dict
  contains:
    address:
      description:
        - Address as Nginx reads it, in the one form every comparison uses - host names in lower case, IPv6
          compressed, port 80 when the line leaves it out - so V(App1.example) is reported as V(app1.example:80).
        - A V(unix:) address as written.
      type: str
      sample: 10.0.0.11:8080
    weight:
      description: Weight, 1 when not set.
      type: int
      sample: 19
    down:
      description: Whether the line has C(down).
      type: bool
      sample: false
    backup:
      description: Whether the line has C(backup).
      type: bool
      sample: false
    max_fails:
      description: Value of C(max_fails), 1 when not set.
      type: int
      sample: 1
    fail_timeout:
      description: Value of C(fail_timeout), V(10s) when not set.
      type: str
      sample: 10s
    other_params:
      description: Parameters this module does not manage; a flag without a value is V(true).
      type: dict
      sample: {"max_conns": "100", "resolve": true}
backup_file:
  description: Name of the copy of the original file.
  returned: when O(backup=true) and the file changed
  type: str
  sample: /etc/nginx/conf.d/app.conf.2381.2026-05-04@12:28:03~
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fleet.deployer.plugins.module_utils.nginx_file_edit import FILE_EDIT_ARGUMENT_SPEC, edit_file
from ansible_collections.fleet.deployer.plugins.module_utils.nginx_upstream_conf import edit_upstream, upstream_servers


def main():
    module = AnsibleModule(
        argument_spec=dict(
            FILE_EDIT_ARGUMENT_SPEC,
            upstream=dict(type='str', required=True),
            servers=dict(type='list', elements='dict', default=[], options=dict(
                address=dict(type='str', required=True),
                weight=dict(type='int'),
                down=dict(type='bool'),
                backup=dict(type='bool'),
                max_fails=dict(type='int'),
                fail_timeout=dict(type='str'),
                state=dict(type='str', default='present', choices=['absent', 'present']),
            )),
            purge=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params

    def edit(text):
        after = edit_upstream(text, params['upstream'], params['servers'], params['purge'])
        return after, dict(servers=upstream_servers(after, params['upstream']))

    edit_file(module, edit)


if __name__ == '__main__':
    main()
