# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""The deploy lock each load balancer keeps: who holds it, and whether a deploy may take it.

A lock is a lease: it names its holder - a random run id made once per playbook run, with the user, controller,
process, playbook, version and start shown to people - and expires `ttl` seconds after it was last taken or
renewed. Only the run id tells two runs apart: user, host and pid can be the same for two controllers in two
containers. Pure functions of plain data; the action plugin deploy_lock reads and writes the lock file through the
module of the same name (module_utils/deploy_lock_file.py reads it on the load balancer).
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


def holder(run_id, user, host, pid, pid_namespace, playbook, version, now):
    """The lock this run would write: a JSON object, so no two holders can read alike."""
    return {"run_id": run_id, "user": user, "host": host, "pid": pid, "pid_namespace": pid_namespace,
            "playbook": playbook, "version": version, "started": round(now, 3)}


def describe(lock, now):
    """'root@ctl (run 3f2a9c0d1e4b5a69) running rolling.yml for 1.1.0 (pid 42, since 10:01:02 UTC, 75 s ago)'."""
    started = time.strftime("%H:%M:%S UTC", time.gmtime(lock["started"]))
    version = f" for {lock['version']}" if lock.get("version") else ""
    return (f"{lock['user']}@{lock['host']} (run {lock['run_id']}) running {lock['playbook'] or 'a playbook'}"
            f"{version} (pid {lock['pid']}, since {started}, {now - lock['started']:.0f} s ago)")


def check_inputs(wait, ttl):
    """fleet_lock_wait and fleet_lock_ttl as whole seconds, or a Refusal naming the bad one."""
    return (check_int(wait, "fleet_lock_wait", 0), check_int(ttl, "fleet_lock_ttl", 1))


def pid_visible(current, me):
    """Whether the holder's pid means the same process here: same controller and same pid namespace.

    A pid seen from another pid namespace (another container, even one with the same hostname) or another machine
    names some other process or none, so such a holder is judged by its lease's expiry only. An empty namespace
    (one that could not be read) is never the same.
    """
    return bool(me["pid_namespace"]) and (current.get("host"), current.get("pid_namespace")) == (
        me["host"], me["pid_namespace"])


def decide(lb, current, me, now, break_lock=False, holder_running=None):
    """What a deploy does about the lock `current` (None when free) on load balancer `lb`.

    holder_running: whether the holder's process still runs - known only when pid_visible(), None otherwise, when
    only the lease's expiry can tell that the holder is gone. A damaged lock file counts as held and expired.
    """
    if not current or current["run_id"] == me["run_id"]:
        return Decision(TAKE)
    if current.get("damaged"):
        return Decision(TAKE_OVER, f"Took over the deploy lock on {lb}: {current['damaged']}; read as held and "
                                   "expired. Run playbooks/reconcile.yml if a deploy stopped mid-rollout.")
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


def renew_refusal(lb, current, run_id, now):
    """Why this run cannot renew its lease on `lb` (the lock it found there is not this run's), for fail_json."""
    if not current:
        found = "no run holds it (released by hand?)"
    elif current.get("damaged"):
        found = current["damaged"]
    else:
        found = f"it is held by {describe(current, now)}"
    return (f"This run (run {run_id}) no longer holds the deploy lock on {lb}: {found}. It stops here, before "
            "another change to the load balancers; raise fleet_lock_ttl above the longest batch, step or bake, "
            "and run playbooks/reconcile.yml once the other deploy is done.")
