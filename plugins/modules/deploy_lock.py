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
    the same upstream at once. The lock is a JSON file naming its holder (a random run id made once per playbook
    run, the user, controller, process, playbook, version and start) and when its lease expires.
  - Only the run id tells two runs apart; a holder's pid is trusted only on the same controller and pid namespace
    (two containers can share a hostname and pids). A lock file that cannot be read (not JSON, a field missing or of
    the wrong type) is held by nobody and expired, and the warning names the file.
  - The action plugin of the same name runs on the controller - it waits for another deploy's lock up to
    O(wait) seconds, then refuses naming the holder; takes over a lock whose holder is gone (its process no longer
    runs on this controller, or its lease ran out) with a warning; breaks one on purpose with O(break) - and calls
    this module on the load balancer for each attempt.
  - Each attempt is atomic on the load balancer (an exclusive C(flock) on a guard file beside the lock, and the
    lock written to a temporary file, flushed to disk and renamed over it).
  - The modules that edit Nginx files refuse to write unless their O(fleet.deployer.nginx_upstream#module:lock)
    names the run that holds this lock (the fence).
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
      - V(renew) extends the lease of the lock this run holds by O(ttl) seconds from now; fails naming the holder
        when another run holds it, or when no run does.
      - V(absent) releases it when this run holds it, and leaves another run's lock alone.
    type: str
    choices: [present, renew, absent]
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
  run_id:
    description:
      - This run's id, the same in every task of one playbook run; the role fleet.deployer.fleet_lock makes a random
        one (C(fleet_lock_run_id)).
      - With O(state=absent), the C(fleet) command passes the id of a run it interrupted (Ctrl-C, SIGTERM) to give
        back that run's lock.
    type: str
    required: true
    version_added: 1.2.0
  holder:
    description:
      - The lock to write, made by the action plugin (C(run_id), C(user), C(host), C(pid), C(pid_namespace),
        C(playbook), C(version), C(started)).
    type: dict
  replace:
    description:
      - The run id of another run's lock this attempt may replace (a take-over or a break decided by the action
        plugin).
    type: str
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
    run_id: "{{ fleet_lock_run_id }}"

- name: Renew this run's lease
  fleet.deployer.deploy_lock:
    state: renew
    run_id: "{{ fleet_lock_run_id }}"

- name: Release the deploy lock
  fleet.deployer.deploy_lock:
    state: absent
    run_id: "{{ fleet_lock_run_id }}"
"""

RETURN = r"""
acquired:
  description: Whether this run holds the lock after the task (V(false) after a release, or a renewal refused).
  returned: always
  type: bool
  sample: true
lock:
  description: The lock as it stands after the task, or V(null) when the load balancer holds none.
  returned: always
  type: dict
  sample: {"run_id": "3f2a9c0d1e4b5a69", "user": "root", "host": "ctl", "pid": 4242,
           "pid_namespace": "0b6f... pid:[4026531836]", "playbook": "rolling.yml", "version": "1.1.0",
           "started": 1795680000.0, "expires": 1795681800.0}
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

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fleet.deployer.plugins.module_utils.atomic_file import write_atomic
from ansible_collections.fleet.deployer.plugins.module_utils.deploy_lock_file import guarded, read_lock


def write_lock(module, path, lock):
    write_atomic(module, path, json.dumps(lock, sort_keys=True))


def attempt(module, path):
    """One take, renewal or release under the guard; returns what the module reports."""
    params = module.params
    now = time.time()
    current = read_lock(path)
    held = current is not None and current["run_id"] == params["run_id"]
    if params["state"] == "absent":
        if held and not module.check_mode:
            os.unlink(path)
        return dict(acquired=False, lock=None if held else current, now=now)
    if params["state"] == "renew":
        if not held:  # the action plugin fails naming the lock found
            return dict(acquired=False, lock=current, now=now)
        lock = current
    elif current is not None and not held and current["run_id"] != params["replace"]:
        return dict(acquired=False, lock=current, now=now)
    else:
        lock = dict(params["holder"], started=current["started"] if held else params["holder"]["started"])
    lock = dict(lock, expires=round(now + params["ttl"], 3))
    if not module.check_mode:
        write_lock(module, path, lock)
    return dict(acquired=True, lock=lock, now=now)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/var/lib/fleet-deployer/deploy.lock"),
            state=dict(type="str", choices=["present", "renew", "absent"], default="present"),
            wait=dict(type="int", default=60),
            ttl=dict(type="int", default=1800),
            version=dict(type="str", default=""),
            queue=dict(type="bool", default=True),
            run_id=dict(type="str", required=True),
            holder=dict(type="dict"),
            replace=dict(type="str"),
            **{"break": dict(type="bool", default=False)},
        ),
        required_if=[("state", "present", ["holder"])],
        supports_check_mode=True,
    )
    path = module.params["path"]
    if module.params["ttl"] < 1:
        module.fail_json(msg=f"ttl={module.params['ttl']} must be 1 second or more")
    if not module.params["run_id"]:
        module.fail_json(msg="run_id must not be empty: it is what tells this run's lock from another's")
    try:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        with guarded(path, exclusive=True):
            result = attempt(module, path)
    except OSError as error:
        module.fail_json(msg=f"cannot read or write the deploy lock {path}: {error}")
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
