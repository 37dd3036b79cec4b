"""fleet.deployer.deploy_lock on this machine (the load balancer's side): a lock file read whole or found damaged,
a lease renewed only by its run, a take-over that replaces only the lock it judged, a lock written to disk before it
is renamed, and two runs racing for one lock file - with the same hostname and pid - of which exactly one wins."""

import contextlib
import json
import multiprocessing
import os

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.fleet.deployer.plugins.module_utils import atomic_file, deploy_lock_file
from ansible_collections.fleet.deployer.plugins.modules import deploy_lock

NOW = 1_800_000_100.0
HOLDER = {"run_id": "a1b2c3d4e5f60718", "user": "root", "host": "ctl", "pid": 42, "pid_namespace": "",
          "playbook": "rolling.yml", "version": "1.1.0", "started": NOW}
OTHER = dict(HOLDER, run_id="9f8e7d6c5b4a3210", started=NOW - 60, expires=NOW + 600)


def run_module(capsys, **args):
    with patch_module_args(args), pytest.raises(SystemExit):
        deploy_lock.main()
    return json.loads(capsys.readouterr().out)


def lock_args(tmp_path, state="present", run_id=HOLDER["run_id"], ttl=100, **args):
    return dict(path=str(tmp_path / "deploy.lock"), state=state, run_id=run_id, ttl=ttl,
                holder=dict(HOLDER, run_id=run_id), **args)


@pytest.mark.parametrize("content, why", [
    (b"", "it is not JSON"),
    (b"{\"run_id\": ", "it is not JSON"),
    (b"\xff\xfe", "it is not JSON"),
    (b"[]", "it is not a JSON object"),
    (json.dumps({k: v for k, v in OTHER.items() if k != "expires"}).encode(), "it has no expires"),
    (json.dumps(dict(OTHER, expires="soon")).encode(), "its expires is 'soon'"),
    (json.dumps(dict(OTHER, expires=True)).encode(), "its expires is True"),
    (json.dumps(dict(OTHER, pid="42")).encode(), "its pid is '42'"),
    (json.dumps(dict(OTHER, run_id=7)).encode(), "its run_id is 7"),
    (b"{\"id\": \"root@ctl:42\", \"expires\": 1}", "it has no run_id"),  # a lock of the version before
])
def test_a_damaged_lock_is_held_by_nobody_and_expired_naming_the_file(tmp_path, content, why):
    path = tmp_path / "deploy.lock"
    path.write_bytes(content)
    found = deploy_lock_file.read_lock(str(path))
    assert found["damaged"].startswith(f"the lock file {path} is unreadable: {why}")
    assert found["expires"] == 0 and found["run_id"].startswith("damaged-")


def test_a_whole_lock_is_read_as_it_is_and_none_is_none(tmp_path):
    path = tmp_path / "deploy.lock"
    assert deploy_lock_file.read_lock(str(path)) is None
    path.write_text(json.dumps(OTHER))
    assert deploy_lock_file.read_lock(str(path)) == OTHER


@pytest.mark.parametrize("current, run_id, refusal", [
    (dict(HOLDER, expires=NOW - 5), HOLDER["run_id"], ""),  # a lease that ran out is still held until taken over
    (OTHER, HOLDER["run_id"], "the deploy lock /l is held by another run: root@ctl (run 9f8e7d6c5b4a3210, pid 42, "
                              "rolling.yml)"),
    (None, HOLDER["run_id"], "no run holds the deploy lock /l"),
    ({"run_id": "damaged-1", "expires": 0, "damaged": "the lock file /l is unreadable: x"}, "damaged-1",
     "the lock file /l is unreadable: x"),  # no run id matches a damaged lock, not even its own hash
])
def test_fence_refusal(current, run_id, refusal):
    assert deploy_lock_file.fence_refusal(current, run_id, "/l") == refusal


def test_take_then_renew_extends_the_lease_and_keeps_the_start(tmp_path, capsys):
    taken = run_module(capsys, **lock_args(tmp_path))
    assert taken["acquired"] and taken["lock"]["started"] == NOW
    renewed = run_module(capsys, **lock_args(tmp_path, state="renew", ttl=5000))
    assert renewed["acquired"] and renewed["lock"]["expires"] >= taken["lock"]["expires"] + 4000
    assert json.loads((tmp_path / "deploy.lock").read_text()) == dict(renewed["lock"])
    assert renewed["lock"]["started"] == NOW and not renewed["changed"]


@pytest.mark.parametrize("content", [json.dumps(OTHER), "{not json", None])
def test_renew_by_another_run_changes_nothing(tmp_path, capsys, content):
    path = tmp_path / "deploy.lock"
    if content is not None:
        path.write_text(content)
    result = run_module(capsys, **lock_args(tmp_path, state="renew"))
    assert not result["acquired"]
    assert (path.read_text() if content is not None else None) == content


def test_a_damaged_lock_is_replaced_only_when_its_hash_is_named(tmp_path, capsys):
    path = tmp_path / "deploy.lock"
    path.write_text('{"expires": "soon"}')
    found = run_module(capsys, **lock_args(tmp_path))
    assert not found["acquired"] and "unreadable: it has no run_id" in found["lock"]["damaged"]
    assert run_module(capsys, **lock_args(tmp_path, state="absent"))["lock"] == found["lock"]  # release leaves it
    taken = run_module(capsys, **lock_args(tmp_path, replace=found["lock"]["run_id"]))
    assert taken["acquired"] and json.loads(path.read_text())["run_id"] == HOLDER["run_id"]


def test_another_runs_lock_is_released_only_by_its_run_id(tmp_path, capsys):
    path = tmp_path / "deploy.lock"
    path.write_text(json.dumps(OTHER))
    assert run_module(capsys, **lock_args(tmp_path, state="absent"))["lock"] == OTHER
    assert path.exists()
    assert run_module(capsys, **lock_args(tmp_path, state="absent", run_id=OTHER["run_id"]))["lock"] is None
    assert not path.exists()


def test_the_lock_reaches_the_disk_before_its_rename_and_the_rename_after(tmp_path, capsys, monkeypatch):
    synced = []
    real_fsync, real_move = os.fsync, deploy_lock.AnsibleModule.atomic_move

    def fsync(descriptor):
        synced.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        real_fsync(descriptor)

    def atomic_move(module, source, dest, *args, **kwargs):
        synced.append("rename")
        real_move(module, source, dest, *args, **kwargs)

    monkeypatch.setattr(atomic_file.os, "fsync", fsync)
    monkeypatch.setattr(deploy_lock.AnsibleModule, "atomic_move", atomic_move)
    run_module(capsys, **lock_args(tmp_path))
    assert len(synced) == 3 and synced[0].startswith(str(tmp_path / ".deploy.lock."))
    assert synced[1:] == ["rename", str(tmp_path)]


def take_in_a_process(path, run_id, start, output):
    """One run's take, in its own process: the same hostname and pid as the other run, another run id. Its module
    output goes to a file: a forked child's stdout is not pytest's to read."""
    start.wait()
    with open(output, "w") as out, contextlib.redirect_stdout(out), \
            patch_module_args(dict(path=path, run_id=run_id, ttl=100, holder=dict(HOLDER, run_id=run_id))):
        with contextlib.suppress(SystemExit):
            deploy_lock.main()


def test_two_runs_with_the_same_host_and_pid_racing_for_one_lock_file_exactly_one_holds_it(tmp_path):
    context = multiprocessing.get_context("fork")
    run_ids = ("1111111111111111", "2222222222222222")
    for attempt in range(5):
        path = str(tmp_path / f"deploy-{attempt}.lock")
        start = context.Barrier(2)
        outputs = [tmp_path / f"out-{attempt}-{run_id}" for run_id in run_ids]
        processes = [context.Process(target=take_in_a_process, args=(path, run_id, start, str(output)))
                     for run_id, output in zip(run_ids, outputs)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(30)
        acquired = [json.loads(output.read_text())["acquired"] for output in outputs]
        assert sorted(acquired) == [False, True]
        with open(path) as lock_file:
            assert json.load(lock_file)["run_id"] == run_ids[acquired.index(True)]
