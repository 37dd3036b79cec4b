#!/usr/bin/python
# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT

from __future__ import annotations


DOCUMENTATION = r"""
---
module: release_switch
short_description: Switch a service to a release on the host, restart it, wait until it is healthy, record it
description:
  - The activation of a release that is already on the host, in one round trip, so that a rolling batch spends
    its time on the service rather than on connections - in this order, stopping at the first step that fails.
  - Points the O(link) symlink at O(release) (a new symlink renamed over the old one, so atomically).
  - Runs C(systemctl daemon-reload) when O(daemon_reload) is set, enables O(service), and restarts it when the
    link changed or O(restart) is set; otherwise only starts it when it is not running.
  - Polls C(http://127.0.0.1:<health_port><health_path>) until it answers 200, for at most O(health_timeout)
    seconds; fails with the last answer when it never does.
  - Then writes O(fact) as JSON to O(fact_path) (a temporary file renamed over it), when given and different.
  - A restart owed by an earlier run (O(restart_mark) exists) is made as if O(restart) and O(daemon_reload) were
    set, and the mark removed once the service is healthy.
  - A failure names its step and leaves the link as the module set it; switching back is the caller's (the
    C(release) role's rescue calls this module again with the release that ran before).
version_added: 1.2.0
options:
  link:
    description: The symlink the service runs its release through, e.g. C(/opt/user-api/current).
    type: path
    required: true
  release:
    description: Where O(link) points, as the symlink stores it (relative to the link's folder, e.g. C(releases/1.1.0)).
    type: str
    required: true
  service:
    description: The systemd unit to run, e.g. C(user-api.service).
    type: str
    required: true
  restart:
    description: Restart O(service) even when O(link) already pointed at O(release) (a version change, or staged
      files the running service has not read).
    type: bool
    default: false
  daemon_reload:
    description: Run C(systemctl daemon-reload) first (the unit file changed).
    type: bool
    default: false
  health_port:
    description: Local TCP port of the health check.
    type: int
    required: true
  health_path:
    description: Path that answers 200 when the service is ready.
    type: str
    default: /healthz
  health_timeout:
    description: Seconds to poll the health check (every 0.2 s) until it answers 200.
    type: float
    default: 30
  fact_path:
    description: File to write O(fact) to once the service is healthy; its folder is created (mode 0755) when missing.
    type: path
  fact:
    description: What to record in O(fact_path), as JSON; compared as data, so formatting alone is no change.
    type: dict
  restart_mark:
    description: The file M(fleet.deployer.release_stage) creates when it writes files the service has not read.
    type: path
    version_added: 1.2.0
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports what would change - the link, a restart, the fact - and changes nothing; asks no health check.
  diff_mode:
    support: full
    details: The link's target and the fact file's content, before and after.
  platform:
    platforms: posix
requirements:
  - systemd
author:
  - Fleet deployer team (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Switch to 1.1.0, restart, wait for the health check, record the version
  fleet.deployer.release_switch:
    link: /opt/user-api/current
    release: releases/1.1.0
    service: user-api.service
    restart: true
    health_port: 8080
    fact_path: /etc/ansible/facts.d/user_api.fact
    fact: {version: 1.1.0, previous: 1.0.0, rolled_back: false}

- name: Back to the release that ran before (no fact)
  fleet.deployer.release_switch:
    link: /opt/user-api/current
    release: releases/1.0.0
    service: user-api.service
    restart: true
    health_port: 8080
"""

RETURN = r"""
link:
  description: Where O(link) pointed before and points after ('' when it did not exist).
  returned: always
  type: dict
  sample: {"before": "releases/1.0.0", "after": "releases/1.1.0"}
restarted:
  description: Whether O(service) was restarted (or started because it was not running).
  returned: always
  type: bool
  sample: true
health:
  description: The health check's last answer and how long it took to get a 200 (V(null) status when none came).
  returned: when the service ran (not in check mode)
  type: dict
  sample: {"status": 200, "error": "", "seconds": 0.41}
fact:
  description: What O(fact_path) records after the task.
  returned: when O(fact_path) is set
  type: dict
  sample: {"version": "1.1.0", "previous": "1.0.0", "rolled_back": false}
"""

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.six.moves import http_client
from ansible_collections.fleet.deployer.plugins.module_utils.atomic_file import write_atomic
from ansible_collections.fleet.deployer.plugins.module_utils.http_health import get, poll_until_200
from ansible_collections.fleet.deployer.plugins.module_utils.inputs import InputError, check_port


def read_link(path):
    try:
        return os.readlink(path)
    except FileNotFoundError:
        return ''


def replace_link(path, target):
    """Points path at target: a new symlink beside it, renamed over it (rename is atomic, unlink-then-link is not)."""
    temporary = '%s.switch-%d' % (path, os.getpid())
    if os.path.lexists(temporary):  # left by a run killed here
        os.unlink(temporary)
    os.symlink(target, temporary)
    os.rename(temporary, path)


def read_fact(path):
    """The recorded fact as data, or None when there is none or it does not parse (then it is rewritten)."""
    try:
        with open(path, encoding='utf-8') as fact_file:
            return json.load(fact_file)
    except (FileNotFoundError, ValueError):
        return None


def write_fact(module, path, fact):
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    # 0644: ansible's setup module reads facts.d as any user
    write_atomic(module, path, json.dumps(fact, indent=4, sort_keys=True) + '\n', mode=0o644)


def health(port, path, timeout):
    """Polls the local health check until 200 or timeout; its last status (None without an answer) and error."""
    def ask():
        try:
            return get('127.0.0.1:%d' % port, path, 2)[0], ''
        except (OSError, http_client.HTTPException) as error:
            return None, str(error)
    started = time.time()
    status, error = poll_until_200(ask, timeout)
    return dict(status=status, error=error, seconds=round(time.time() - started, 2))


class Switch:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.systemctl = module.get_bin_path('systemctl', required=not module.check_mode)

    def fail(self, step, why, **result):
        self.module.fail_json(msg='%s: %s' % (step, ' '.join(str(why).split())), **result)

    def run_systemctl(self, *args):
        rc, out, err = self.module.run_command([self.systemctl] + list(args))
        return rc, (err or out).strip()

    def unit_state(self):
        """(ActiveState, UnitFileState) of the service, e.g. ('active', 'enabled')."""
        out = self.module.run_command(
            [self.systemctl, 'show', self.params['service'], '--property', 'ActiveState,UnitFileState'])[1]
        values = dict(line.split('=', 1) for line in out.splitlines() if '=' in line)
        return values.get('ActiveState', ''), values.get('UnitFileState', '')

    def run(self):
        params, check = self.params, self.module.check_mode
        owed = bool(params['restart_mark']) and os.path.exists(params['restart_mark'])
        if owed:  # staged by a run that never restarted: the unit may have changed too
            params['restart'] = params['daemon_reload'] = True
        before = read_link(params['link'])
        link_changes = before != params['release']
        result = dict(changed=False, restarted=False, link=dict(before=before, after=params['release']))
        diff = dict(before=dict(link=before), after=dict(link=params['release']))
        if link_changes:
            result['changed'] = True
            if not check:
                replace_link(params['link'], params['release'])
        if params['daemon_reload']:
            result['changed'] = True
            if not check:
                rc, why = self.run_systemctl('daemon-reload')
                if rc:
                    self.fail('systemctl daemon-reload', why, **result)
        if check:
            result['restarted'] = link_changes or params['restart']
        else:
            self.start(result, link_changes or params['restart'])
        result['changed'] = result['changed'] or result['restarted']
        if not check:
            result['health'] = health(params['health_port'], params['health_path'], params['health_timeout'])
            if result['health']['status'] != 200:
                last = result['health']['status'] or result['health']['error']
                self.fail('health check', 'http://127.0.0.1:%d%s did not answer 200 within %g s (last answer: %s)'
                          % (params['health_port'], params['health_path'], params['health_timeout'], last), **result)
            if owed:
                os.remove(params['restart_mark'])
        if params['fact_path']:
            self.record(result, diff)
        self.module.exit_json(diff=diff, **result)

    def start(self, result, restart):
        service = self.params['service']
        active, enabled = self.unit_state()
        if enabled != 'enabled':
            rc, why = self.run_systemctl('enable', service)
            if rc:
                self.fail('systemctl enable %s' % service, why, **result)
            result['changed'] = True
        if restart or active != 'active':
            verb = 'restart' if restart else 'start'
            rc, why = self.run_systemctl(verb, service)
            if rc:
                self.fail('systemctl %s %s' % (verb, service), why, **result)
            result['restarted'] = True

    def record(self, result, diff):
        path, fact = self.params['fact_path'], self.params['fact']
        recorded = read_fact(path)
        diff['before']['fact'], diff['after']['fact'] = recorded, fact
        result['fact'] = fact
        if recorded != fact:
            result['changed'] = True
            if not self.module.check_mode:
                write_fact(self.module, path, fact)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            link=dict(type='path', required=True),
            release=dict(type='str', required=True),
            service=dict(type='str', required=True),
            restart=dict(type='bool', default=False),
            daemon_reload=dict(type='bool', default=False),
            health_port=dict(type='int', required=True),
            health_path=dict(type='str', default='/healthz'),
            health_timeout=dict(type='float', default=30),
            fact_path=dict(type='path'),
            fact=dict(type='dict'),
            restart_mark=dict(type='path'),
        ),
        required_together=[('fact_path', 'fact')],
        supports_check_mode=True,
    )
    try:
        check_port(module.params['health_port'], 'health_port')
    except InputError as refusal:
        module.fail_json(msg=str(refusal))
    Switch(module).run()


if __name__ == '__main__':
    main()
