"""The deploy lock's decisions, from a table: the lock a load balancer holds, this run, the clock and what is known
of the holder's process in; take, wait, take over or break out, with the message an operator reads."""

import pytest

from ansible_collections.fleet.deployer.plugins.plugin_utils import lock
from ansible_collections.fleet.deployer.plugins.plugin_utils.fleet import Refusal

NOW = 1_800_000_100.0
NS = "boot-1 pid:[4026531836]"
ME = lock.holder("a1b2c3d4e5f60718", "root", "ctl", 42, NS, "rolling.yml", "1.1.0", NOW)


def held_by(run_id="9f8e7d6c5b4a3210", user="ops", host="ctl", pid=7, pid_namespace=NS, started=NOW - 75,
            expires=NOW + 600, version="1.2.0"):
    return dict(lock.holder(run_id, user, host, pid, pid_namespace, "bluegreen.yml", version, started),
                expires=expires)


DAMAGED = {"run_id": "damaged-0123456789abcdef", "expires": 0,
           "damaged": "the lock file /var/lib/fleet-deployer/deploy.lock is unreadable: it has no expires"}


@pytest.mark.parametrize("current, break_lock, running, action, message", [
    (None, False, None, lock.TAKE, ""),
    (dict(ME, expires=NOW + 1), False, True, lock.TAKE, ""),  # this run renews its own lease
    (held_by(), False, True, lock.WAIT,
     "The deploy lock on lb1 is held by ops@ctl (run 9f8e7d6c5b4a3210) running bluegreen.yml for 1.2.0 "
     "(pid 7, since 08:00:25 UTC, 75 s ago)."),
    # another controller with the same user, hostname and pid (two containers): only the run id tells them apart
    (held_by(user="root", pid=42, expires=NOW + 1), False, None, lock.WAIT, "held by root@ctl (run 9f8e7d6c5b4a3210)"),
    (held_by(host="other"), False, None, lock.WAIT, "held by ops@other"),
    (held_by(version=""), False, True, lock.WAIT, "running bluegreen.yml (pid 7"),
    # the holder ran here and its process is gone: no need to wait for its lease
    (held_by(), False, False, lock.TAKE_OVER, "that process no longer runs on this controller"),
    # on another controller or in another pid namespace, only the lease tells that the holder is gone
    (held_by(host="other", expires=NOW - 30), False, None, lock.TAKE_OVER, "its lease ran out 30 s ago"),
    (held_by(host="other", expires=NOW + 1), False, None, lock.WAIT, "held by ops@other"),
    # its lease ran out, but the process still runs here: it is alive, so wait
    (held_by(expires=NOW - 30), False, True, lock.WAIT, "held by ops@ctl"),
    (held_by(), True, True, lock.BREAK, "Broke the deploy lock on lb1 held by ops@ctl"),
    (held_by(host="other"), True, None, lock.BREAK, "as asked (fleet_lock_break=true)"),
    (None, True, None, lock.TAKE, ""),
    # a damaged lock file never blocks a deploy: held and expired, the message names the file
    (DAMAGED, False, None, lock.TAKE_OVER,
     "Took over the deploy lock on lb1: the lock file /var/lib/fleet-deployer/deploy.lock is unreadable: it has no "
     "expires; read as held and expired."),
    (DAMAGED, True, None, lock.TAKE_OVER, "unreadable"),
])
def test_decide(current, break_lock, running, action, message):
    decision = lock.decide("lb1", current, ME, NOW, break_lock, running)
    assert decision.action == action
    assert message in decision.message
    assert bool(decision.message) == bool(message)


@pytest.mark.parametrize("current, visible", [
    (held_by(), True),
    (held_by(host="other"), False),                    # another machine
    (held_by(pid_namespace="boot-1 pid:[4026532999]"), False),  # another container on this machine, same hostname
    (held_by(pid_namespace="boot-2 pid:[4026531836]"), False),  # another machine, its init pid namespace
    (held_by(pid_namespace=""), False),                # a holder that could not read its namespace
    (DAMAGED, False),
])
def test_pid_visible_only_on_this_host_and_pid_namespace(current, visible):
    assert lock.pid_visible(current, ME) is visible


def test_pid_never_visible_when_this_controller_cannot_read_its_namespace():
    assert not lock.pid_visible(held_by(pid_namespace=""), dict(ME, pid_namespace=""))


def test_take_over_points_to_reconcile():
    assert "playbooks/reconcile.yml" in lock.decide("lb1", held_by(), ME, NOW, holder_running=False).message


def test_refusal_names_holder_wait_and_way_out():
    text = str(lock.refusal(lock.decide("lb2", held_by(), ME, NOW, holder_running=True), 60))
    assert text.startswith("The deploy lock on lb2 is held by ops@ctl (run 9f8e7d6c5b4a3210) running bluegreen.yml "
                           "for 1.2.0 (pid 7")
    assert "Waited 60 s (fleet_lock_wait); nothing was changed" in text
    assert "-e fleet_lock_break=true" in text


@pytest.mark.parametrize("current, found", [
    (held_by(), "it is held by ops@ctl (run 9f8e7d6c5b4a3210) running bluegreen.yml"),
    (None, "no run holds it"),
    (DAMAGED, "the lock file /var/lib/fleet-deployer/deploy.lock is unreadable"),
])
def test_renew_refusal_names_this_run_and_what_holds_the_lock(current, found):
    text = lock.renew_refusal("lb1", current, ME["run_id"], NOW)
    assert text.startswith(f"This run (run {ME['run_id']}) no longer holds the deploy lock on lb1: {found}")
    assert "fleet_lock_ttl" in text


@pytest.mark.parametrize("wait, ttl, expected", [
    (0, 1, (0, 1)), ("60", "1800", (60, 1800)), (60, 1800, (60, 1800)),
])
def test_inputs(wait, ttl, expected):
    assert lock.check_inputs(wait, ttl) == expected


@pytest.mark.parametrize("wait, ttl, named", [
    (-1, 1800, "fleet_lock_wait=-1"), ("soon", 1800, "fleet_lock_wait='soon'"), (True, 1800, "fleet_lock_wait=True"),
    (60, 0, "fleet_lock_ttl=0"), (60, "1h", "fleet_lock_ttl='1h'"), (60, 2.5, "fleet_lock_ttl=2.5"),
])
def test_bad_inputs_named(wait, ttl, named):
    with pytest.raises(Refusal, match=named.replace("(", r"\(")):
        lock.check_inputs(wait, ttl)
