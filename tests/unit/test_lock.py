"""The deploy lock's decisions, from a table: the lock a load balancer holds, this run, the clock and what is known
of the holder's process in; take, wait, take over or break out, with the message an operator reads."""

import pytest

from ansible_collections.fleet.deployer.plugins.plugin_utils import lock
from ansible_collections.fleet.deployer.plugins.plugin_utils.fleet import Refusal

NOW = 1_800_000_100.0
ME = lock.holder("root", "ctl", 42, "rolling.yml", "1.1.0", NOW)


def held_by(pid=7, controller="ctl", started=NOW - 75, expires=NOW + 600, version="1.2.0"):
    return dict(lock.holder("ops", controller, pid, "bluegreen.yml", version, started), expires=expires)


@pytest.mark.parametrize("current, break_lock, running, action, message", [
    (None, False, None, lock.TAKE, ""),
    (dict(ME, expires=NOW + 1), False, True, lock.TAKE, ""),  # this run renews its own lease
    (held_by(), False, True, lock.WAIT,
     "The deploy lock on lb1 is held by ops@ctl running bluegreen.yml for 1.2.0 (pid 7, since 08:00:25 UTC, 75 s ago)."),
    (held_by(controller="other"), False, None, lock.WAIT, "held by ops@other running bluegreen.yml"),
    (held_by(version=""), False, True, lock.WAIT, "running bluegreen.yml (pid 7"),
    # the holder ran here and its process is gone: no need to wait for its lease
    (held_by(), False, False, lock.TAKE_OVER, "that process no longer runs on this controller"),
    # on another controller, only the lease tells that the holder is gone
    (held_by(controller="other", expires=NOW - 30), False, None, lock.TAKE_OVER, "its lease ran out 30 s ago"),
    (held_by(controller="other", expires=NOW + 1), False, None, lock.WAIT, "held by ops@other"),
    # its lease ran out, but the process still runs here: it is alive, so wait
    (held_by(expires=NOW - 30), False, True, lock.WAIT, "held by ops@ctl"),
    (held_by(), True, True, lock.BREAK, "Broke the deploy lock on lb1 held by ops@ctl"),
    (held_by(controller="other"), True, None, lock.BREAK, "as asked (fleet_lock_break=true)"),
    (None, True, None, lock.TAKE, ""),
])
def test_decide(current, break_lock, running, action, message):
    decision = lock.decide("lb1", current, ME, NOW, break_lock, running)
    assert decision.action == action
    assert message in decision.message
    assert bool(decision.message) == bool(message)


def test_take_over_points_to_reconcile():
    assert "playbooks/reconcile.yml" in lock.decide("lb1", held_by(), ME, NOW, holder_running=False).message


def test_refusal_names_holder_wait_and_way_out():
    text = str(lock.refusal(lock.decide("lb2", held_by(), ME, NOW, holder_running=True), 60))
    assert text.startswith("The deploy lock on lb2 is held by ops@ctl running bluegreen.yml for 1.2.0 (pid 7")
    assert "Waited 60 s (fleet_lock_wait); nothing was changed" in text
    assert "-e fleet_lock_break=true" in text


def test_one_id_per_run():
    assert ME["id"] == "root@ctl:42"
    assert lock.holder("root", "ctl", 42, "other.yml", "", NOW + 5)["id"] == ME["id"]


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
