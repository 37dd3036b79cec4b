"""The fault matrix: rolling.yml on 4 live hosts behind lb1 under 300 requests/s on new connections, measured
until 10 s after, while something goes wrong. Each row asserts what users saw (failed requests), what the LB's
log saw (requests for which a backend failed) and the end state of every host and of the LB; the numbers of
each row are printed at the end as bench/RESULTS.md's table. The tests run in file order, each from the state the
one before left: every row but the last ends with the whole fleet serving.

The matrix runs without the bake after each batch (rolling_bake_seconds=0): it is about the drain, deploy and
lock paths under faults, and 10 s of judged traffic per batch would add minutes and measure nothing here; the
bake is tested in the rolling scenario."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
from conftest import (LAB_DIR, LOCK_FILE, PROJECT, TAIL_SECONDS, UPSTREAM_FILE, addresses, assert_nothing_dropped,
                      changed_hosts, failure_messages, lb_log, report_text, under_load, upstream_failures, write_lock)

APPS = ["app1", "app2", "app3", "app4"]
HOOKS = PROJECT / "molecule" / "faults" / "hooks"
MATRIX = {}  # row -> what bench/RESULTS.md's table shows


@pytest.fixture(scope="module", autouse=True)
def matrix_table(request):
    """Prints the rows this run measured, in bench/RESULTS.md's shape, when the module ends."""
    yield
    lines = ["", "| fault | requests | failed | upstream failures (LB log) | end state |", "|---|---|---|---|---|"]
    lines += [f"| {row} | {r['requests']:,} | {r['failed']} | {r['upstream']} | {r['end']} |"
              for row, r in sorted(MATRIX.items())]
    (LAB_DIR / "fault-matrix.md").write_text("\n".join(lines) + "\n")
    request.config.pluginmanager.get_plugin("terminalreporter").write_line("\n".join(lines))


@pytest.fixture(scope="module")
def lb(fleet_host):
    return fleet_host("lb1")


NO_BAKE = {"rolling_bake_seconds": 0}
LOCK_TASK = "Take the deploy lock on every load balancer at once, if no other run holds one"


@pytest.fixture(scope="module")
def playbook(playbook):
    """conftest's playbook, without the bake."""
    return lambda name, prompts=None, **extravars: playbook(name, prompts, **dict(NO_BAKE, **extravars))


@pytest.fixture(scope="module")
def backend(lab):
    return {host["name"]: f"{host['address']}:8000" for host in lab["hosts"] if "app" in host["groups"]}


def container(name):
    return f"{LAB_DIR.name}-{name}"


def podman(*args):
    subprocess.run(["podman", *args], check=True, capture_output=True)


def podman_state(name):
    """The lab container's state: running, exited, ..."""
    return subprocess.run(["podman", "inspect", "--format", "{{.State.Status}}", container(name)], check=True,
                          capture_output=True, text=True).stdout.strip()


def fleet_state(lb, backend):
    """{host: version it answers, or 'down'} asked from the LB, whether the LB marks it down, and nginx -t."""
    upstream = lb.file(UPSTREAM_FILE).content_string
    state = {}
    for name, address in backend.items():
        answer = lb.run(f"curl --silent --max-time 2 http://{address}/")
        version = json.loads(answer.stdout)["version"] if answer.rc == 0 else "down"
        marked_down = bool(re.search(rf"server {re.escape(address)}\b[^;]*\bdown\b", upstream))
        state[name] = f"{version}{' (drained)' if marked_down else ''}"
    state["nginx -t"] = "ok" if lb.run("nginx -t").rc == 0 else "fails"
    return state


def serving(version, hosts=APPS):
    return dict({name: version for name in hosts}, **{"nginx -t": "ok"})


def record(row, report, lines, end):
    MATRIX[row] = {"requests": report["requests"], "failed": report["failed"],
                   "upstream": len(upstream_failures(lines)), "end": end}


def assert_refused_before_any_change(runner, lb, before_upstream, *named):
    messages = " ".join(failure_messages(runner))
    assert runner.rc != 0
    for text in named:
        assert text in messages, messages
    assert changed_hosts(runner) == {}
    assert lb.file(UPSTREAM_FILE).content_string == before_upstream


# ---- 4. the artifact missing, and its checksum wrong ------------------------------------------------------------

@pytest.fixture
def bad_checksum(tmp_path):
    for suffix in ("", ".sha256"):
        (tmp_path / f"user-api-1.1.0-linux-amd64{suffix}").write_bytes(
            (PROJECT / "build" / f"user-api-1.1.0-linux-amd64{suffix}").read_bytes())
    (tmp_path / "user-api-1.1.0-linux-amd64.sha256").write_text("0" * 64 + "  user-api-1.1.0-linux-amd64\n")
    return tmp_path


def test_4_artifact_missing_or_wrong_is_refused_before_any_change(load, playbook, lb, backend, bad_checksum):
    before = lb.file(UPSTREAM_FILE).content_string
    runner, report, _ = under_load(load, playbook, "rolling.yml", app_version="1.1.7")
    lines = assert_nothing_dropped(report)
    assert_refused_before_any_change(runner, lb, before, "user-api-1.1.7-linux-amd64")
    runner, report, _ = under_load(load, playbook, "rolling.yml", app_version="1.1.0",
                                   app_artifact_dir=str(bad_checksum))
    lines += assert_nothing_dropped(report)
    assert_refused_before_any_change(runner, lb, before, "sha256")
    assert fleet_state(lb, backend) == serving("1.0.0")
    record("4. artifact missing / checksum wrong", report, lines, "refused before any change; all on 1.0.0")


# ---- 3. nginx -t failing on the LB -------------------------------------------------------------------------------

def test_3_broken_nginx_config_is_refused_before_any_change(load, playbook, lb, backend):
    before = lb.file(UPSTREAM_FILE).content_string
    lb.run_expect([0], "echo 'this is not nginx;' > /etc/nginx/modules-enabled/zz-broken.conf")
    try:
        runner, report, _ = under_load(load, playbook, "rolling.yml", app_version="1.1.0")
    finally:
        lb.run_expect([0], "rm -f /etc/nginx/modules-enabled/zz-broken.conf")
    lines = assert_nothing_dropped(report)
    assert_refused_before_any_change(runner, lb, before, "zz-broken.conf")
    assert fleet_state(lb, backend) == serving("1.0.0")
    record("3. nginx -t fails on the LB (broken unrelated include)", report, lines,
           "refused before any change; all on 1.0.0")


# ---- 2. a host unreachable over SSH from the start ----------------------------------------------------------------

def test_2_unreachable_host_is_refused_before_any_change(load, playbook, lb, backend):
    before = lb.file(UPSTREAM_FILE).content_string
    podman("exec", container("app3"), "sh", "-c", "systemctl stop ssh.service ssh.socket; pkill -x sshd; true")
    try:
        runner, report, _ = under_load(load, playbook, "rolling.yml", app_version="1.1.0")
    finally:
        podman("exec", container("app3"), "systemctl", "start", "ssh.service")
    lines = assert_nothing_dropped(report)
    assert_refused_before_any_change(runner, lb, before, "app3")
    assert runner.stats["dark"] == {"app3": 1}
    assert fleet_state(lb, backend) == serving("1.0.0")
    record("2. a host unreachable over SSH from the start", report, lines,
           "refused before any change, naming it; all on 1.0.0")


# ---- 5. two deploys at once ---------------------------------------------------------------------------------------

def test_5_second_deploy_waits_then_refuses_naming_the_first(load, playbook, lb, backend, tmp_path):
    first, holds_the_lock = {}, threading.Event()

    def watch(event):
        if event["event"] == "runner_on_ok" and event["event_data"].get("task") == LOCK_TASK:
            holds_the_lock.set()
        return True

    slow = dict(app_version="1.1.0", rolling_min_healthy_seconds=3)
    thread = threading.Thread(target=lambda: first.update(runner=playbook("rolling.yml", event_handler=watch, **slow)))
    generator = load(rate=300)
    time.sleep(2)
    started = time.time()
    thread.start()
    assert holds_the_lock.wait(timeout=60), "the first deploy never took the lock"
    second = playbook("rolling.yml", app_version="1.2.0", fleet_lock_wait=3)
    summary = tmp_path / "summary.json"  # CI's way in: the fleet command exits 4 and names the holder
    fleet = subprocess.run([str(PROJECT / ".venv" / "bin" / "fleet"), "deploy", "rolling", "--version", "1.2.0",
                            "-e", "fleet_lock_wait=0", "--inventory", str(LAB_DIR / "inventory"),
                            "--report-dir", str(tmp_path / "report"), "--json", str(summary)], capture_output=True)
    thread.join()
    returned = time.time()
    time.sleep(TAIL_SECONDS)
    report = dict(generator.stop(), playbook={"started": started, "returned": returned})
    lines = assert_nothing_dropped(report)
    assert first["runner"].rc == 0, failure_messages(first["runner"])
    output = second.stdout.read()
    holder = re.escape(f"root@{os.uname().nodename}") + r" \(run [0-9a-f]{16}\) running rolling\.yml for 1\.1\.0"
    assert re.search(rf"The deploy lock on lb1 is held by {holder} \(pid \d+, .*\)\. Waiting up to 3 s", output)
    assert re.search(rf"held by {holder} .* Waited 3 s \(fleet_lock_wait\); nothing was changed",
                     " ".join(failure_messages(second)))
    assert second.rc != 0 and changed_hosts(second) == {}
    assert fleet.returncode == 4, fleet.stderr
    locked = json.loads(summary.read_text())
    assert locked["result"] == "locked"
    assert any("running rolling.yml for 1.1.0" in failure["message"] for failure in locked["failures"]), locked
    assert fleet_state(lb, backend) == serving("1.1.0")
    record("5. two deploys at once", report, lines, "the second waited 3 s and refused naming the first; all on 1.1.0")


@pytest.mark.parametrize("expires_in, extravars, warning", [
    (-30, {}, "Took over the deploy lock on lb1 from ops@ci-7 (run c17e57c17e57c17e) running canary.yml for 9.9.9 "
              "(pid 4242, since"),
    (600, {"fleet_lock_break": True},
     "Broke the deploy lock on lb1 held by ops@ci-7 (run c17e57c17e57c17e) running canary.yml for 9.9.9"),
])
def test_5_a_lock_whose_holder_is_gone_is_taken_over_or_broken(playbook, lb, expires_in, extravars, warning):
    write_lock(lb, "ci-7", expires_in)
    runner = playbook("rolling.yml", app_version="1.1.0", **extravars)
    assert runner.rc == 0, failure_messages(runner)
    assert warning in runner.stdout.read()
    assert lb.run(f"test -e {LOCK_FILE}").rc == 1  # released at the end


def lock_holders_while(thread, lb):
    """The run ids in lb's lock file, read every 0.2 s until thread ends (None while no run holds it)."""
    seen = []
    while thread.is_alive():
        found = lb.run(f"cat {LOCK_FILE}")
        seen.append(json.loads(found.stdout)["run_id"] if found.rc == 0 and found.stdout.strip() else None)
        time.sleep(0.2)
    return seen


def test_5_two_controllers_with_one_hostname_one_waits_and_a_deploy_past_its_ttl_keeps_the_lock(playbook, lb,
                                                                                               backend):
    """Two controllers in two containers with the same hostname: the second ansible-playbook runs in a pid
    namespace of its own (unshare), where the first one's pid is not visible, as in another container. It must
    wait for the first's lease, never judge it dead by its pid; the first outlives fleet_lock_ttl and keeps its
    lock, renewed at every batch."""
    ttl = 30  # above one batch (drain, 8 s healthy, re-add: about 16 s here), below the whole rollout of 4 hosts
    first = {}
    run_first = threading.Thread(target=lambda: first.update(runner=playbook(
        "rolling.yml", app_version="1.0.0", rolling_min_healthy_seconds=8, rolling_bake_seconds=0,
        fleet_lock_ttl=ttl)))
    started = time.time()
    run_first.start()
    while lb.run(f"test -s {LOCK_FILE}").rc != 0 and time.time() < started + 60:
        time.sleep(0.2)
    second = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", "ansible-playbook", "-i", str(LAB_DIR / "inventory"),
         "playbooks/rolling.yml", "-e", "app_version=1.1.0", "-e", "fleet_lock_wait=300"],
        cwd=PROJECT, env=dict(os.environ, ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg")), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    holders = lock_holders_while(run_first, lb)
    first_took = time.time() - started
    output, _ = second.communicate(timeout=600)
    assert first["runner"].rc == 0, failure_messages(first["runner"])
    assert first_took > ttl * 1.5, first_took  # the first ran well past its ttl...
    first_run_id = next(holder for holder in holders if holder)
    held = holders[holders.index(first_run_id):]
    # ...and held the lock all along: it went from the first run to none (its release), never to the second
    assert next((holder for holder in held if holder != first_run_id), None) is None, holders
    assert "Took over" not in first["runner"].stdout.read() + output
    assert re.search(rf"The deploy lock on lb1 is held by root@{re.escape(os.uname().nodename)} \(run "
                     rf"{first_run_id}\) running rolling\.yml for 1\.0\.0 .* Waiting up to 300 s", output), output
    assert second.returncode == 0, output  # then it took the lock and deployed 1.1.0 after the first
    assert fleet_state(lb, backend) == serving("1.1.0")
    assert lb.run(f"test -e {LOCK_FILE}").rc == 1  # both released theirs


# ---- 8. Nginx restarted mid-rollout --------------------------------------------------------------------------------

def nginx_started(lb):
    """When systemd last started Nginx's main process (its monotonic clock, µs)."""
    return int(lb.check_output("systemctl show --property ExecMainStartTimestampMonotonic --value nginx"))


def test_8_nginx_restarted_mid_rollout(load, playbook, lb, backend):
    before = nginx_started(lb)
    runner, report, returned = under_load(
        load, playbook, "rolling.yml", app_version="1.0.0", rolling_hooks={"after_drain": str(HOOKS / "restart_nginx.yml")},
        fault_host="app2")
    assert runner.rc == 0, failure_messages(runner)
    assert nginx_started(lb) > before, "Nginx was never restarted: the fault did not happen"
    restarted = [t for t, outcome, _, _ in report["responses"] if outcome != 200]
    # Users lose only the connections opened while no Nginx listened: under a second (300 requests), once.
    lines = assert_nothing_dropped(report, failed_share=300 / report["requests"])
    assert not restarted or max(restarted) - min(restarted) < 1.0, restarted
    assert fleet_state(lb, backend) == serving("1.0.0")
    record("8. Nginx on the LB restarted mid-rollout", report, lines,
           f"rollout completed; all on 1.0.0 (users lost the connections of {max(restarted, default=0) - min(restarted, default=0):.2f} s)")


# ---- 6. the controller killed mid-batch ----------------------------------------------------------------------------

def ansible_playbook(*args):
    return subprocess.Popen(["ansible-playbook", "-i", str(LAB_DIR / "inventory"), *args], cwd=PROJECT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def test_6_controller_killed_mid_batch_then_reconcile_and_rerun_finish(load, playbook, lb, backend):
    generator = load(rate=300)
    time.sleep(2)
    started = time.time()
    controller = ansible_playbook(str(PROJECT / "playbooks" / "rolling.yml"), "-e", "app_version=1.1.0",
                                  "-e", "rolling_batch=2", "-e", "rolling_bake_seconds=0")
    deadline = time.time() + 120
    while " down" not in lb.file(UPSTREAM_FILE).content_string:
        assert time.time() < deadline and controller.poll() is None, "no host was drained"
        time.sleep(0.2)
    time.sleep(1.5)  # mid-batch: drained, being replaced
    os.killpg(controller.pid, signal.SIGKILL)
    controller.wait()
    assert "down" in lb.file(UPSTREAM_FILE).content_string  # the killed run left hosts out of rotation
    reconciled = playbook("reconcile.yml")
    rerun = playbook("rolling.yml", app_version="1.1.0", rolling_batch=2)
    returned = time.time()
    time.sleep(TAIL_SECONDS)
    report = dict(generator.stop(), playbook={"started": started, "returned": returned})
    lines = assert_nothing_dropped(report)
    assert reconciled.rc == 0, failure_messages(reconciled)
    assert "that process no longer runs on this controller" in reconciled.stdout.read()
    assert rerun.rc == 0, (failure_messages(rerun), report_text(rerun))
    assert fleet_state(lb, backend) == serving("1.1.0")
    record("6. the controller killed (SIGKILL) mid-batch, then reconcile.yml and the same command", report, lines,
           "reconcile took the lock over and re-added the drained hosts; the re-run finished; all on 1.1.0")


# ---- 7. a slow request in flight while its host restarts -----------------------------------------------------------

@pytest.fixture
def slow_app1(fleet_host):
    """app1's running service answers every GET / after 2 s (its next start is normal again)."""
    app1 = fleet_host("app1")
    fault = "/etc/systemd/system/user-api.service.d/fault.conf"
    app1.run_expect([0], f"mkdir -p {os.path.dirname(fault)} && printf '[Service]\\nEnvironment=USER_API_FAULT_LATENCY=2s\\n' "
                         f"> {fault} && systemctl daemon-reload && systemctl restart user-api")
    app1.run_expect([0], "for i in $(seq 50); do curl -sf localhost:8000/healthz && break; sleep 0.2; done")
    app1.run_expect([0], f"rm {fault} && systemctl daemon-reload")


def test_7_slow_request_completes_while_its_host_restarts(load, playbook, lb, backend, slow_app1):
    result_file = "/tmp/fault-slow-request"
    lb.run(f"rm -f {result_file}")
    runner, report, _ = under_load(load, playbook, "rolling.yml", app_version="1.0.0", fault_host="app1",
                                   fault_result_file=result_file,
                                   rolling_hooks={"before_deploy": str(HOOKS / "slow_request.yml")})
    assert runner.rc == 0, failure_messages(runner)
    lines = assert_nothing_dropped(report)
    status, seconds = lb.file(result_file).content_string.split()
    assert status == "200" and float(seconds) >= 2.0, (status, seconds)
    assert fleet_state(lb, backend) == serving("1.0.0")
    record("7. a 2 s request in flight while its host restarts", report, lines,
           f"it completed with 200 after {float(seconds):.2f} s (SIGTERM drain); all on 1.0.0")


# ---- 1. hosts killed mid-rollout (last: it leaves two hosts dead) ------------------------------------------------

def test_1_hosts_killed_mid_rollout(load, playbook, lb, backend):
    # app2 dies while it is being replaced, app4 (not yet reached, in rotation) at the same moment
    runner, report, _ = under_load(load, playbook, "rolling.yml", app_version="1.1.0", fault_host="app2",
                                   fault_containers=[container("app2"), container("app4")],
                                   rolling_hooks={"before_deploy": str(HOOKS / "stop_container.yml")})
    assert runner.rc != 0 and "app2" in runner.stats["dark"]  # the rollout stopped at the dead host
    # no user saw an error (Nginx retried what the dead app4 refused), and no backend but app4 failed an attempt
    lines = assert_nothing_dropped(report, failing_backends={backend["app4"]})
    assert upstream_failures(lines), "no request met the dead app4: the fault did not happen"
    assert all(podman_state(name) == "exited" for name in ("app2", "app4"))
    reconciled = playbook("reconcile.yml")
    assert reconciled.rc == 0, failure_messages(reconciled)
    state = fleet_state(lb, backend)
    assert {name: state[name] for name in ("app1", "app3", "nginx -t")} == {"app1": "1.1.0", "app3": "1.0.0",
                                                                            "nginx -t": "ok"}
    assert state["app2"] == state["app4"] == "down (drained)"
    record("1. hosts killed mid-rollout (one being replaced, one not yet reached)", report, lines,
           "stopped at app2 (unreachable); app1 on 1.1.0, app3 on 1.0.0 serving; reconcile took app2, app4 out")
