"""fleet.deployer.release_stage on this machine: which old releases go, the files written only when their content
differs (and their mode set), a second run that changes nothing, what check mode reports without changing a
byte, and inputs refused before anything changes. Creating a real user is Molecule's part (every scenario stages
onto fresh hosts); here the user is `nobody`, whose home and shell are already the ones asked for."""

import hashlib
import json
import os
import stat

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.fleet.deployer.plugins.modules import release_stage


def make_releases(root, names):
    """Release folders under root, the first in `names` the newest (mtimes a minute apart)."""
    for age, name in enumerate(names):
        folder = root / name
        folder.mkdir(parents=True)
        os.utime(folder, (1_700_000_000 - 60 * age,) * 2)


@pytest.mark.parametrize("names, keep, protected, removed", [
    (["1.3.0", "1.2.0", "1.1.0", "1.0.0"], 3, set(), ["1.0.0"]),
    (["1.3.0", "1.2.0", "1.1.0", "1.0.0"], 2, {"1.0.0"}, ["1.1.0"]),  # the running or previous one stays
    (["1.3.0", "1.2.0"], 3, set(), []),
    (["1.3.0", "1.2.0", "1.1.0", "1.0.0"], 2, {"1.2.0", "1.1.0", "1.0.0"}, []),
])
def test_old_releases_are_those_beyond_the_newest_kept_less_the_protected(tmp_path, names, keep, protected, removed):
    make_releases(tmp_path, names)
    (tmp_path / "notes.txt").write_text("a file is not a release")
    assert release_stage.old_releases(str(tmp_path), keep, protected) == removed


def run_module_output(capsys, check=False, **args):
    """What the module prints: its whole result, the invocation too."""
    if check:
        args["_ansible_check_mode"] = True
    with patch_module_args(args), pytest.raises(SystemExit):
        release_stage.main()
    return capsys.readouterr().out


def run_module(capsys, check=False, **args):
    return json.loads(run_module_output(capsys, check, **args))


def stage_args(tmp_path, version="1.1.0", env="GREETING=\"hi\"\n", keep=2, protect=("1.0.0",)):
    release_dir = tmp_path / "releases" / version
    return dict(user="nobody", release_dir=str(release_dir), keep=keep, protect=list(protect),
                files=[dict(dest=str(tmp_path / "user-api.service"), content="[Service]\n", mode="0600")],
                secret_files=[dict(dest=str(release_dir / "release.env"), content=env)])


def sha256_line(text):
    return f"sha256 {hashlib.sha256(text.encode()).hexdigest()}\n"


def snapshot(root):
    """Every path under root with its mode and content (None for folders)."""
    return {str(path): (stat.S_IMODE(path.lstat().st_mode), None if path.is_dir() else path.read_bytes())
            for path in sorted(root.rglob("*"))}


def test_stages_the_release_removes_the_oldest_and_a_second_run_changes_nothing(tmp_path, capsys):
    make_releases(tmp_path / "releases", ["1.0.0", "0.9.0", "0.8.0"])
    args = stage_args(tmp_path, protect=["1.0.0", "0.9.0"])
    first = run_module(capsys, **args)
    assert first["changed"] and not first["user_created"]
    assert first["changed_files"] == [spec["dest"] for spec in args["files"] + args["secret_files"]]
    assert first["removed"] == ["0.8.0"]
    assert sorted(p.name for p in (tmp_path / "releases").iterdir()) == ["0.9.0", "1.0.0", "1.1.0"]
    release_dir = tmp_path / "releases" / "1.1.0"
    assert stat.S_IMODE(release_dir.stat().st_mode) == 0o755
    assert (release_dir / "release.env").read_text() == 'GREETING="hi"\n'
    assert stat.S_IMODE((release_dir / "release.env").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "user-api.service").stat().st_mode) == 0o600
    assert [name for name in os.listdir(release_dir) if name.startswith(".")] == []  # no temporary file left
    second = run_module(capsys, **args)
    assert not second["changed"] and second["changed_files"] == [] and second["removed"] == []


def test_the_release_current_points_to_is_never_removed(tmp_path, capsys):
    """An interrupted rollback can leave `current` on a release the caller does not protect: it stays."""
    make_releases(tmp_path / "releases", ["1.0.0", "0.9.0", "0.8.0"])
    (tmp_path / "current").symlink_to(tmp_path / "releases" / "0.8.0")
    staged = run_module(capsys, **stage_args(tmp_path), current=str(tmp_path / "current"))
    assert staged["removed"] == ["0.9.0"]
    assert (tmp_path / "releases" / "0.8.0").is_dir()


def test_written_files_leave_a_restart_owed_on_the_host_until_release_switch_removes_it(tmp_path, capsys):
    """A run killed after staging still owes the restart: the next run, which writes nothing, finds the mark."""
    mark = tmp_path / "releases" / "1.1.0" / ".restart-pending"
    staged = run_module(capsys, **stage_args(tmp_path), restart_mark=str(mark))
    assert staged["restart_pending"] and stat.S_IMODE(mark.stat().st_mode) == 0o600 and mark.read_bytes() == b""
    again = run_module(capsys, **stage_args(tmp_path), restart_mark=str(mark))
    assert again["changed_files"] == [] and not again["changed"] and again["restart_pending"]
    mark.unlink()  # as release_switch does once the service restarted healthy
    assert not run_module(capsys, **stage_args(tmp_path), restart_mark=str(mark))["restart_pending"]


def test_a_binary_about_to_change_owes_the_restart_before_it_is_copied(tmp_path, capsys):
    args = stage_args(tmp_path)
    run_module(capsys, **args)  # files written: the restart owed, then made
    mark = tmp_path / "releases" / "1.1.0" / ".restart-pending"
    binary = tmp_path / "releases" / "1.1.0" / "user-api"
    binary.write_bytes(b"old build")
    same = {"path": str(binary), "sha256": hashlib.sha256(b"old build").hexdigest()}
    assert not run_module(capsys, **args, restart_mark=str(mark), binary=same)["restart_pending"]
    other = dict(same, sha256=hashlib.sha256(b"new build").hexdigest())
    staged = run_module(capsys, **args, restart_mark=str(mark), binary=other)
    assert staged["restart_pending"] and mark.exists() and binary.read_bytes() == b"old build"  # copying is not its job


def test_check_mode_owes_no_restart_on_the_host(tmp_path, capsys):
    mark = tmp_path / "releases" / "1.1.0" / ".restart-pending"
    checked = run_module(capsys, check=True, **stage_args(tmp_path), restart_mark=str(mark))
    assert checked["restart_pending"] and not mark.exists()


def test_a_changed_content_is_rewritten_and_a_changed_mode_alone_is_set(tmp_path, capsys):
    args = stage_args(tmp_path)
    run_module(capsys, **args)
    os.chmod(tmp_path / "user-api.service", 0o644)
    changed = run_module(capsys, **stage_args(tmp_path, env="GREETING=\"hello\"\n"))
    assert changed["changed"] and changed["changed_files"] == [args["secret_files"][0]["dest"]]
    assert (tmp_path / "releases" / "1.1.0" / "release.env").read_text() == 'GREETING="hello"\n'
    assert stat.S_IMODE((tmp_path / "user-api.service").stat().st_mode) == 0o600


@pytest.mark.parametrize("user, user_created", [("nobody", False), ("fleet-no-such-user", True)])
def test_check_mode_reports_what_it_would_do_and_changes_no_byte(tmp_path, capsys, user, user_created):
    make_releases(tmp_path / "releases", ["1.0.0", "0.9.0"])
    (tmp_path / "user-api.service").write_bytes(b"[Service]\nUser=\xff\n")  # not UTF-8: still compared and shown
    before = snapshot(tmp_path)
    result = run_module(capsys, check=True, **dict(stage_args(tmp_path), user=user))
    assert snapshot(tmp_path) == before
    assert result["changed"] and result["user_created"] == user_created
    assert result["changed_files"] == [str(tmp_path / "user-api.service"),
                                       str(tmp_path / "releases" / "1.1.0" / "release.env")]
    assert result["removed"] == ["0.9.0"]
    assert [(d["before"], d["after"]) for d in result["diff"]] == [
        ("[Service]\nUser=\ufffd\n", "[Service]\n"), ("", sha256_line('GREETING="hi"\n'))]


def test_check_mode_of_a_first_install(tmp_path, capsys):
    result = run_module(capsys, check=True, **stage_args(tmp_path))
    assert result["changed"] and result["removed"] == [] and len(result["changed_files"]) == 2
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("change, message", [
    (dict(keep=1), "keep=1: keep at least 2 releases"),
    (dict(files=[dict(dest="/nonexistent-folder/user-api.service", content="")]),
     "files: the folder of /nonexistent-folder/user-api.service does not exist; nothing was changed"),
])
def test_bad_input_is_refused_before_anything_changes(tmp_path, capsys, change, message):
    make_releases(tmp_path / "releases", ["1.0.0", "0.9.0", "0.8.0"])
    before = snapshot(tmp_path)
    result = run_module(capsys, **dict(stage_args(tmp_path), **change))
    assert result["failed"] and result["msg"].startswith(message)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("check", [False, True])
def test_a_secret_file_is_0600_and_its_content_is_in_no_result_diff_or_invocation(tmp_path, capsys, check):
    args = stage_args(tmp_path, env='DB_PASSWORD="s3cr3t-old"\n')
    run_module(capsys, **args)
    env_file = tmp_path / "releases" / "1.1.0" / "release.env"
    os.chmod(env_file, 0o644)  # written by an older release of the role
    output = run_module_output(capsys, check, **stage_args(tmp_path, env='DB_PASSWORD="s3cr3t-new"\n'))
    assert "s3cr3t" not in output
    result = json.loads(output)
    assert result["changed_files"] == [str(env_file)]
    assert [(d["before"], d["after"]) for d in result["diff"]] == [
        (sha256_line('DB_PASSWORD="s3cr3t-old"\n'), sha256_line('DB_PASSWORD="s3cr3t-new"\n'))]
    assert stat.S_IMODE(env_file.stat().st_mode) == (0o644 if check else 0o600)


def test_a_new_secret_file_is_never_readable_by_others(tmp_path, capsys, monkeypatch):
    """The mode a secret file has the moment its content lands, before the module sets the mode it asks for."""
    landed = []
    move = release_stage.AnsibleModule.atomic_move

    def watched_move(module, src, dest, *args, **kwargs):
        move(module, src, dest, *args, **kwargs)
        landed.append(stat.S_IMODE(os.stat(dest).st_mode))

    monkeypatch.setattr(release_stage.AnsibleModule, "atomic_move", watched_move)
    previous = os.umask(0o022)
    try:
        run_module(capsys, **stage_args(tmp_path))
    finally:
        os.umask(previous)
    assert landed == [0o600, 0o600]  # the unit, then the environment
