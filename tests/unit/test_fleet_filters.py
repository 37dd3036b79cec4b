"""The fleet filters: live hosts from the LBs' upstreams, one-line failure texts, upstream server entries, the
connections a drain waits for."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.deployer.plugins.filter import fleet as fleet_filters
from ansible_collections.fleet.deployer.plugins.filter.fleet import failed_step, live_hosts, server_entries

HOSTVARS = {
    "app1": {"app_backend_address": "10.0.0.1:8000"},
    "app2": {"app_backend_address": "10.0.0.2:8000"},
    "app3": {"app_backend_address": "10.0.0.3:8000"},
    "lb1": {"nginx_lb_live_servers": [{"address": "10.0.0.2:8000", "down": True}]},
    "lb2": {"nginx_lb_live_servers": [{"address": "10.0.0.1:8000"}]},
    "lb3": {},
}


@pytest.mark.parametrize("lbs, live", [
    (["lb1"], ["app2"]),
    (["lb1", "lb2"], ["app1", "app2"]),   # inventory order, drained or not
    (["lb3"], []),                        # no upstream read yet
])
def test_live_hosts(lbs, live):
    assert live_hosts(["app1", "app2", "app3"], HOSTVARS, lbs) == live


@pytest.mark.parametrize("result, text", [
    ({"msg": "Status code was 500\nand not [200]"}, "Verify: Status code was 500 and not [200]"),
    ({}, "Verify: failed"),
    ({"results": [{"item": "lb1", "failed": False, "msg": "ok"}, {"item": "lb2", "failed": True,
                                                                  "msg": "The reload failed"}]},
     "Verify: lb2: The reload failed"),
    ({"results": [{"item": "lb1", "failed": True, "cmd": ["curl"], "stdout_lines": ["200 1.0.0", "200 1.0.0",
                                                                                    "502 "]}]},
     "Verify: lb1: answered 200 1.0.0, 502"),
])
def test_failed_step(result, text):
    assert failed_step(result, "Verify") == text


def test_server_entries():
    assert server_entries(["a:1", "b:2"], {"down": False, "max_fails": 1}) == [
        {"address": "a:1", "down": False, "max_fails": 1}, {"address": "b:2", "down": False, "max_fails": 1}]


@pytest.mark.parametrize("port, ignored, expected", [
    (8000, [], "( sport = :8000 ) and not ( dst 127.0.0.0/8 )"),
    ("8000", ["10.0.0.9", "fd00::9"],
     "( sport = :8000 ) and not ( dst 127.0.0.0/8 ) and not ( dst 10.0.0.9 ) and not ( dst fd00::9 )"),
])
def test_open_connections_filter(port, ignored, expected):
    assert fleet_filters.open_connections_filter(port, ignored) == expected


@pytest.mark.parametrize("port, ignored, message", [
    (8000, ["10.0.0.9 ) or ( dst 0.0.0.0/0"], "nginx_lb_drain_ignore_addresses: '10.0.0.9 ) or ( dst 0.0.0.0/0' is not"),
    (8000, ["mon1"], "'mon1' is not an IP address"),
    ("8000'; reboot", [], "the backend port=\"8000'; reboot\" must be a whole number from 1 to 65535"),
    (99999, [], "the backend port=99999 must be a whole number from 1 to 65535"),
])
def test_open_connections_filter_refuses_what_is_not_an_address_or_a_port(port, ignored, message):
    with pytest.raises(AnsibleFilterError) as refused:
        fleet_filters.open_connections_filter(port, ignored)
    assert message in str(refused.value)


def test_live_hosts_match_in_one_normalised_form():
    hostvars = {"app1": {"app_backend_address": "App1.example:8000"}, "app2": {"app_backend_address": "[FD00::2]:80"},
                "lb1": {"nginx_lb_live_servers": [{"address": "app1.example:8000"}, {"address": "[fd00::2]:80"}]}}

    assert live_hosts(["app1", "app2"], hostvars, ["lb1"]) == ["app1", "app2"]
