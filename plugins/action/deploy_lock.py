# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Action plugin fleet.deployer.deploy_lock: takes, renews or releases the deploy lock on a load balancer (the
task's host, or its delegate). It describes this run (its run id comes from the play: fleet_lock_run_id), decides
with plugin_utils.lock what to do about another run's lock, waits for it, and calls the module of the same name on
the load balancer for each attempt.
Documentation: plugins/modules/deploy_lock.py."""

from __future__ import annotations

import getpass
import os
import socket
import time
from pathlib import Path

from ansible import context
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.fleet.deployer.plugins.plugin_utils import lock
from ansible_collections.fleet.deployer.plugins.plugin_utils.fleet import Refusal

display = Display()

ARGUMENT_SPEC = {
    "path": {"type": "path", "default": "/var/lib/fleet-deployer/deploy.lock"},
    "state": {"type": "str", "choices": ["present", "renew", "absent"], "default": "present"},
    "wait": {"type": "raw", "default": 60},
    "ttl": {"type": "raw", "default": 1800},
    "break": {"type": "bool", "default": False},
    "queue": {"type": "bool", "default": True},
    "version": {"type": "str", "default": ""},
    "run_id": {"type": "str", "required": True},
}
POLL_SECONDS = 2


def pid_namespace():
    """This machine's boot and this process's pid namespace ('' where Linux does not say): the pids a holder of the
    same value names are the pids this controller sees."""
    try:
        return f"{Path('/proc/sys/kernel/random/boot_id').read_text().strip()} {os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return ""


def running_here(current, me):
    """Whether the holder's ansible-playbook still runs, when its pid is one this controller sees (None: cannot
    tell, only the lease's expiry can)."""
    if not lock.pid_visible(current, me):
        return None
    try:
        return b"ansible" in Path(f"/proc/{int(current['pid'])}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        if self._play_context.check_mode:
            return dict(result, changed=False, acquired=False, msg="Check mode takes no deploy lock.")
        try:
            wait, ttl = lock.check_inputs(args["wait"], args["ttl"])
        except Refusal as refusal:
            return dict(result, failed=True, msg=str(refusal))
        self._task_vars = task_vars
        self._lb = self._task.delegate_to or task_vars["inventory_hostname"]
        # Worker processes are forked from ansible-playbook: its pid is the process that runs this playbook.
        self._me = lock.holder(args["run_id"], getpass.getuser(), socket.gethostname(), os.getppid(), pid_namespace(),
                               ", ".join(os.path.basename(path) for path in context.CLIARGS.get("args", ())),
                               args["version"], time.time())
        self._module_args = {"path": args["path"], "ttl": ttl, "run_id": args["run_id"]}
        if args["state"] == "absent":
            released = self._attempt(state="absent")
            result.update(released, changed=False)
            if released.get("lock"):
                result["msg"] = (f"The deploy lock on {self._lb} is not this run's any more: run "
                                 f"{released['lock']['run_id']}.")
            return result
        if args["state"] == "renew":
            result.update(self._renew())
            return result
        result.update(self._take(wait, args["break"], args["queue"]))
        return result

    def _renew(self):
        renewed = self._attempt(state="renew")
        if renewed.get("failed") or renewed["acquired"]:
            return dict(renewed, changed=False)
        # no lock_holder: that would read as "waited for the lock, nothing changed" (fleet's exit code 4)
        return dict(renewed, changed=False, failed=True,
                    msg=lock.renew_refusal(self._lb, renewed["lock"], self._me["run_id"], renewed["now"]))

    def _attempt(self, **module_args):
        return self._execute_module(module_name="fleet.deployer.deploy_lock",
                                    module_args=dict(self._module_args, **module_args), task_vars=self._task_vars)

    def _take(self, wait, break_lock, queue):
        deadline = time.monotonic() + wait
        waiting = None
        while True:
            taken = self._attempt(state="present", holder=self._me)
            if taken.get("failed"):
                return taken
            if taken["acquired"]:
                return dict(taken, changed=False, msg=f"This run holds the deploy lock on {self._lb}.")
            decision = lock.decide(self._lb, taken["lock"], self._me, taken["now"], break_lock,
                                   running_here(taken["lock"], self._me))
            if decision.action in (lock.TAKE_OVER, lock.BREAK):
                replaced = self._attempt(state="present", holder=self._me, replace=taken["lock"]["run_id"])
                if replaced.get("failed"):
                    return replaced
                if replaced["acquired"]:
                    return dict(replaced, changed=False, msg=decision.message, warnings=[decision.message],
                                replaced_lock=taken["lock"])
                continue  # another run took it first: decide again about that one
            if not queue:
                return {"changed": False, "acquired": False, "lock_holder": taken["lock"], "msg": decision.message}
            if time.monotonic() >= deadline:
                return {"failed": True, "changed": False, "lock_holder": taken["lock"],
                        "msg": str(lock.refusal(decision, wait))}
            if waiting != taken["lock"]["run_id"]:
                waiting = taken["lock"]["run_id"]
                display.display(f"{decision.message} Waiting up to {wait} s for it (fleet_lock_wait).",
                                color="bright purple")
            time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
