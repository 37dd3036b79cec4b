# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
"""The deploy lock file on a load balancer, as the modules read it: module deploy_lock takes, renews and releases
it; the modules that edit Nginx files check it before they write (the fence). Its decisions about other runs are
made on the controller (plugin_utils/lock.py)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json

# The fields every decision and message reads, and their JSON types (bool is not a number here).
FIELDS = {"run_id": (str,), "user": (str,), "host": (str,), "pid": (int,), "playbook": (str,), "version": (str,),
          "started": (int, float), "expires": (int, float)}


def damage(lock):
    """What is wrong with a parsed lock, or '' when every field is there with its type."""
    if not isinstance(lock, dict):
        return "it is not a JSON object"
    for name, types in FIELDS.items():
        if name not in lock:
            return f"it has no {name}"
        if isinstance(lock[name], bool) or not isinstance(lock[name], types):
            return f"its {name} is {lock[name]!r}"
    return ""


def read_lock(path):
    """The lock in path, None when there is none, or a damaged lock: held by nobody, expired since ever.

    A damaged lock's run_id is a hash of its bytes, so a take-over replaces only the file it judged and no run's
    fence ever matches it.
    """
    try:
        with open(path, "rb") as lock_file:
            raw = lock_file.read()
    except FileNotFoundError:
        return None
    try:
        lock = json.loads(raw)
        why = damage(lock)
    except ValueError as error:  # bad JSON or bad UTF-8
        why = f"it is not JSON ({error})"
    if not why:
        return lock
    return {"run_id": "damaged-" + hashlib.sha256(raw).hexdigest()[:16], "expires": 0,
            "damaged": f"the lock file {path} is unreadable: {why}"}


@contextlib.contextmanager
def guarded(path, exclusive):
    """The lock's guard file held while the caller reads (and writes) the lock: exclusive to take, renew or release,
    shared to edit under it, so no take-over comes between a fence's check and its write."""
    with open(f"{path}.guard", "a", encoding="utf-8") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield


def fence_refusal(lock, run_id, path):
    """Why an edit made for run `run_id` must not be written, given the lock in path; '' when that run holds it."""
    if lock is None:
        return f"no run holds the deploy lock {path}"
    if lock.get("damaged"):
        return lock["damaged"]
    if lock["run_id"] != run_id:
        return (f"the deploy lock {path} is held by another run: {lock['user']}@{lock['host']} (run "
                f"{lock['run_id']}, pid {lock['pid']}, {lock['playbook'] or 'a playbook'})")
    return ""
