"""The fence: an Nginx edit made under the deploy lock (option `lock`) is written only while the lock holds this
run. Both modules that edit Nginx files, run in-process with no configuration test: refused edits fail naming the
lock and leave the file byte for byte as it was (no backup either); this run's lock lets the edit through, even past
its lease; check mode and an edit that changes nothing do not read the lock."""

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.fleet.deployer.plugins.modules import nginx_split_clients, nginx_upstream

RUN_ID = "a1b2c3d4e5f60718"
LOCK = {"run_id": RUN_ID, "user": "root", "host": "ctl", "pid": 42, "pid_namespace": "", "playbook": "rolling.yml",
        "version": "1.1.0", "started": 1_800_000_000.0, "expires": 1_800_000_100.0}
UPSTREAM = "upstream app {\n    server 10.0.0.11:8000;\n    server 10.0.0.12:8000;\n}\n"
SPLITS = 'split_clients "${remote_addr}" $fleet_split {\n    5%   canary;\n    *    stable;\n}\n'
EDITS = {
    "nginx_upstream": (nginx_upstream, UPSTREAM,
                       dict(upstream="app", servers=[dict(address="10.0.0.11:8000", down=True)])),
    "nginx_split_clients": (nginx_split_clients, SPLITS,
                            dict(variable="fleet_split", splits=[dict(value="canary", percent=20),
                                                                 dict(value="stable", percent="*")])),
}


def run_edit(capsys, tmp_path, name, lock_content, check=False, **args):
    """The edit `name` under a lock file holding lock_content (None: no lock file); the result and the file after."""
    module, original, edit_args = EDITS[name]
    conf = tmp_path / "app.conf"
    conf.write_text(original)
    lock_path = tmp_path / "deploy.lock"
    if lock_content is not None:
        lock_path.write_text(lock_content)
    args = dict(edit_args, path=str(conf), test_command="", backup=True,
                lock=dict(path=str(lock_path), run_id=RUN_ID), **args)
    if check:
        args["_ansible_check_mode"] = True
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out), conf.read_bytes()


@pytest.mark.parametrize("name", EDITS)
@pytest.mark.parametrize("lock_content, refusal", [
    (json.dumps(dict(LOCK, run_id="9f8e7d6c5b4a3210")),
     "the deploy lock {lock} is held by another run: root@ctl (run 9f8e7d6c5b4a3210, pid 42, rolling.yml)"),
    (None, "no run holds the deploy lock {lock}"),
    ("{not json", "the lock file {lock} is unreadable: it is not JSON"),
    (json.dumps(dict(LOCK, expires="later")), "the lock file {lock} is unreadable: its expires is 'later'"),
])
def test_an_edit_not_under_this_runs_lock_is_refused_and_the_file_left_as_it_was(
        capsys, tmp_path, name, lock_content, refusal):
    result, after = run_edit(capsys, tmp_path, name, lock_content)
    assert result["failed"]
    assert result["msg"].startswith(
        f"{tmp_path / 'app.conf'} was left unchanged: this edit is made only under the deploy lock of run {RUN_ID}, "
        "and " + refusal.format(lock=tmp_path / "deploy.lock"))
    assert after == EDITS[name][1].encode()
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        ["app.conf", "deploy.lock.guard"] + (["deploy.lock"] if lock_content is not None else []))


@pytest.mark.parametrize("name", EDITS)
def test_this_runs_lock_lets_the_edit_through_even_past_its_lease(capsys, tmp_path, name):
    result, after = run_edit(capsys, tmp_path, name, json.dumps(dict(LOCK, expires=1_700_000_000.0)))
    assert result["changed"] and not result.get("failed")
    assert after != EDITS[name][1].encode()


@pytest.mark.parametrize("name", EDITS)
def test_check_mode_and_no_change_read_no_lock(capsys, tmp_path, name):
    result, after = run_edit(capsys, tmp_path, name, None, check=True)
    assert result["changed"] and after == EDITS[name][1].encode()
    module, original, edit_args = EDITS[name]
    unchanged = dict(edit_args, **({"servers": []} if name == "nginx_upstream" else {"splits": None}))
    result, after = run_edit(capsys, tmp_path, name, None, **unchanged)
    assert not result["changed"] and not result.get("failed")
    assert not (tmp_path / "deploy.lock.guard").exists()
