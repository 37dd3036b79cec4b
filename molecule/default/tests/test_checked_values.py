"""site.yml and the values that reach the unit, the env file and Nginx's files: an environment value reaches the
running service exactly as given (systemd's own EnvironmentFile= parser, which the unit tests can only imitate),
and a value that would inject a line is refused by a preflight, naming it, before any host changes."""

import base64

import pytest
from conftest import failure_messages
from test_default import APP, host_state, main_pid

ROUTE_FILE = f"/etc/nginx/upstreams/{APP}-route.conf"
# UTF-8, quotes, a $ that must not expand, a backslash, blanks at both ends and a second line.
TRICKY = ' café "q" $HOME \\ x `id` \'s\'\nsecond line '


def service_environment(host):
    """The running service's environment, read from the kernel: {name: value} as bytes."""
    raw = base64.b64decode(host.check_output(f"base64 -w0 /proc/{main_pid(host)}/environ"))
    return dict(item.split(b"=", 1) for item in raw.split(b"\0") if item)


def test_an_environment_value_reaches_the_service_exactly(playbook, fleet_host):
    runner = playbook("site.yml", app_version="1.0.0", release_environment={"FLEET_ROUND_TRIP": TRICKY})
    try:
        assert runner.rc == 0, failure_messages(runner)
        for name in ("app1", "app2"):
            assert service_environment(fleet_host(name))[b"FLEET_ROUND_TRIP"] == TRICKY.encode()
    finally:
        assert playbook("site.yml", app_version="1.0.0").rc == 0


@pytest.mark.parametrize("extravars, message", [
    ({"release_environment": {"X\nLD_PRELOAD": "/tmp/evil.so"}},
     'release_environment key="X\\nLD_PRELOAD" is not an environment variable name'),
    ({"app_backend_address": "10.231.0.99:8000; } server { listen 8089; return 200 pwned; } upstream z { server "
                             "10.0.0.9:1"},
     'app_backend_address of app1="10.231.0.99:8000; } server { listen 8089;'),
    ({"release_user": f"{APP}\nExecStartPre=/bin/true"}, f'release_user="{APP}\\nExecStartPre=/bin/true" is not a '
                                                         'system user name'),
    ({"release_app_name": f"{APP}\nExecStartPre=/bin/true"}, 'is not a service name'),
    ({"release_port": 99999}, "release_port=99999 is out of range: a TCP port must be from 1 to 65535."),
    ({"nginx_lb_sticky_cookie": "session-id"}, 'nginx_lb_sticky_cookie="session-id" is not a cookie name Nginx can '
                                               'read: it becomes $cookie_session-id'),
])
def test_a_value_that_would_reach_a_file_unchecked_is_refused_before_any_host_changes(playbook, fleet_host,
                                                                                       extravars, message):
    lb = fleet_host("lb1")
    before = host_state(fleet_host), lb.file(ROUTE_FILE).content_string, lb.file("/etc/nginx/nginx.conf").content_string

    runner = playbook("site.yml", app_version="1.0.0", **extravars)

    assert runner.rc != 0
    assert any(message in failed for failed in failure_messages(runner)), failure_messages(runner)
    after = host_state(fleet_host), lb.file(ROUTE_FILE).content_string, lb.file("/etc/nginx/nginx.conf").content_string
    assert after == before
