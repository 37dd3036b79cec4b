# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""The deploy lock each load balancer keeps: who holds it, and whether a deploy may take it.

A lock is a lease: it names its holder (user, controller, process, playbook, version, start) and expires `ttl`
seconds after it was last taken or renewed. Pure functions of plain data; the action plugin deploy_lock reads
and writes the lock file through the module of the same name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ansible_collections.fleet.deployer.plugins.plugin_utils.fleet import Refusal, check_int

TAKE, WAIT, TAKE_OVER, BREAK = "take", "wait", "take over", "break"


@dataclass(frozen=True)
class Decision:
    action: str
    message: str = ""


def holder(user, controller, pid, playbook, version, now):
    """The lock this run would write; its id is the same for every task of one ansible-playbook process."""
    return {"id": f"{user}@{controller}:{pid}", "user": user, "controller": controller, "pid": pid,
            "playbook": playbook, "version": version, "started": round(now, 3)}


def describe(lock, now):
    """'root@ctl running rolling.yml for 1.1.0 (pid 42, since 10:01:02 UTC, 75 s ago)'."""
    started = time.strftime("%H:%M:%S UTC", time.gmtime(lock["started"]))
    version = f" for {lock['version']}" if lock.get("version") else ""
    return (f"{lock['user']}@{lock['controller']} running {lock['playbook'] or 'a playbook'}{version} "
            f"(pid {lock['pid']}, since {started}, {now - lock['started']:.0f} s ago)")


def check_inputs(wait, ttl):
    """fleet_lock_wait and fleet_lock_ttl as whole seconds, or a Refusal naming the bad one."""
    return (check_int(wait, "fleet_lock_wait", 0), check_int(ttl, "fleet_lock_ttl", 1))


def decide(lb, current, me, now, break_lock=False, holder_running=None):
    """What a deploy does about the lock `current` (None when free) on load balancer `lb`.

    holder_running: whether the holder's process still runs - known only when it ran on this controller,
    None otherwise, when only the lease's expiry can tell that the holder is gone.
    """
    if not current or current["id"] == me["id"]:
        return Decision(TAKE)
    who = describe(current, now)
    if break_lock:
        return Decision(BREAK, f"Broke the deploy lock on {lb} held by {who}, as asked (fleet_lock_break=true).")
    if holder_running is False:
        return Decision(TAKE_OVER, f"Took over the deploy lock on {lb} from {who}: that process no longer runs "
                                   "on this controller. Run playbooks/reconcile.yml if it stopped mid-rollout.")
    if holder_running is None and now > current["expires"]:
        return Decision(TAKE_OVER, f"Took over the deploy lock on {lb} from {who}: its lease ran out "
                                   f"{now - current['expires']:.0f} s ago without renewal. Run "
                                   "playbooks/reconcile.yml if it stopped mid-rollout.")
    return Decision(WAIT, f"The deploy lock on {lb} is held by {who}.")


def refusal(decision, waited):
    """The error that ends a deploy that waited `waited` seconds for the lock in vain."""
    return Refusal(f"{decision.message} Waited {waited} s (fleet_lock_wait); nothing was changed. Let that "
                   "deploy finish, or, if it is dead, run again with -e fleet_lock_break=true.")
