"""One check per kind of value that reaches a config file, a unit or a template (plugins/module_utils/inputs.py),
and the fleet.deployer.input_errors filter the roles' preflights run them through."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.deployer.plugins.filter.fleet import host_values, input_errors
from ansible_collections.fleet.deployer.plugins.module_utils import inputs

INJECTED_ADDRESS = '10.231.0.99:8000; } server { listen 8089; return 200 pwned; } upstream z { server 10.0.0.9:1'


@pytest.mark.parametrize('kind, value', [
    ('backend_address', '10.0.0.1:8000'),
    ('backend_address', '[fd00::1]:8000'),
    ('backend_address', 'app1.example:1'),
    ('backend_address', 'app_1:65535'),
    ('upstream_name', 'user-api-canary'),
    ('cookie_name', 'uid'),
    ('cookie_name', 'session_id'),
    ('header_name', 'X-Canary'),
    ('env_key', '_DB_PASSWORD2'),
    ('env_value', 'café "q" $HOME \\ x\nsecond line'),
    ('env_value', 20),
    ('user_name', 'user-api'),
    ('service_name', 'user-api'),
    ('weight', 1),
    ('weight', '1000000'),
    ('port', '8000'),
    ('nginx_time', '1m30s'),
    ('nginx_size', '64k'),
    ('next_upstream', 'error timeout http_502'),
    ('absolute_path', '/opt/user-api'),
    ('absolute_paths', ['/healthz', '/metrics']),
    ('unit_line', '-listen :8000 -log "json"'),
    ('networks', ['10.0.0.1', 'fd00::/64', '192.168.0.0/16']),
])
def test_good_values_pass(kind, value):
    assert inputs.input_errors({kind: {'v': value}}) == []


@pytest.mark.parametrize('kind, name, value, message', [
    ('environment', 'release_environment', {'X\nLD_PRELOAD': '/tmp/evil.so'},
     'release_environment key="X\\nLD_PRELOAD" is not an environment variable name'),
    # A value may be a secret: the message names its variable only.
    ('environment', 'release_environment', {'A': 's3cr3t\0'}, 'release_environment["A"] holds a NUL'),
    ('environment', 'release_environment', {'A': True}, 'release_environment["A"] is not text (quote it'),
    ('environment', 'release_environment', {'A': '\udcff'}, 'is not valid UTF-8 text'),
    ('backend_address', 'app_backend_address', INJECTED_ADDRESS, 'app_backend_address="10.231.0.99:8000; } server'),
    ('backend_address', 'a', '10.0.0.1:99999', 'a="10.0.0.1:99999" does not end in a port from 1 to 65535'),
    ('backend_address', 'a', '10.0.0.1', 'a="10.0.0.1" is not host:port'),
    ('backend_address', 'a', '10.0.0.256:80', 'a="10.0.0.256:80" does not hold a valid IPv4 address'),
    ('backend_address', 'a', '[fd00::zz]:80', 'does not hold an IPv6 address'),
    ('backend_address', 'a', '-app.example:80', 'does not start with an IPv4 address, an [IPv6] address or a DNS name'),
    ('backend_address', 'a', 'App1.example:8000', 'a="App1.example:8000" is not written in its normalised form '
                                                  '"app1.example:8000"'),
    ('backend_address', 'a', '[FD00:0::1]:80', 'normalised form "[fd00::1]:80"'),
    ('backend_address', 'a', None, 'a=null is not a string'),
    ('user_name', 'release_user', 'app\nExecStartPre=/bin/sh', 'release_user="app\\nExecStartPre=/bin/sh" is not a '
                                                               'system user name'),
    ('service_name', 'release_app_name', 'app\nExecStartPre=/x', 'release_app_name="app\\nExecStartPre=/x" is not '
                                                                 'a service name'),
    ('service_name', 'release_app_name', '../etc', 'is not a service name'),
    ('cookie_name', 'nginx_lb_sticky_cookie', 'session-id',
     'nginx_lb_sticky_cookie="session-id" is not a cookie name Nginx can read: it becomes $cookie_session-id, and '
     "Nginx ends a variable's name at the first character that is not a letter, a digit or _ (use session_id)"),
    ('header_name', 'nginx_lb_canary_header', 'X_Canary', 'is not a header name'),
    ('header_name', 'nginx_lb_canary_header', 'X-Canary $x', 'is not a header name'),
    ('upstream_name', 'nginx_lb_upstream', 'app { }', 'is not an upstream name'),
    ('port', 'release_port', 99999, 'release_port=99999 is out of range: a TCP port must be from 1 to 65535'),
    ('port', 'release_port', 0, 'is out of range'),
    ('port', 'release_port', True, 'release_port=true is not a whole number'),
    ('weight', 'weight', 10 ** 9, 'weight=1000000000 is out of range: an Nginx server weight must be from 1 to '
                                  '1000000'),
    ('weight', 'weight', 0, 'is out of range'),
    ('nginx_time', 'nginx_lb_fail_timeout', '10s; } x {', 'is not an Nginx time'),
    ('nginx_size', 'nginx_lb_upstream_zone_size', '1m; x', 'is not an Nginx size'),
    ('next_upstream', 'nginx_lb_proxy_next_upstream', 'error; return 200', 'holds "error;", "return", "200", not'),
    ('absolute_path', 'release_root', '/opt/a\nExecStartPre=/x', 'is not an absolute path'),
    ('absolute_path', 'release_root', '/opt/../etc', 'is not an absolute path'),
    ('absolute_paths', 'nginx_lb_private_paths', '/healthz', 'is not a list of absolute paths'),
    ('absolute_paths', 'nginx_lb_private_paths', ['/healthz', '/x { return 200; }'],
     'nginx_lb_private_paths[1]="/x { return 200; }" is not an absolute path'),
    ('unit_line', 'release_args', '-listen :8000\nExecStartPre=/bin/sh', 'holds a newline'),
    ('networks', 'nginx_lb_canary_tester_addresses', ['10.0.0.0/8', '10.0.0.1; } x {'],
     '"10.0.0.1; } x {" is not an IP address or network (CIDR) in nginx_lb_canary_tester_addresses'),
    ('networks', 'nginx_lb_canary_tester_addresses', 'lb1', 'is not a list of IP addresses or networks'),
])
def test_bad_values_are_refused_naming_the_variable_and_the_value(kind, name, value, message):
    errors = inputs.input_errors({kind: {name: value}})

    assert len(errors) == 1 and message in errors[0], errors


def test_checks_return_the_normalised_form():
    assert inputs.normalised_address('App1.Example:08000', 'a') == 'app1.example:8000'
    assert inputs.check_port('8000', 'p') == 8000
    assert inputs.check_environment({'A': 1}, 'e') == {'A': '1'}


@pytest.mark.parametrize('address, key', [
    ('App1.example:8000', 'app1.example:8000'),
    ('app1.example', 'app1.example:80'),
    ('[FD00:0:0::1]:8000', '[fd00::1]:8000'),
    ('unix:/run/app.sock', 'unix:/run/app.sock'),
    ('not an address', 'not an address'),
])
def test_address_key_is_one_form_for_every_comparison(address, key):
    assert inputs.address_key(address) == key


def test_filter_names_each_host_and_refuses_an_unknown_kind():
    hostvars = {'app1': {'app_backend_address': INJECTED_ADDRESS}, 'app2': {}}
    values = host_values(['app1', 'app2'], hostvars, 'app_backend_address')

    errors = input_errors({'backend_address': values})

    assert [error.split('=')[0] for error in errors] == ['app_backend_address of app1']  # app2 has none
    with pytest.raises(AnsibleFilterError, match="no check for values of kind 'colour'"):
        input_errors({'colour': {'x': 'blue'}})
