"""fleet.deployer.release_switch on this machine: the link replaced by rename, the fact written only when its data
changes, the health poll against real HTTP servers, and what check mode reports. Restarting a real systemd unit
is Molecule's part (every scenario activates releases with it)."""

import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args
from http_backends import closed_port, server

from ansible_collections.fleet.deployer.plugins.modules import release_switch


def test_replace_link_points_at_the_new_release_and_clears_a_killed_run_s_leftover(tmp_path):
    link = tmp_path / "current"
    os.symlink("releases/1.0.0", link)
    os.symlink("releases/0.9.0", f"{link}.switch-{os.getpid()}")  # as a run killed between symlink and rename left it
    release_switch.replace_link(str(link), "releases/1.1.0")
    assert os.readlink(link) == "releases/1.1.0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current"]


def test_read_link_of_a_missing_link_is_empty(tmp_path):
    assert release_switch.read_link(str(tmp_path / "current")) == ""


@pytest.mark.parametrize("content, expected", [
    ('{"version": "1.0.0"}', {"version": "1.0.0"}),
    ("{not json", None),  # rewritten rather than failing the deploy
    (None, None),
])
def test_read_fact(tmp_path, content, expected):
    path = tmp_path / "user_api.fact"
    if content is not None:
        path.write_text(content)
    assert release_switch.read_fact(str(path)) == expected


@pytest.mark.parametrize("codes, timeout, status", [
    ([200], 0, 200),
    ([503, 503, 200], 3, 200),  # polled until it answers 200
    ([503], 0.5, 503),  # never healthy: the last answer
])
def test_health(codes, timeout, status):
    httpd, address = server(codes)
    try:
        answer = release_switch.health(int(address.rsplit(":", 1)[1]), "/healthz", timeout)
    finally:
        httpd.shutdown()
    assert answer["status"] == status and answer["error"] == ""
    assert answer["seconds"] <= timeout + 2.5


def test_health_of_a_closed_port_names_the_error():
    answer = release_switch.health(int(closed_port().rsplit(":", 1)[1]), "/healthz", 0)
    assert answer["status"] is None and "refused" in answer["error"]


def run_module(capsys, **args):
    with patch_module_args(args), pytest.raises(SystemExit):
        release_switch.main()
    return json.loads(capsys.readouterr().out)


FACT = {"version": "1.1.0", "previous": "1.0.0", "rolled_back": False}


@pytest.mark.parametrize("case, link, recorded, restart, changed, restarted", [
    ("a new release", "releases/1.0.0", {"version": "1.0.0"}, True, True, True),
    ("a link switched by a killed run, the fact not yet", "releases/1.1.0", {"version": "1.0.0"}, True, True, True),
    ("staged files to read", "releases/1.1.0", FACT, True, True, True),
    ("already done, formatted otherwise", "releases/1.1.0", json.dumps(FACT, indent=1), False, False, False),
    ("first install", None, None, False, True, True),
])
def test_check_mode_reports_and_changes_nothing(tmp_path, capsys, case, link, recorded, restart, changed, restarted):
    current, fact_path = tmp_path / "current", tmp_path / "user_api.fact"
    if link:
        os.symlink(link, current)
    if recorded is not None:
        fact_path.write_text(recorded if isinstance(recorded, str) else json.dumps(recorded))
    before = {p.name: (os.readlink(p) if p.is_symlink() else p.read_bytes()) for p in tmp_path.iterdir()}
    result = run_module(capsys, link=str(current), release="releases/1.1.0", service="user-api.service",
                        restart=restart, health_port=8080, fact_path=str(fact_path), fact=FACT, _ansible_check_mode=True)
    assert (result["changed"], result["restarted"]) == (changed, restarted), case
    assert result["link"] == {"before": link or "", "after": "releases/1.1.0"}
    assert "health" not in result  # no health check in check mode
    assert result["diff"]["after"] == {"link": "releases/1.1.0", "fact": FACT}
    assert {p.name: (os.readlink(p) if p.is_symlink() else p.read_bytes()) for p in tmp_path.iterdir()} == before


def test_a_restart_owed_by_an_earlier_run_is_reported_in_check_mode_and_the_mark_kept(tmp_path, capsys):
    current, mark = tmp_path / "current", tmp_path / ".restart-pending"
    os.symlink("releases/1.1.0", current)
    mark.write_bytes(b"")
    result = run_module(capsys, link=str(current), release="releases/1.1.0", service="user-api.service",
                        health_port=8080, restart_mark=str(mark), _ansible_check_mode=True)
    assert (result["changed"], result["restarted"]) == (True, True)
    assert mark.exists()


def test_a_port_that_is_not_one_is_refused(capsys, tmp_path):
    result = run_module(capsys, link=str(tmp_path / "current"), release="releases/1.1.0", service="user-api.service",
                        health_port=70000)
    assert result["failed"] and result["msg"] == "health_port=70000 is out of range: a TCP port must be from 1 to 65535."
    assert not (tmp_path / "current").exists()


def test_write_fact_makes_its_folder_and_is_readable_by_anyone(tmp_path):
    path = tmp_path / "facts.d" / "user_api.fact"
    with patch_module_args({"link": "x", "release": "y", "service": "z", "health_port": 1}):
        module = release_switch.AnsibleModule(argument_spec=dict(link=dict(), release=dict(), service=dict(),
                                                                 health_port=dict(type="int")))
    release_switch.write_fact(module, str(path), FACT)
    assert json.loads(path.read_text()) == FACT and path.stat().st_mode & 0o777 == 0o644
    assert path.parent.stat().st_mode & 0o777 == 0o755
