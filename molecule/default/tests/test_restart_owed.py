"""A run that staged a change but never restarted the service (killed, or stopped elsewhere) leaves the restart owed
on the host, not in its own memory: the next run makes it, although it has nothing left to write. The fleet is put
back as site.yml left it (both hosts on 1.0.0, no extra environment)."""

import json
import os
import re
import subprocess

import pytest
from conftest import LAB_DIR, PROJECT

APPS = ["app1", "app2"]
VERSION = "1.0.0"
MARK = f"/opt/user-api/releases/{VERSION}/.restart-pending"
OWED = {"release_environment": {"FLEET_OWED": "yes"}}


def site(*args, extravars=None):
    run = subprocess.run(["ansible-playbook", "-i", str(LAB_DIR / "inventory"), str(PROJECT / "playbooks" / "site.yml"),
                          "-e", f"app_version={VERSION}", "-e", json.dumps(extravars or {}), *args],
                         cwd=PROJECT, capture_output=True, text=True,
                         # plain text: Molecule's environment asks Ansible for colours
                         env=dict(os.environ, ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
                                  ANSIBLE_NOCOLOR="1"))
    assert run.returncode == 0, run.stdout[-3000:]
    return run.stdout


def changed_per_host(output):
    """{app host: changed count} from the play recap."""
    return {name: int(changed) for name, changed in re.findall(r"^(app\d)\s+: .*?changed=(\d+)", output, re.M)}


def environment(host):
    """The environment of the running service's main process."""
    pid = host.check_output("systemctl show --property MainPID --value user-api")
    return host.check_output(f"tr '\\0' '\\n' < /proc/{pid}/environ").splitlines()


@pytest.fixture(scope="module")
def apps(fleet_host):
    hosts = [fleet_host(name) for name in APPS]
    yield hosts
    site()  # back to the environment site.yml gave


def test_a_restart_staged_by_a_run_that_never_activated_is_made_by_the_next_run(apps):
    site("--skip-tags", "release_activate", extravars=OWED)  # staged, then the run ends before any restart
    for host in apps:
        assert host.file(MARK).exists, host.backend.hostname
        assert "FLEET_OWED=yes" not in environment(host)
    output = site(extravars=OWED)  # writes nothing new, yet restarts
    for host in apps:
        assert "FLEET_OWED=yes" in environment(host), host.backend.hostname
        assert not host.file(MARK).exists
    assert changed_per_host(output) == {"app1": 1, "app2": 1}  # the restart, and the mark removed with it
    assert changed_per_host(site(extravars=OWED)) == {"app1": 0, "app2": 0}
