#!/usr/bin/python
# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT

from __future__ import annotations


DOCUMENTATION = r"""
---
module: nginx_split_clients
short_description: Set the percentages of one Nginx split_clients block
description:
  - Sets the entries of one C(split_clients) block in one file, for example to send a sticky share of the users to a
    canary, then grow that share step by step.
  - Nginx hashes the block's key and hands out the hash range in entry order, so the first entry keeps its users
    when it grows (5% to 20% keeps everyone who was in the 5%). The module never reorders entries; a new value gets
    a line of its own at its place in O(splits).
  - Only the percentages it changes, and the lines it adds or removes, are touched; a value stays in its column.
  - Without O(splits) it only reads the block.
options:
  variable:
    description:
      - The variable the block sets, with or without its C($), for example V($canary_upstream).
      - The module fails if the file has no such block, or more than one.
    type: str
    required: true
  splits:
    description:
      - The entries the block should have, in order. Entries of the block that are not listed are removed.
      - Percentages are checked before the file is touched; a bad one fails the task naming it.
      - Leave out to read the block without changing it.
    type: list
    elements: dict
    suboptions:
      value:
        description:
          - What the variable is set to for the clients of this entry, for example the name of an upstream.
          - It is quoted in the file when it needs to be.
        type: str
        required: true
      percent:
        description:
          - Share of the clients, from 0 to 100 with up to 2 decimals, as Nginx allows (V(5), V(12.5), V(0.25),
            or the same with a trailing V(%)).
          - V(0) leaves the entry out of the block (Nginx has no 0%); V(*), only on the last entry, gives it the
            rest.
          - The percentages add up to 100 at most.
        type: raw
        required: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - fleet.deployer.nginx_file_edit
seealso:
  - module: fleet.deployer.nginx_upstream
  - name: ngx_http_split_clients_module
    description: The Nginx directive this module edits.
    link: https://nginx.org/en/docs/http/ngx_http_split_clients_module.html
author:
  - Fleet deployer team (!UNKNOWN)
"""

EXAMPLES = r"""
# The file holds:
#   map $cookie_uid $canary_key { "" $remote_addr; default $cookie_uid; }
#   split_clients "${canary_key}" $canary_upstream {
#       5%   user-api-canary;
#       *    user-api-stable;
#   }
- name: Send a sticky 20% of the users to the canary, the same ones as at 5% and more
  fleet.deployer.nginx_split_clients:
    path: /etc/nginx/conf.d/canary.conf
    variable: $canary_upstream
    splits:
      - value: user-api-canary
        percent: 20
      - value: user-api-stable
        percent: "*"
    reload: true
    reload_command: systemctl reload nginx

- name: Abort - every user back to stable
  fleet.deployer.nginx_split_clients:
    path: /etc/nginx/conf.d/canary.conf
    variable: canary_upstream
    splits:
      - value: user-api-canary
        percent: 0
      - value: user-api-stable
        percent: "*"
    reload: true

- name: Read the current shares
  fleet.deployer.nginx_split_clients:
    path: /etc/nginx/conf.d/canary.conf
    variable: canary_upstream
  register: canary_split
"""

RETURN = r"""
splits:
  description: The entries of the block as they are now in the file (in check mode, as they would be), in order.
  returned: success
  type: list
  elements: dict
  contains:
    value:
      description: The value, quotes and escapes resolved.
      type: str
      sample: user-api-canary
    percent:
      description: The percentage as written (a number), or V(*).
      type: raw
      sample: 5
    share:
      description: The share of the clients the entry gets, in percent; for V(*), what the others leave.
      type: raw
      sample: 5
  sample: [{"value": "user-api-canary", "percent": 5, "share": 5},
           {"value": "user-api-stable", "percent": "*", "share": 95}]
previous_splits:
  description: The entries of the block before the task, in the same form as RV(splits).
  returned: success
  type: list
  elements: dict
  sample: [{"value": "user-api-canary", "percent": 5, "share": 5},
           {"value": "user-api-stable", "percent": "*", "share": 95}]
backup_file:
  description: Name of the copy of the original file.
  returned: when O(backup=true) and the file changed
  type: str
  sample: /etc/nginx/conf.d/canary.conf.2381.2026-05-04@12:28:03~
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fleet.deployer.plugins.module_utils.nginx_file_edit import FILE_EDIT_ARGUMENT_SPEC, edit_file
from ansible_collections.fleet.deployer.plugins.module_utils.nginx_split_clients_conf import (
    edit_split_clients, split_clients_entries,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            FILE_EDIT_ARGUMENT_SPEC,
            variable=dict(type='str', required=True),
            splits=dict(type='list', elements='dict', options=dict(
                value=dict(type='str', required=True),
                percent=dict(type='raw', required=True),
            )),
        ),
        supports_check_mode=True,
    )
    params = module.params

    def edit(text):
        before = split_clients_entries(text, params['variable'])
        after = text if params['splits'] is None else edit_split_clients(text, params['variable'], params['splits'])
        return after, dict(splits=split_clients_entries(after, params['variable']), previous_splits=before)

    edit_file(module, edit)


if __name__ == '__main__':
    main()
