#!/usr/bin/python
# -*- coding: utf-8 -*-

from __future__ import annotations


DOCUMENTATION = r"""
---
module: nginx_upstream
short_description: Manage the server entries of one Nginx upstream block
description:
  - Adds, changes and removes C(server) lines of one C(upstream) block in one file, for example to drain a host,
    give a canary a share of the traffic or swap the whole live set of servers.
  - Only the lines of the servers it changes are touched; comments, other directives and other blocks of the file
    are kept byte for byte, as are the file's owner, mode and line endings.
  - The new content is written to a temporary file in the same folder and renamed over the old one, then
    O(test_command) is run. If the test or the reload fails, the original file is put back as it was.
  - Runs on the host that holds the file, with the Python standard library only.
options:
  path:
    description:
      - The file holding the upstream block.
      - A symbolic link is followed and its target edited.
    type: path
    required: true
  upstream:
    description:
      - Name of the upstream block, matched exactly (C(app) does not match C(app_v2)).
      - The module fails if the file has no such block, or more than one.
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
          - V(host:port), V([ipv6]:port) or V(unix:/path).
        type: str
        required: true
      weight:
        description:
          - Weight for weighted round robin, 1 or more.
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
  test_command:
    description:
      - Command that checks the whole configuration once the new file is in place; split like a shell would,
        but not run through one.
      - When it fails, the original file is put back byte for byte and the task fails with the command's output.
      - An empty string skips the test.
    type: str
    default: nginx -t
  reload:
    description:
      - Run O(reload_command) when the file changed, so that new weights take effect at once.
      - When the reload fails, the original file is put back too, so the file matches what Nginx still runs.
    type: bool
    default: false
  reload_command:
    description:
      - Command that makes Nginx load the changed configuration, for example V(systemctl reload nginx).
    type: str
    default: nginx -s reload
  backup:
    description:
      - Keep a timestamped copy of the original file next to it when it changes.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
notes:
  - Server lines without a weight, max_fails or fail_timeout are reported with Nginx's defaults (1, 1 and V(10s)),
    and asking for a default that is not written in the file changes nothing.
seealso:
  - module: nginx_upstream_info
author:
  - Fleet deployer team
"""

EXAMPLES = r"""
- name: Drain a host before updating it
  nginx_upstream:
    path: /etc/nginx/conf.d/app.conf
    upstream: app
    servers:
      - address: 10.0.0.11:8080
        down: true
    reload: true
    reload_command: systemctl reload nginx

- name: Put it back with the weight it had
  nginx_upstream:
    path: /etc/nginx/conf.d/app.conf
    upstream: app
    servers:
      - address: 10.0.0.11:8080
        down: false
    reload: true
    reload_command: systemctl reload nginx

- name: Send exactly 5% of the traffic to the canary
  nginx_upstream:
    path: /etc/nginx/conf.d/app.conf
    upstream: app
    servers: >-
      {{ {'canary': {'share': 5, 'hosts': ['10.0.0.11:8080']},
          'stable': {'share': 95, 'hosts': ['10.0.0.12:8080', '10.0.0.13:8080', '10.0.0.14:8080', '10.0.0.15:8080']}}
         | traffic_weights | upstream_servers }}
    reload: true

- name: Make green live in one write and one reload
  nginx_upstream:
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
      description: Address as written, quotes and escapes resolved.
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

import os
import secrets
import shlex
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.nginx_upstream_conf import NginxConfError, edit_upstream, upstream_servers


def write_checked(module, path, content):
    """Replace path atomically with content, then test and reload.

    On failure the original file is back in place and the failure is returned for fail_json.
    """
    params = module.params
    folder, name = os.path.split(path)
    # A second name for the original inode: renaming it back restores content, owner, mode and mtime at once.
    original_link = os.path.join(folder, '.%s.%s.orig' % (name, secrets.token_hex(6)))
    try:
        os.link(path, original_link)
    except OSError as error:
        module.fail_json(msg='cannot keep the original of %s to restore it if needed: %s' % (path, error))
    module.add_cleanup_file(original_link)
    fd, tmp_path = tempfile.mkstemp(dir=folder, prefix='.%s.' % name, suffix='.tmp')
    module.add_cleanup_file(tmp_path)
    with os.fdopen(fd, 'wb') as tmp_file:
        tmp_file.write(content)
    module.atomic_move(tmp_path, path)

    checks = [('configuration test', params['test_command'])]
    if params['reload']:
        checks.append(('reload', params['reload_command']))
    for what, command in checks:
        if not command:
            continue
        rc, stdout, stderr = module.run_command(shlex.split(command))
        if rc != 0:
            os.rename(original_link, path)
            return dict(msg='The %s failed (%s, rc=%d), so %s was put back as it was: %s'
                            % (what, command, rc, path, (stderr or stdout).strip()),
                        rc=rc, stdout=stdout, stderr=stderr)
    return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
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
            test_command=dict(type='str', default='nginx -t'),
            reload=dict(type='bool', default=False),
            reload_command=dict(type='str', default='nginx -s reload'),
            backup=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    path = os.path.realpath(params['path'])
    if not os.path.isfile(path):
        module.fail_json(msg='path %s does not exist or is not a file' % params['path'])

    with open(path, 'rb') as conf_file:
        original = conf_file.read()
    before = original.decode('utf-8', 'surrogateescape')
    try:
        after = edit_upstream(before, params['upstream'], params['servers'], params['purge'])
        servers = upstream_servers(after, params['upstream'])
    except NginxConfError as error:
        module.fail_json(msg='%s: %s' % (path, error))

    new = after.encode('utf-8', 'surrogateescape')
    result = dict(changed=new != original, servers=servers)
    if module._diff:
        # Bytes that are not UTF-8 (say a latin-1 comment) cannot go into the JSON result; show them replaced.
        result['diff'] = dict(before=original.decode('utf-8', 'replace'), after=new.decode('utf-8', 'replace'),
                              before_header=path, after_header=path)
    if not result['changed'] or module.check_mode:
        module.exit_json(**result)

    if params['backup']:
        result['backup_file'] = module.backup_local(path)
    failure = write_checked(module, path, new)
    if failure:
        if params['backup']:
            os.remove(result['backup_file'])  # a failed task leaves the folder as it found it
        module.fail_json(**failure)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
