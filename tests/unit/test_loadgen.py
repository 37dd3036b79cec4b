"""tools/loadgen.py, run as a subprocess against throwaway HTTP servers on 127.0.0.1."""

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

LOADGEN = Path(__file__).resolve().parents[2] / "tools" / "loadgen.py"


def import_loadgen():
    spec = importlib.util.spec_from_file_location("loadgen", LOADGEN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive unless the client says close, so
    # connections == requests proves the generator opens one per request.
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def do_GET(self):
        with self.server.lock:
            n = self.server.requests
            self.server.requests += 1
        status, version = self.server.respond(n)
        body = json.dumps({"service": "user-api", "version": version, "host": "test"}).encode()
        self.send_response(status)
        if version:
            self.send_header("X-App-Version", version)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    """`respond(n)` -> (status, X-App-Version or None) for the n-th request received."""

    daemon_threads = True
    request_queue_size = 512  # default 5 drops SYNs in bursts; that would be the server's fault

    def __init__(self, respond):
        super().__init__(("127.0.0.1", 0), Handler)
        self.respond = respond
        self.lock = threading.Lock()
        self.connections = self.requests = 0
        self.url = f"http://127.0.0.1:{self.server_address[1]}/"


@pytest.fixture
def serve():
    servers = []

    def start(respond):
        server = Server(respond)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def free_port():
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loadgen(tmp_path, *args):
    out = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, str(LOADGEN), *args, "--json", str(out)],
                          capture_output=True, text=True, timeout=60)
    return proc, json.loads(out.read_text()) if out.exists() else None


def assert_consistent(report):
    rows = report["responses"]
    assert len(rows) == report["requests"] == report["ok"] + report["failed"]
    assert sum(report["by_status"].values()) == report["requests"]
    assert sum(report["versions"].values()) == report["ok"]
    timeline = report["timeline"]
    assert [e["t"] for e in timeline] == list(range(len(timeline)))
    assert sum(e["sent"] for e in timeline) == report["requests"]
    assert sum(e["failed"] for e in timeline) == report["failed"]
    assert sum(sum(e["versions"].values()) for e in timeline) == report["ok"]
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)  # start order


def test_version_switch_one_connection_per_request(serve, tmp_path):
    server = serve(lambda n: (200, "1.0.0" if n < 100 else "2.0.0"))
    proc, report = loadgen(tmp_path, server.url, "--rate", "100", "--duration", "2", "--fail-on-error")
    assert proc.returncode == 0, proc.stderr
    assert report["requests"] == 200 and report["stopped_by"] == "duration"
    assert server.connections == server.requests == 200
    assert report["by_status"] == {"200": 200}
    assert report["versions"] == {"1.0.0": 100, "2.0.0": 100}
    assert_consistent(report)
    shares = [share for _, share in import_loadgen().version_share(report, "2.0.0", 0.5)]
    assert shares[0] == 0 and shares[-1] == 1 and shares == sorted(shares)
    assert "2.0.0" in proc.stdout and "1.0.0" in proc.stdout


def test_502_share_counted_as_failures(serve, tmp_path):
    # The 502s carry a version header and the 200s none: only successes count as served.
    server = serve(lambda n: (502, "1.0.0") if n % 4 == 3 else (200, None))
    proc, report = loadgen(tmp_path, server.url, "--rate", "100", "--requests", "40", "--fail-on-error")
    assert proc.returncode == 1
    assert report["stopped_by"] == "requests" and server.connections == 40
    assert report["by_status"] == {"200": 30, "502": 10}
    assert (report["ok"], report["failed"]) == (30, 10)
    assert report["versions"] == {"none": 30}
    assert all(version is None for _, status, version, _ in report["responses"])
    assert_consistent(report)
    assert "502 x10" in proc.stdout


def test_connection_refused(free_port, tmp_path):
    proc, report = loadgen(tmp_path, f"http://127.0.0.1:{free_port}/", "--rate", "50", "--requests", "10")
    assert proc.returncode == 0, proc.stderr
    assert report["by_status"] == {"ConnectionRefusedError": 10}
    assert report["ok"] == 0 and report["latency_ms"]["p50"] is None
    assert_consistent(report)


def test_stalled_server_times_out_and_cap_reports_overload(tmp_path):
    with socket.socket() as stalled:  # listens (kernel accepts) but never answers
        stalled.bind(("127.0.0.1", 0))
        stalled.listen(16)
        url = f"http://127.0.0.1:{stalled.getsockname()[1]}/"
        started = time.monotonic()
        # 10 requests over 0.45 s; the first 4 fill the cap and only time out after 1 s.
        proc, report = loadgen(tmp_path, url, "--rate", "20", "--requests", "10",
                               "--timeout", "1", "--max-in-flight", "4")
        elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert report["by_status"] == {"overload": 6, "timeout": 4}
    assert [r[1] for r in report["responses"]] == ["timeout"] * 4 + ["overload"] * 6
    assert all(r[3] >= 1000 for r in report["responses"][:4])
    assert_consistent(report)
    assert elapsed < 4


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_signal_ends_long_run_with_complete_report(serve, tmp_path, sig):
    server = serve(lambda n: (200, "1.0.0"))
    out = tmp_path / "report.json"
    proc = subprocess.Popen([sys.executable, str(LOADGEN), server.url, "--rate", "100",
                             "--duration", "600", "--json", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while server.requests < 50 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    report = json.loads(out.read_text())
    assert report["stopped_by"] == "signal"
    assert 50 <= report["requests"] < 1000 and report["duration"] < 10
    assert report["requests"] == report["ok"] == server.requests == server.connections
    assert_consistent(report)
    assert "stopped by signal" in stdout


LOCAL = "http://127.0.0.1:9/"


@pytest.mark.parametrize("args, named", [
    ([LOCAL, "--rate", "0"], "--rate 0"),
    ([LOCAL, "--rate", "nan"], "--rate nan"),
    ([LOCAL, "--duration", "0"], "--duration 0"),  # the only way to ask for no bound
    ([LOCAL, "--duration", "7200"], "--duration 7200"),
    ([LOCAL, "--requests", "0"], "--requests 0"),
    # Bounded to one request so a broken check would not flood anyone.
    (["http://8.8.8.8/", "--requests", "1", "--timeout", "0.5"], "8.8.8.8"),
    (["http://172.32.0.1/", "--requests", "1", "--timeout", "0.5"], "172.32.0.1"),  # just past 172.16/12
    (["https://127.0.0.1:8080/"], "https://127.0.0.1:8080/"),
    ([LOCAL, "--header", "X-Canary: always\r\nHost: elsewhere"], "--header 'X-Canary: always\\r\\nHost: elsewhere'"),
    ([LOCAL, "--header", "X-Canary"], "--header 'X-Canary'"),
])
def test_bad_arguments_exit_2_naming_the_value(tmp_path, args, named):
    proc, report = loadgen(tmp_path, *args)
    assert proc.returncode == 2
    assert named in proc.stderr
    assert report is None and proc.stdout == ""


def test_headers_go_into_every_request():
    ip, port, request = import_loadgen().resolve_target("http://127.0.0.1:8080/healthz",
                                                         ["X-Canary: always", "Cookie: uid=a"])
    assert (ip, port) == ("127.0.0.1", 8080)
    assert request == (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: loadgen\r\nX-Canary: always\r\n"
                       b"Cookie: uid=a\r\nAccept: */*\r\nConnection: close\r\n\r\n")


def test_paused_generator_shows_lag_and_catches_up(serve, tmp_path):
    server = serve(lambda n: (200, "1.0.0"))
    out = tmp_path / "report.json"
    proc = subprocess.Popen([sys.executable, str(LOADGEN), server.url, "--rate", "100",
                             "--duration", "1.5", "--quiet", "--json", str(out)])
    try:
        deadline = time.monotonic() + 10
        while server.requests < 80 and time.monotonic() < deadline:  # the pause spans the end of second 0
            time.sleep(0.01)
        proc.send_signal(signal.SIGSTOP)
        time.sleep(0.4)
        proc.send_signal(signal.SIGCONT)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
    report = json.loads(out.read_text())
    assert report["max_lag_ms"] >= 350
    # Open loop: the requests due during the pause are still sent, not skipped - so the average hides the
    # pause, and only the second it fell in shows it.
    assert report["requests"] == report["ok"] == server.connections == 150
    assert import_loadgen().short_seconds(report) != []
    assert_consistent(report)


def test_keeps_up_at_300_per_second(serve, tmp_path):
    server = serve(lambda n: (200, "1.0.0"))
    proc, report = loadgen(tmp_path, server.url, "--rate", "300", "--duration", "3", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert report["requests"] == 900 and report["ok"] == 900
    assert server.connections == 900
    assert report["achieved_rate"] >= 290
    assert report["max_lag_ms"] < 100
    assert import_loadgen().short_seconds(report) == []
    assert_consistent(report)
    # the witness is scheduled before the deploy it watches when it may be (root), else as it was started
    assert report["scheduler"] == (f"SCHED_RR {import_loadgen().PRIORITY}" if os.geteuid() == 0 else "SCHED_OTHER")


def test_version_share_from_report_or_file(tmp_path):
    report = {"responses": [
        [0.1, 200, "1.0.0", 1.0], [0.2, 200, "1.0.0", 1.0],
        [1.1, 200, "1.0.0", 1.0], [1.2, 200, "2.0.0", 1.0], [1.3, 502, None, 1.0],
        [2.2, "ConnectionRefusedError", None, 0.1],
        [3.5, 200, "2.0.0", 1.0],
    ]}
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    version_share = import_loadgen().version_share
    assert version_share(report, "2.0.0") == [(0, 0.0), (1, 0.5), (3, 1.0)]
    assert version_share(str(path), "2.0.0", 2.0) == [(0, 0.25), (2, 1.0)]


def steady(rate, seconds, start=0.0):
    """Send times of an open loop that kept its schedule: one request every 1/rate s from `start`."""
    return [start + i / rate for i in range(round(rate * seconds))]


def late(times, by):
    return [t + by for t in times]


@pytest.mark.parametrize("times, duration, short", [
    (steady(300, 5), 5.0, []),
    # a request due at the end of a second and sent 5 ms late counts in the next: 299 then 301
    (steady(300, 2) + late(steady(300, 3, 2), 0.005), 5.0, []),
    # stalled from 2.0 to 3.0 s, then caught up: 600 sent in second 3, the average is still 300/s
    (steady(300, 2) + [3.0] * 300 + steady(300, 2, 3), 5.0, [(2, 0, 300)]),
    # a stall over the last 100 ms of second 1: 30 requests go out in second 2, more than 20 ms worth
    (steady(300, 1.9) + late(steady(300, 0.1, 1.9), 0.1) + steady(300, 1, 2), 3.0, [(1, 270, 300)]),
    # stopped by the signal 0.5 s into the last second: it asks for the 150 requests due before the end
    (steady(300, 4.5), 4.5, []),
    # ... and the run went quiet for those 0.5 s
    (steady(300, 4), 4.5, [(4, 0, 150)]),
    # slower than asked throughout: every second short
    (steady(250, 3), 3.0, [(0, 250, 300), (1, 250, 300), (2, 250, 300)]),
], ids=["steady", "boundary jitter", "stalled second caught up", "100 ms stall", "partial last second",
        "quiet last second", "slow"])
def test_short_seconds_finds_each_second_below_the_rate(times, duration, short):
    report = {"target_rate": 300, "duration": duration,
              "responses": [[round(t, 3), 200, "1.0.0", 1.0] for t in times]}
    assert import_loadgen().short_seconds(report) == short


def test_short_seconds_does_not_count_overload_as_sent():
    times = steady(300, 2)
    rows = [[round(t, 3), "overload" if 1.0 <= t < 1.5 else 200, None, 0.0] for t in times]
    assert import_loadgen().short_seconds({"target_rate": 300, "duration": 2.0, "responses": rows}) == \
        [(1, 150, 300)]


def test_a_flood_stays_in_the_normal_class(serve, tmp_path):
    """Traffic a test throws at the fleet (a flood) must not take real-time CPU from the LB: only the witness may."""
    server = serve(lambda n: (200, "1.0.0"))
    proc, report = loadgen(tmp_path, server.url, "--rate", "50", "--duration", "1", "--quiet", "--normal-priority")
    assert proc.returncode == 0, proc.stderr
    assert report["scheduler"] == "SCHED_OTHER" and report["requests"] == 50
