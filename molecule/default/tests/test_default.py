"""site.yml on 2 app hosts + LB: the service, its unit's hardening, the LB and what it answers."""

import hashlib
import re
import urllib.error
import urllib.request

import pytest
from conftest import PROJECT, addresses, answers, failure_messages, get_json

APP = "user-api"
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectControlGroups": "yes",
    "RestrictNamespaces": "yes",
    "MemoryDenyWriteExecute": "yes",
    "CapabilityBoundingSet": "",
    "ProtectProc": "invisible",
    "RemoveIPC": "yes",
    "ProtectHostname": "yes",
}
NO_CAPS = "0000000000000000"
# What the kernel says of the running service: no new privileges, a seccomp filter, no capability at all.
RUNNING = {"NoNewPrivs": "1", "Seccomp": "2", "CapInh": NO_CAPS, "CapPrm": NO_CAPS, "CapEff": NO_CAPS,
           "CapBnd": NO_CAPS, "CapAmb": NO_CAPS}
MAX_EXPOSURE = 1.5  # systemd-analyze security: 0 is locked down, 10 is exposed
CPU_SHARES = "/sys/fs/cgroup/cpu/cpu.shares"  # the container's own CPU weight (cgroup v1, as on this machine and CI)


@pytest.fixture(scope="module", params=["app1", "app2"])
def app_host(request, fleet_host):
    return fleet_host(request.param)


@pytest.fixture(scope="module")
def lb_host(fleet_host):
    return fleet_host("lb1")


def test_service_runs_as_its_own_user(app_host):
    service = app_host.service(APP)
    assert service.is_running and service.is_enabled
    pid = app_host.check_output(f"systemctl show --property MainPID --value {APP}")
    assert app_host.check_output(f"ps -o user= -p {pid}") == APP
    assert app_host.user(APP).shell == "/usr/sbin/nologin"


def test_unit_is_hardened(app_host):
    shown = app_host.check_output(f"systemctl show {APP} " + " ".join(f"--property {p}" for p in HARDENING))
    properties = dict(line.split("=", 1) for line in shown.splitlines())
    assert properties == HARDENING


def main_pid(host):
    return host.check_output(f"systemctl show --property MainPID --value {APP}")


def test_running_service_has_no_privileges(app_host):
    status = app_host.check_output(f"cat /proc/{main_pid(app_host)}/status")
    fields = dict(line.split(":\t", 1) for line in status.splitlines())
    assert {name: fields[name] for name in RUNNING} == RUNNING


def test_running_service_listens_with_the_kernels_backlog_and_its_own_file_limit(app_host):
    """The sandbox must not cost capacity: Go takes its listen backlog from /proc/sys/net/core/somaxconn (128 when it
    cannot read it), and cannot raise its open-file limit itself (the filter refuses setrlimit)."""
    somaxconn = int(app_host.check_output("cat /proc/sys/net/core/somaxconn"))
    listening = app_host.check_output("ss -Hltn 'sport = :8000'").split()
    assert int(listening[2]) == somaxconn > 128, listening  # Send-Q of a listening socket: its backlog
    limits = app_host.check_output(f"cat /proc/{main_pid(app_host)}/limits")
    soft, hard = re.search(r"^Max open files\s+(\d+)\s+(\d+)", limits, re.M).groups()
    assert int(soft) == int(hard) > 1024, limits  # LimitNOFILE, as far as the host allows; not systemd's soft 1024


def test_running_service_cannot_write_under_usr(app_host):
    # As the service user with no capability, in the running process's own mount namespace: refused by a
    # read-only mount (EROFS), not only by file modes, as it would be outside the sandbox (EACCES).
    # Entering the namespace takes CAP_SYS_ADMIN; the inner setpriv drops it before `touch` runs.
    caps = "--inh-caps +sys_admin,+sys_chroot --ambient-caps +sys_admin,+sys_chroot"
    probe = app_host.run(f"setpriv --reuid {APP} --regid {APP} --clear-groups {caps} nsenter -t {main_pid(app_host)} "
                         f"-m setpriv --inh-caps -all --ambient-caps -all touch /usr/written-by-{APP}")
    assert probe.rc != 0 and "Read-only file system" in probe.stderr, probe.stderr
    assert not app_host.file(f"/usr/written-by-{APP}").exists


def exposure(text):
    """The overall exposure level that `systemd-analyze security UNIT` prints, as a number."""
    return float(re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", text).group(1))


def test_unit_exposure_is_at_most_1_5(app_host):
    level = exposure(app_host.check_output(f"systemd-analyze security {APP}.service"))
    print(f"systemd-analyze security {APP}.service: exposure {level}")
    assert level <= MAX_EXPOSURE


def test_current_release_is_the_deployed_version(app_host):
    assert app_host.file(f"/opt/{APP}/current").linked_to == f"/opt/{APP}/releases/1.0.0"
    fact = app_host.file("/etc/ansible/facts.d/user_api.fact").content_string
    assert '"version": "1.0.0"' in fact


def test_health_answers_200(app_host):
    assert app_host.check_output("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/healthz") == "200"


def test_nginx_config_is_valid(lb_host):
    assert lb_host.run("nginx -t").rc == 0
    assert lb_host.service("nginx").is_running


def test_lb_listens_with_a_queue_as_long_as_the_services(lb_host):
    """Nginx's own default backlog (511) drops the SYNs of a burst its workers have not accepted yet."""
    somaxconn = int(lb_host.check_output("cat /proc/sys/net/core/somaxconn"))
    listening = lb_host.check_output("ss -Hltn 'sport = :80'").split()
    assert int(listening[2]) == min(4096, somaxconn) > 511, listening


def test_stub_status_is_on_localhost_only(lb_host, lab):
    assert "Active connections" in lb_host.check_output("curl -s http://127.0.0.1:8081/nginx_status")
    lb = addresses(lab, "lb")[0]
    assert lb_host.run(f"curl -s --max-time 2 http://{lb}:8081/nginx_status").rc != 0


@pytest.mark.parametrize("path", ["/healthz", "/metrics"])
def test_health_and_metrics_reach_the_lb_but_not_its_users(lb_host, lab, lb_url, path):
    """The LB asks each backend on its own address; its public port does not pass these paths on."""
    app = addresses(lab, "app")[0]
    assert lb_host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' http://{app}:8000{path}") == "200"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{lb_url}{path.lstrip('/')}", timeout=5)
    assert refused.value.code == 404


def test_lb_has_the_cpu_weight_of_a_hundred_app_hosts(lb_host, app_host):
    """In the lab the LB shares the cores with every app host (a real one has its own), so a burst of work on the
    app hosts must not starve it."""
    assert int(lb_host.file(CPU_SHARES).content_string) >= 100 * int(app_host.file(CPU_SHARES).content_string)


def test_lb_answers_from_every_live_host_with_the_deployed_version(lb_url):
    assert answers(lb_url, 20) == {"app1": "1.0.0", "app2": "1.0.0"}
    status, body = get_json(lb_url)
    assert status == 200 and body["service"] == APP


def host_state(fleet_host):
    """What a bad deploy could touch on each app host: the binary, the symlink, the running process."""
    state = {}
    for name in ("app1", "app2"):
        host = fleet_host(name)
        state[name] = (host.check_output(f"sha256sum /opt/{APP}/releases/1.0.0/{APP}"),
                       host.file(f"/opt/{APP}/current").linked_to,
                       host.check_output(f"systemctl show --property MainPID --value {APP}"))
    return state


def test_checksum_mismatch_fails_before_any_host_changes(fleet_host, playbook, tmp_path):
    artifact = PROJECT / "build" / f"{APP}-1.0.0-linux-amd64"
    tampered = tmp_path / artifact.name
    tampered.write_bytes(artifact.read_bytes() + b"\0")
    checksum_file = (PROJECT / "build" / f"{artifact.name}.sha256").read_text()
    (tmp_path / f"{artifact.name}.sha256").write_text(checksum_file)
    published = checksum_file.split()[0]
    before = host_state(fleet_host)

    runner = playbook("site.yml", app_version="1.0.0", app_artifact_dir=str(tmp_path))

    assert runner.rc != 0
    actual = hashlib.sha256(tampered.read_bytes()).hexdigest()
    assert any(f"checksum mismatch for {tampered}: its sha256 is {actual} but {tampered}.sha256 says {published}"
               in message for message in failure_messages(runner)), failure_messages(runner)
    assert host_state(fleet_host) == before
