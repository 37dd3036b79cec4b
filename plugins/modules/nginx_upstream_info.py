#!/usr/bin/python
# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT

from __future__ import annotations


DOCUMENTATION = r"""
---
module: nginx_upstream_info
short_description: Read the upstream blocks of an Nginx configuration
description:
  - Reports every C(upstream) block of one file, or of the whole configuration as printed by C(nginx -T), with
    its servers in the same shape as M(fleet.deployer.nginx_upstream) returns them.
  - Changes nothing. Runs on the host that holds the configuration, with the Python standard library only.
options:
  path:
    description:
      - The file to read.
      - Exactly one of O(path) and O(dump_command) is needed.
    type: path
  dump_command:
    description:
      - Command that prints the whole configuration the way C(nginx -T) does, for example V(nginx -T) or
        V(nginx -T -c /etc/nginx/nginx.conf); split like a shell would, but not run through one.
    type: str
  upstream:
    description:
      - Report only the upstream blocks with this name; the module fails if there is none.
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module never changes anything.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: fleet.deployer.nginx_upstream
author:
  - Fleet deployer team (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Read the upstreams of the site file
  fleet.deployer.nginx_upstream_info:
    path: /etc/nginx/conf.d/app.conf
  register: app_conf

- name: Read what Nginx itself loads
  fleet.deployer.nginx_upstream_info:
    dump_command: nginx -T
    upstream: app
  register: live

- name: Remember the weights before draining
  ansible.builtin.set_fact:
    app_weights: "{{ live.upstreams[0].servers | items2dict(key_name='address', value_name='weight') }}"
"""

RETURN = r"""
upstreams:
  description: The upstream blocks in the order they appear (files in the order C(nginx -T) prints them).
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Name of the block.
      type: str
      sample: app
    path:
      description: File that holds the block.
      type: str
      sample: /etc/nginx/conf.d/app.conf
    line:
      description: Line of that file where the block starts.
      type: int
      sample: 3
    servers:
      description:
        - Its servers, in file order, with the same keys as RV(fleet.deployer.nginx_upstream#module:servers)
          (V(address), V(weight), V(down), V(backup), V(max_fails), V(fail_timeout), V(other_params)).
        - A parameter a line does not set is reported with Nginx's default.
      type: list
      elements: dict
      sample: [{"address": "10.0.0.11:8080", "weight": 19, "down": false, "backup": false, "max_fails": 1,
                "fail_timeout": "10s", "other_params": {}}]
    directives:
      description: The block's other directives, each as its words joined by a space.
      type: list
      elements: str
      sample: ["zone app 64k", "keepalive 32"]
"""

import os
import shlex

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fleet.deployer.plugins.module_utils.nginx_conf import NginxConfError, split_config_dump
from ansible_collections.fleet.deployer.plugins.module_utils.nginx_upstream_conf import describe_upstreams


class NginxUpstreamInfo:
    def __init__(self, module):
        self.module = module
        self.params = module.params

    def _sources(self):
        """(path, text) of every file to read."""
        if self.params['path']:
            path = self.params['path']
            if not os.path.isfile(path):
                self.module.fail_json(msg='path %s does not exist or is not a file' % path)
            with open(path, 'rb') as conf_file:
                return [(path, conf_file.read().decode('utf-8', 'surrogateescape'))]
        command = self.params['dump_command']
        rc, stdout, stderr = self.module.run_command(shlex.split(command))
        if rc != 0:
            self.module.fail_json(msg='%s failed (rc=%d): %s' % (command, rc, (stderr or stdout).strip()),
                                  rc=rc, stdout=stdout, stderr=stderr)
        return split_config_dump(stdout)

    def run(self):
        upstreams = []
        for path, text in self._sources():
            try:
                found = describe_upstreams(text, self.params['upstream'])
            except NginxConfError as error:
                self.module.fail_json(msg='%s: %s' % (path, error))
            upstreams.extend(dict(upstream, path=path) for upstream in found)
        if self.params['upstream'] and not upstreams:
            self.module.fail_json(msg="no upstream named '%s' in %s"
                                      % (self.params['upstream'], self.params['path'] or self.params['dump_command']))
        return upstreams


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path'),
            dump_command=dict(type='str'),
            upstream=dict(type='str'),
        ),
        mutually_exclusive=[('path', 'dump_command')],
        required_one_of=[('path', 'dump_command')],
        supports_check_mode=True,
    )
    try:
        upstreams = NginxUpstreamInfo(module).run()
    except NginxConfError as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=False, upstreams=upstreams)


if __name__ == '__main__':
    main()
