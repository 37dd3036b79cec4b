#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see LICENSE)

from __future__ import annotations


DOCUMENTATION = r"""
---
module: deploy_lock
short_description: Take, renew or release the deploy lock a load balancer keeps
description:
  - Every playbook that changes the fleet takes this lock on every load balancer first, so two deploys never edit
    the same upstream at once. The lock is a JSON file naming its holder (user, controller, process, playbook,
    version, start) and when its lease expires.
  - The action plugin of the same name runs on the controller - it waits for another deploy's lock up to
    O(wait) seconds, then refuses naming the holder; takes over a lock whose holder is gone (its process no longer
    runs on this controller, or its lease ran out) with a warning; breaks one on purpose with O(break) - and calls
    this module on the load balancer for each attempt.
  - Each attempt is atomic on the load balancer (an exclusive C(flock) on a guard file beside the lock, and the
    lock written to a temporary file and renamed over it).
  - Reports no change, so that a second run of a playbook still reports none; check mode takes no lock.
version_added: 1.1.0
options:
  path:
    description: The lock file; its folder is created when missing.
    type: path
    default: /var/lib/fleet-deployer/deploy.lock
  state:
    description:
      - V(present) takes the lock, or renews it when this run already holds it.
      - V(absent) releases it when this run holds it, and leaves another run's lock alone.
    type: str
    choices: [present, absent]
    default: present
  wait:
    description: Seconds to wait for another deploy's lock before refusing. Used by the action plugin.
    type: int
    default: 60
  ttl:
    description: Seconds the lease lasts after it is taken or renewed.
    type: int
    default: 1800
  break:
    description: Take the lock even when another live deploy holds it. Used by the action plugin.
    type: bool
    default: false
  queue:
    description:
      - Whether to wait, up to O(wait) seconds, for another deploy's lock. Used by the action plugin.
      - V(false) makes one attempt; when another live deploy holds the lock, the task does not fail but returns
        RV(lock_holder). This is the first try on every load balancer at once, before taking them in order.
    type: bool
    default: true
  version:
    description: The version this run deploys, to name it in another deploy's messages.
    type: str
    default: ""
  holder:
    description: The lock to write, made by the action plugin (C(id), C(user), C(controller), C(pid), C(playbook), C(version), C(started)).
    type: dict
  replace:
    description: The id of another run's lock this attempt may replace (a take-over or a break decided by the action plugin).
    type: str
  holder_id:
    description:
      - With O(state=absent), release the lock this id holds instead of this run's - the C(fleet) command does so
        for a run it interrupted (Ctrl-C, SIGTERM). Used by the action plugin.
    type: str
    default: ""
    version_added: 1.2.0
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Check mode takes, renews and releases nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
author:
  - Fleet deployer team (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Take the deploy lock, waiting up to 2 minutes for another deploy
  fleet.deployer.deploy_lock:
    wait: 120
    version: "{{ app_version }}"

- name: Release the deploy lock
  fleet.deployer.deploy_lock:
    state: absent
"""

RETURN = r"""
acquired:
  description: Whether this run holds the lock after the task (V(false) after a release).
  returned: always
  type: bool
  sample: true
lock:
  description: The lock as it stands after the task, or V(null) when the load balancer holds none.
  returned: always
  type: dict
  sample: {"id": "root@ctl:4242", "user": "root", "controller": "ctl", "pid": 4242, "playbook": "rolling.yml",
           "version": "1.1.0", "started": 1795680000.0, "expires": 1795681800.0}
lock_holder:
  description: The lock of another deploy that holds it - when the task fails for it, or with O(queue=false).
  returned: when another deploy holds the lock
  type: dict
now:
  description: The load balancer's clock when the lock was read, in seconds since the epoch.
  returned: always
  type: float
  sample: 1795680012.5
"""

import fcntl
import json
import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fleet.deployer.plugins.module_utils.atomic_file import write_atomic


def read_lock(path):
    try:
        with open(path, encoding="utf-8") as lock_file:
            return json.load(lock_file)
    except FileNotFoundError:
        return None


def write_lock(module, path, lock):
    write_atomic(module, path, json.dumps(lock, sort_keys=True))


def attempt(module, path):
    """One take or release under the guard; returns what the module reports."""
    params = module.params
    mine = params["holder"]["id"]
    now = time.time()
    current = read_lock(path)
    held = current is not None and current.get("id") == mine
    if params["state"] == "absent":
        if held and not module.check_mode:
            os.unlink(path)
        return dict(acquired=False, lock=None if held else current, now=now)
    if current is not None and not held and current.get("id") != params["replace"]:
        return dict(acquired=False, lock=current, now=now)
    started = current["started"] if held else params["holder"]["started"]
    lock = dict(params["holder"], started=started, expires=round(now + params["ttl"], 3))
    if not module.check_mode:
        write_lock(module, path, lock)
    return dict(acquired=True, lock=lock, now=now)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/var/lib/fleet-deployer/deploy.lock"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            wait=dict(type="int", default=60),
            ttl=dict(type="int", default=1800),
            version=dict(type="str", default=""),
            queue=dict(type="bool", default=True),
            holder=dict(type="dict"),
            replace=dict(type="str"),
            holder_id=dict(type="str", default=""),
            **{"break": dict(type="bool", default=False)},
        ),
        required_if=[("state", "present", ["holder"]), ("state", "absent", ["holder"])],
        supports_check_mode=True,
    )
    path = module.params["path"]
    if module.params["ttl"] < 1:
        module.fail_json(msg=f"ttl={module.params['ttl']} must be 1 second or more")
    try:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        guard = open(f"{path}.guard", "a", encoding="utf-8")
    except OSError as error:
        module.fail_json(msg=f"cannot open the deploy lock's guard file {path}.guard: {error}")
    with guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        result = attempt(module, path)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
