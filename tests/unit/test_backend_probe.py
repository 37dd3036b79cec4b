"""fleet.deployer.backend_probe against real HTTP servers on this machine: health polling, the smoke request,
the stay-healthy checks, and a backend that does not answer."""

import pytest
from http_backends import closed_port, server

from ansible_collections.fleet.deployer.plugins.module_utils.http_health import Probe, address_error


def probe(backends, **params):
    return Probe(dict(dict(health_path="/healthz", health_timeout=0, request_path=None, stay_healthy_seconds=0,
                           version_header="X-App-Version", timeout=2), **params, backends=backends)).run()


@pytest.mark.parametrize("case, health, smoke, params, expected", [
    ("healthy at once", [200], 200, {"request_path": "/"},
     {"health": 200, "health_version": "1.1.0", "request": 200, "version": "1.1.0", "error": ""}),
    ("healthy after two 503s, polled within the timeout", [503, 503, 200], 200,
     {"health_timeout": 3, "request_path": "/"}, {"health": 200, "request": 200}),
    ("503 with no time to wait: asked once, no smoke request", [503, 200], 200, {"request_path": "/"},
     {"health": 503, "health_version": "1.1.0", "request": None, "version": ""}),
    ("smoke request fails", [200], 500, {"request_path": "/"}, {"health": 200, "request": 500}),
    ("health only", [200], 500, {}, {"health": 200, "request": None}),
    ("unhealthy again while it should stay healthy", [200, 200, 503], 200, {"stay_healthy_seconds": 2},
     {"health": 200, "unhealthy": ["503"]}),  # the first check still 200, the second 503
])
def test_probe(case, health, smoke, params, expected):
    httpd, address = server(health, smoke)
    try:
        answer = probe({"app1": address}, **params)["app1"]
    finally:
        httpd.shutdown()
    assert {key: answer[key] for key in expected} == expected, case
    assert answer["address"] == address


def test_every_backend_at_once_and_one_that_does_not_answer():
    servers = [server([200]) for _ in range(3)]
    backends = {f"app{n}": address for n, (_, address) in enumerate(servers, start=1)}
    backends["down1"] = closed_port()
    try:
        answers = probe(backends, health_timeout=1)
    finally:
        for httpd, _ in servers:
            httpd.shutdown()
    assert sorted(answers) == ["app1", "app2", "app3", "down1"]
    assert all(answers[name]["health"] == 200 for name in ("app1", "app2", "app3"))
    assert answers["down1"]["health"] is None and "Connection refused" in answers["down1"]["error"]
    # polled for its whole second while the others answered at once - in parallel, not one after another
    assert 0.8 <= answers["down1"]["seconds"] <= 1.5


def test_no_backends():
    assert probe({}) == {}


@pytest.mark.parametrize("backends, message", [
    ({"app1": "10.0.0.11:8000", "app2": "[::1]:8000"}, ""),
    ({"app1": "10.0.0.11"}, "backend address app1='10.0.0.11' is not host:port (a port from 1 to 65535)"),
    ({"app2": 8000, "app1": "app1:http", "app3": "10.0.0.13:8000", "app4": "10.0.0.14:99999"},
     "backend address app1='app1:http', app2=8000, app4='10.0.0.14:99999' is not host:port (a port from 1 to 65535)"),
])
def test_address_error_names_every_bad_address(backends, message):
    assert address_error(backends) == message
