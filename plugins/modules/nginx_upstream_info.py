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
      - The module fails if a block it reports has an C(include) (its servers there could not be read), or if a file
        starts with a UTF-8 byte order mark (Nginx would refuse it).
    type: str
  test_command:
    description:
      - Command that tests the whole configuration, for example V(nginx -t), run after the upstreams were read;
        its result is returned as RV(config_test) and fails the module only with O(test_must_pass). Saves a
        round trip for a caller that must refuse to go on when Nginx would not load its configuration.
    type: str
  test_must_pass:
    description:
      - Fail, naming O(test_command) and with its output, when it fails - a caller that must refuse to go on then
        needs no task of its own to check RV(config_test).
    type: bool
    default: false
    version_added: 1.2.0
  probe:
    description:
      - Also ask these backends' health check from this host, all at once, once each, on a new connection per
        request (the way M(fleet.deployer.backend_probe) does with its defaults) - one round trip for a caller
        that needs both what the LB has and what it sees, such as a break-glass rollback.
      - Returned as RV(probes); an answer never fails the module.
    type: dict
    version_added: 1.2.0
    suboptions:
      backends:
        description: The backends to ask, each by the name its answer is reported under, with the C(host:port)
          to connect to (the port from 1 to 65535); none are asked when empty.
        type: dict
        default: {}
      health_path:
        description: As O(fleet.deployer.backend_probe#module:health_path).
        type: str
        default: /healthz
      version_header:
        description: As O(fleet.deployer.backend_probe#module:version_header).
        type: str
        default: X-App-Version
      timeout:
        description: As O(fleet.deployer.backend_probe#module:timeout), for each request.
        type: float
        default: 2
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
  - module: fleet.deployer.backend_probe
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

- name: Read the upstream and whether Nginx would load its configuration, in one round trip
  fleet.deployer.nginx_upstream_info:
    path: /etc/nginx/conf.d/app.conf
    upstream: app
    test_command: nginx -t
  register: app_conf

- name: Read the upstream, and refuse to go on if Nginx would not load its configuration
  fleet.deployer.nginx_upstream_info:
    path: /etc/nginx/conf.d/app.conf
    upstream: app
    test_command: nginx -t
    test_must_pass: true
  register: app_conf

- name: Read the upstream and ask two backends' health from this LB, in one round trip
  fleet.deployer.nginx_upstream_info:
    path: /etc/nginx/conf.d/app.conf
    upstream: app
    probe:
      backends:
        blue1: "10.0.1.1:8000"
        green1: "10.0.2.1:8000"
  register: seen

- name: Refuse to edit a configuration Nginx would not load
  ansible.builtin.assert:
    that: app_conf.config_test.rc == 0
    fail_msg: "{{ app_conf.config_test.output | join(' ') }}"

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
          (V(address), V(weight), V(down), V(backup), V(max_fails), V(fail_timeout), V(other_params)); the address
          in its normalised form (host names in lower case, IPv6 compressed, port 80 when not written).
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
config_test:
  description: What O(test_command) did.
  returned: when O(test_command) is set and the upstreams could be read
  type: dict
  contains:
    rc:
      description: Its exit code (V(0) when the configuration is valid).
      type: int
      sample: 1
    output:
      description: Its output (C(nginx -t) writes to stderr), without the lines that only say all is well.
      type: list
      elements: str
      sample: ["nginx: [emerg] unknown directive \"bogus\" in /etc/nginx/conf.d/broken.conf:1"]
probes:
  description:
    - What each of O(probe.backends) answered, by its name, in the shape of
      RV(fleet.deployer.backend_probe#module:answers).
  returned: when O(probe.backends) is set and the upstreams could be read
  type: dict
  sample:
    blue1: {"address": "10.0.1.1:8000", "health": 200, "health_version": "1.0.0", "request": null, "version": "",
            "unhealthy": [], "error": "", "seconds": 0.01}
"""

import os
import shlex

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fleet.deployer.plugins.module_utils.http_health import Probe, address_error
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
            test_command=dict(type='str'),
            test_must_pass=dict(type='bool', default=False, no_log=False),  # not a secret: "pass" as in nginx -t
            probe=dict(type='dict', options=dict(
                backends=dict(type='dict', default={}),
                health_path=dict(type='str', default='/healthz'),
                version_header=dict(type='str', default='X-App-Version'),
                timeout=dict(type='float', default=2),
            )),
        ),
        mutually_exclusive=[('path', 'dump_command')],
        required_one_of=[('path', 'dump_command')],
        supports_check_mode=True,
    )
    probe = module.params['probe'] or {}
    backends = probe.get('backends') or {}
    error = address_error(backends)
    if error:
        module.fail_json(msg=error)
    try:
        upstreams = NginxUpstreamInfo(module).run()
    except NginxConfError as error:
        module.fail_json(msg=str(error))
    result = dict(changed=False, upstreams=upstreams)
    if module.params['test_command']:
        rc, stdout, stderr = module.run_command(shlex.split(module.params['test_command']))
        result['config_test'] = dict(rc=rc, output=[line for line in (stderr + stdout).splitlines()
                                                    if not line.rstrip().endswith(('syntax is ok', 'test is successful'))])
        if rc != 0 and module.params['test_must_pass']:
            module.fail_json(msg='%s fails (rc=%d), so no edit of this configuration could be tested: %s'
                                 % (module.params['test_command'], rc, ' '.join(result['config_test']['output'])),
                             **result)
    if probe.get('backends'):
        result['probes'] = Probe(dict(probe, health_timeout=0, request_path=None, stay_healthy_seconds=0)).run()
    module.exit_json(**result)


if __name__ == '__main__':
    main()
