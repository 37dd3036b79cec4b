# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
# Shared by modules (on the managed host, so standard library only), filters, actions and the roles' preflights.

"""One strict check per kind of value that reaches a configuration file, a systemd unit or a template.

Every check ``check_KIND(value, name)`` takes the value and the name of the variable it came from, and returns the
value in its one normalised form or raises InputError with a message that names the variable, shows the bad value
and says why. A role's preflight runs them through the fleet.deployer.input_errors filter (input_errors() below)
before anything renders or changes; the modules call the same functions on their options, so a value refused in
one place is refused in all.

To add a kind: a function ``check_KIND(value, name)`` here, listed in CHECKS.
"""

from __future__ import annotations

import ipaddress
import json
import re

PORT_RANGE = (1, 65535)
# Nginx itself takes any weight its ngx_atoi reads, but sums the weights of an upstream in one integer and the
# `hash ... consistent` balancer allocates 160 points per unit of weight. 1,000,000 is far above what exact
# canary shares need (fleet.deployer.traffic_weights stays below 10,000 per server for 2-decimal shares).
WEIGHT_RANGE = (1, 1000000)

_DNS_LABEL = re.compile(r'[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?')
_UPSTREAM_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]{0,63}')
_NGINX_VARIABLE_PART = re.compile(r'[A-Za-z0-9_]+')
_HEADER_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9-]*')
_ENV_KEY = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')
# systemd's strict user names (useradd on Debian takes the same without upper case): at most 31 characters.
_USER_NAME = re.compile(r'[a-z_][a-z0-9_-]{0,30}')
# Unit, folder, binary and upstream name at once: no dots (facts.d, unit suffixes), nothing a path or shell reads.
_SERVICE_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_-]{0,63}')
_NGINX_TIME = re.compile(r'(?:\d+(?:ms|[smhdwMy])?)+')
_NGINX_SIZE = re.compile(r'\d+[kKmMgG]?')
# proxy_next_upstream's conditions (ngx_http_proxy_module).
_NEXT_UPSTREAM = {'error', 'timeout', 'invalid_header', 'http_500', 'http_502', 'http_503', 'http_504', 'http_403',
                  'http_404', 'http_429', 'non_idempotent', 'off'}
# A path written unquoted into a unit and an Nginx file: no blank, quote, %, $ or control character.
_ABSOLUTE_PATH = re.compile(r'/[A-Za-z0-9_.@+/-]*')


class InputError(ValueError):
    """A value that must not reach a configuration file; the message names the variable and the value (only the
    variable for a secret one), and why says what is wrong with it (for a caller that words the message its own
    way)."""

    def __init__(self, name, value, why, secret=False):
        super().__init__('%s %s.' % (name, why) if secret else '%s=%s %s.' % (name, shown(value), why))
        self.why = why


def shown(value):
    """value as it appears in a message: quoted and escaped, so a newline or a NUL is visible."""
    return json.dumps(value, ensure_ascii=False, default=str)


def _text(value, name, what):
    if not isinstance(value, str):
        raise InputError(name, value, 'is not a string (%s expected)' % what)
    return value


def _whole_number(value, name, low, high, what):
    """value (an int, or digits as extra-vars bring them) within [low, high]."""
    text = str(value).strip()
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not re.fullmatch(r'\d+', text):
        raise InputError(name, value, 'is not a whole number (%s, %d to %d)' % (what, low, high))
    number = int(text)
    if not low <= number <= high:
        raise InputError(name, value, 'is out of range: %s must be from %d to %d' % (what, low, high))
    return number


def check_port(value, name):
    """A TCP port, 1 to 65535."""
    return _whole_number(value, name, PORT_RANGE[0], PORT_RANGE[1], 'a TCP port')


def check_weight(value, name):
    """An Nginx server weight, 1 to WEIGHT_RANGE[1] (Nginx has no weight 0: a server without traffic is down)."""
    return _whole_number(value, name, WEIGHT_RANGE[0], WEIGHT_RANGE[1], 'an Nginx server weight')


def _host(host, name, value):
    """The host part of an address, normalised: an IP address as Python writes it, a DNS name in lower case."""
    if host.startswith('['):
        try:
            return '[%s]' % ipaddress.IPv6Address(host[1:-1] if host.endswith(']') else '')
        except ValueError:
            raise InputError(name, value, 'does not hold an IPv6 address between its brackets')
    if re.fullmatch(r'[0-9.]+', host):  # looks like IPv4: must be one, so 10.0.0.256 is not taken for a DNS name
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise InputError(name, value, 'does not hold a valid IPv4 address')
    if len(host) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in host.split('.')):
        raise InputError(name, value, 'does not start with an IPv4 address, an [IPv6] address or a DNS name '
                                      '(letters, digits, - and _ in dot-separated labels)')
    return host.lower()


def normalised_address(value, name):
    """host:port - IPv4, [IPv6] or a DNS name - in its normalised form: what Nginx reads, as every comparison
    writes it (host names lower-case, IPv6 compressed)."""
    host, colon, port = _text(value, name, 'host:port').rpartition(':')
    if not colon or not host:
        raise InputError(name, value, 'is not host:port (IPv4, [IPv6] or a DNS name, then a port)')
    if not port.isdigit() or not PORT_RANGE[0] <= int(port) <= PORT_RANGE[1]:
        raise InputError(name, value, 'does not end in a port from %d to %d' % PORT_RANGE)
    return '%s:%d' % (_host(host, name, value), int(port))


def check_backend_address(value, name):
    """An app host's address as the inventory gives it: host:port already in its normalised form, since the
    strategies compare it with the upstream servers as the modules report them (address_key)."""
    normalised = normalised_address(value, name)
    if normalised != value:
        raise InputError(name, value, 'is not written in its normalised form %s (host names in lower case, '
                                      'IPv6 compressed), the one form the upstream servers are compared in'
                                      % shown(normalised))
    return value


def address_key(address):
    """The one form in which server addresses are compared everywhere (the modules, the live set, reconcile):
    host lower-case, IPv6 compressed, port 80 when left out, as Nginx tells two servers apart. An address that is
    no host[:port] (unix:/path, or a broken one) is its own key."""
    text = str(address)
    if text.startswith('unix:'):
        return text
    with_port = text if re.search(r'(?:^[^:\[\]]+|\])(:\d+)$', text) else text + ':80'
    try:
        return normalised_address(with_port, 'address')
    except InputError:
        return text


def _matching(pattern, what, rule):
    """A check that value is text (what) matching pattern whole; its refusal says the rule."""
    def check(value, name):
        if not pattern.fullmatch(_text(value, name, what)):
            raise InputError(name, value, 'is not %s (%s)' % (what, rule))
        return value
    return check


# An Nginx upstream name is also a file name and the host of proxy_pass.
check_upstream_name = _matching(_UPSTREAM_NAME, 'an upstream name',
                                'a letter or digit, then letters, digits, _ . -; at most 64 characters')
# Nginx reads a request header as $http_NAME and ignores one with an _ unless underscores_in_headers is on.
check_header_name = _matching(_HEADER_NAME, 'a header name', 'a letter or digit, then letters, digits and -')
check_env_key = _matching(_ENV_KEY, 'an environment variable name', 'a letter or _, then letters, digits and _')
# As systemd and useradd take it.
check_user_name = _matching(_USER_NAME, 'a system user name',
                            'a lower-case letter or _, then lower-case letters, digits, _ and -; at most 31 characters')
# An app's name is its systemd unit, folder, binary and upstream.
check_service_name = _matching(_SERVICE_NAME, 'a service name',
                               'a letter or digit, then letters, digits, _ and -; at most 64 characters')


def check_cookie_name(value, name):
    """A cookie name Nginx can read back: it becomes the variable $cookie_NAME, whose name ends at the first
    character that is not a letter, a digit or _."""
    if not _NGINX_VARIABLE_PART.fullmatch(_text(value, name, 'a cookie name')):
        raise InputError(name, value, 'is not a cookie name Nginx can read: it becomes $cookie_%s, and Nginx ends a '
                                      "variable's name at the first character that is not a letter, a digit or _ "
                                      '(use %s)' % (value, re.sub(r'[^A-Za-z0-9_]', '_', value) or 'uid'))
    return value


def check_env_value(value, name):
    """An environment value: any UTF-8 text without NUL; numbers are taken as their text. It may be a secret, so
    a message names the variable only."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise InputError(name, value, 'is not text (quote it: true, null or a list has no one spelling in an '
                                      'environment)', secret=True)
    if '\0' in value:
        raise InputError(name, value, 'holds a NUL character, which no environment variable can hold', secret=True)
    try:
        value.encode('utf-8')
    except UnicodeEncodeError:
        raise InputError(name, value, 'is not valid UTF-8 text', secret=True)
    return value


def check_environment(value, name):
    """A whole environment {key: value}, each key and value checked; returns it with values as text."""
    if not isinstance(value, dict):
        raise InputError(name, value, 'is not a mapping of variable names to values')
    return {check_env_key(key, '%s key' % name): check_env_value(item, '%s[%s]' % (name, shown(key)))
            for key, item in value.items()}


def check_networks(value, name):
    """A list of IP addresses or networks (CIDR), each written as one line of an Nginx geo block."""
    if not isinstance(value, list):
        raise InputError(name, value, 'is not a list of IP addresses or networks')
    for item in value:
        try:
            ipaddress.ip_network(_text(item, name, 'an IP address or network'), strict=False)
        except ValueError:
            raise InputError(name, item, 'is not an IP address or network (CIDR) in %s' % name)
    return value


def check_nginx_time(value, name):
    """An Nginx time such as 10s or 1m30s."""
    if isinstance(value, bool) or not _NGINX_TIME.fullmatch(str(value)):
        raise InputError(name, value, 'is not an Nginx time such as 10s or 1m30s')
    return str(value)


def check_nginx_size(value, name):
    """An Nginx size such as 64k or 1m."""
    if isinstance(value, bool) or not _NGINX_SIZE.fullmatch(str(value)):
        raise InputError(name, value, 'is not an Nginx size such as 64k or 1m')
    return str(value)


def check_next_upstream(value, name):
    """The conditions of proxy_next_upstream, separated by spaces."""
    words = _text(value, name, 'proxy_next_upstream conditions').split(' ')
    unknown = [word for word in words if word not in _NEXT_UPSTREAM]
    if unknown:
        raise InputError(name, value, 'holds %s, not proxy_next_upstream conditions separated by one space (%s)'
                                      % (', '.join(shown(word) for word in unknown), ' '.join(sorted(_NEXT_UPSTREAM))))
    return value


def check_absolute_path(value, name):
    """An absolute path written unquoted into a unit or an Nginx file."""
    if not _ABSOLUTE_PATH.fullmatch(_text(value, name, 'an absolute path')) or '/../' in value + '/':
        raise InputError(name, value, 'is not an absolute path of letters, digits and _ . @ + - / (without ..)')
    return value


def check_absolute_paths(value, name):
    """A list of absolute paths, each checked as check_absolute_path and named by its index."""
    if not isinstance(value, list):
        raise InputError(name, value, 'is not a list of absolute paths')
    return [check_absolute_path(item, '%s[%d]' % (name, index)) for index, item in enumerate(value)]


def check_unit_line(value, name):
    """Text written into one line of a systemd unit: a newline would start a directive of its own."""
    if any(ord(char) < 32 or ord(char) == 127 for char in _text(value, name, 'one line of text')):
        raise InputError(name, value, 'holds a newline or another control character; it goes into one line of the unit')
    return value


CHECKS = {
    'backend_address': check_backend_address,
    'upstream_name': check_upstream_name,
    'cookie_name': check_cookie_name,
    'header_name': check_header_name,
    'env_key': check_env_key,
    'env_value': check_env_value,
    'environment': check_environment,
    'networks': check_networks,
    'user_name': check_user_name,
    'service_name': check_service_name,
    'weight': check_weight,
    'port': check_port,
    'nginx_time': check_nginx_time,
    'nginx_size': check_nginx_size,
    'next_upstream': check_next_upstream,
    'absolute_path': check_absolute_path,
    'absolute_paths': check_absolute_paths,
    'unit_line': check_unit_line,
}


def input_errors(checks):
    """checks: {kind: {variable name: value}}; one message per bad value, [] when all are good."""
    errors = []
    for kind, values in checks.items():
        if kind not in CHECKS:
            raise KeyError('no check for values of kind %r (known: %s)' % (kind, ', '.join(sorted(CHECKS))))
        for name, value in values.items():
            try:
                CHECKS[kind](value, name)
            except InputError as error:
                errors.append(str(error))
    return errors
