# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
# Shared by nginx_upstream and nginx_upstream_info; runs on the managed host, so standard library only.

"""Read and edit the ``server`` lines of Nginx ``upstream`` blocks without reformatting anything else."""

from __future__ import annotations

import re

from ansible_collections.fleet.deployer.plugins.module_utils.inputs import (
    InputError, address_key, check_nginx_time, check_weight, normalised_address,
)
from ansible_collections.fleet.deployer.plugins.module_utils.nginx_conf import Editor, NginxConfError, Parsed

# The server parameters this code manages. Nginx's defaults are reported for lines that do not set them.
VALUE_DEFAULTS = {'weight': 1, 'max_fails': 1, 'fail_timeout': '10s'}
FLAG_PARAMS = ('down', 'backup')
_INT_PARAMS = ('weight', 'max_fails')
_UNIX_SOCKET = re.compile(r'unix:/[^\s;{}#"\'\\]+')


def _upstreams(parsed):
    return [block for block in parsed.blocks('upstream') if len(block.args) == 1]


def _upstream(parsed, name):
    """The one upstream block called name."""
    return parsed.only_block(_upstreams(parsed), lambda block: block.args[0].value, name, 'upstream', 'upstreams')


def _server_lines(block, parsed):
    """The block's server lines; an include is refused, since the servers it brings in could be neither read nor
    edited here (a purge would leave them live)."""
    for child in block.children:
        if child.name == 'include':
            raise NginxConfError("line %d: upstream '%s' includes %s; its servers there cannot be read or changed "
                                 "here: write them in the block itself"
                                 % (parsed.line_of(child.start), block.args[0].value,
                                    ' '.join(word.value for word in child.args)))
    return [child for child in block.children
            if child.name == 'server' and child.children is None and child.args]


def describe_server(directive, parsed):
    """The server line as a dict: managed parameters (Nginx defaults when unset) and the others as they are; the
    address in the one form every comparison uses (inputs.address_key), so App1.example matches app1.example:80."""
    server = dict({'address': address_key(directive.args[0].value), 'down': False, 'backup': False,
                   'other_params': {}}, **VALUE_DEFAULTS)
    for token in directive.args[1:]:
        key, has_value, value = token.value.partition('=')
        if key in FLAG_PARAMS and not has_value:
            server[key] = True
        elif key in _INT_PARAMS and has_value:
            if not value.isdigit():
                raise NginxConfError("line %d: %s of server %s is '%s', not a number"
                                     % (parsed.line_of(token.start), key, server['address'], value))
            server[key] = int(value)
        elif key == 'fail_timeout' and has_value:
            server[key] = value
        else:
            server['other_params'][key] = value if has_value else True
    return server


def describe_upstreams(text, name=None):
    """Every upstream block of text (or those called name) with its servers and its other directives."""
    parsed = Parsed(text)
    described = []
    for block in _upstreams(parsed):
        if name is not None and block.args[0].value != name:
            continue
        servers = _server_lines(block, parsed)
        described.append({
            'name': block.args[0].value,
            'line': parsed.line_of(block.start),
            'servers': [describe_server(server, parsed) for server in servers],
            'directives': [' '.join(word.value for word in child.words)
                           for child in block.children if child not in servers],
        })
    return described


def upstream_servers(text, name):
    """The servers of the one upstream called name, as describe_server() reports them."""
    parsed = Parsed(text)
    return [describe_server(server, parsed) for server in _server_lines(_upstream(parsed, name), parsed)]


def validate_servers(servers):
    """Refuse, with the bad value named, anything in the requested servers that Nginx would not take."""
    seen = set()
    for server in servers:
        address = server.get('address')
        if not address:
            raise NginxConfError('every server needs an address; got %r' % (server,))
        weight, max_fails = server.get('weight'), server.get('max_fails')
        if weight is not None and weight < 1:
            raise NginxConfError('weight %s of server %s is below 1: Nginx has no weight 0; to send a server '
                                 'no traffic, give it down: true' % (weight, address))
        if max_fails is not None and max_fails < 0:
            raise NginxConfError('max_fails %s of server %s is below 0' % (max_fails, address))
        if not _UNIX_SOCKET.fullmatch(address):
            _check(normalised_address, address, "server address '%s' is not host:port, [ipv6]:port or unix:/path: "
                                                "it" % address)
        for key, check in (('weight', check_weight), ('fail_timeout', check_nginx_time)):
            if server.get(key) is not None:
                _check(check, server[key], "%s '%s' of server %s" % (key, server[key], address))
        if address_key(address) in seen:
            raise NginxConfError("server address '%s' is listed twice" % address)
        seen.add(address_key(address))


def _check(check, value, what):
    """check (from inputs) applied to value; its refusal as an NginxConfError that starts with what."""
    try:
        check(value, what)
    except InputError as error:
        raise NginxConfError('%s %s' % (what, error.why)) from None


def _param_text(key, value):
    return key if value is True else '%s=%s' % (key, value)


def _update_server(editor, directive, wanted):
    """Edit one server line so that the parameters given in wanted hold; the rest is left as it is."""
    params = directive.args[1:]
    removed = set()
    appended = []
    for key, default in VALUE_DEFAULTS.items():
        value = wanted.get(key)
        if value is None:
            continue
        value = str(value)
        tokens = [token for token in params if token.value.startswith(key + '=')]
        for token in tokens:
            current = token.value.partition('=')[2]
            same = int(current) == int(value) if key in _INT_PARAMS and current.isdigit() else current == value
            if not same:
                editor.replace_word(token, _param_text(key, value))
        if not tokens and value != str(default):
            appended.append(_param_text(key, value))
    for flag in FLAG_PARAMS:
        value = wanted.get(flag)
        if value is None:
            continue
        tokens = [token for token in params if token.value == flag]
        if value and not tokens:
            appended.append(flag)
        elif not value:
            for token in tokens:
                editor.remove_word(token)
                removed.add(token)
    if appended:
        last_kept = [token for token in directive.args if token not in removed][-1]
        editor.insert(last_kept.end, ''.join(' ' + param for param in appended))


def _new_server_line(wanted):
    params = [_param_text(key, wanted[key]) for key in VALUE_DEFAULTS if wanted.get(key) is not None]
    params += [flag for flag in FLAG_PARAMS if wanted.get(flag)]
    return 'server %s;' % ' '.join([wanted['address']] + params)


def edit_upstream(text, name, servers, purge=False):
    """Return text with the server lines of upstream name brought in line with servers.

    Each entry of servers has an address and optionally weight, down, backup, max_fails, fail_timeout
    (None: leave that part alone) and state ('present' or 'absent'). With purge, servers not listed go.
    """
    validate_servers(servers)
    parsed = Parsed(text)
    block = _upstream(parsed, name)
    editor = Editor(parsed)
    server_lines = _server_lines(block, parsed)
    existing = {}
    for directive in server_lines:
        existing.setdefault(address_key(directive.args[0].value), []).append(directive)

    wanted_absent = {address_key(server['address']) for server in servers if server.get('state') == 'absent'}
    wanted_present = set()
    new_lines = []
    for server in servers:
        key = address_key(server['address'])
        if key in wanted_absent:
            continue
        wanted_present.add(key)
        matches = existing.get(key, [])
        if len(matches) > 1:
            lines = ', '.join(str(parsed.line_of(directive.start)) for directive in matches)
            raise NginxConfError("server %s appears %d times in upstream '%s' (lines %s); refusing to guess which "
                                 "to change" % (server['address'], len(matches), name, lines))
        if matches:
            _update_server(editor, matches[0], server)
        else:
            new_lines.append(_new_server_line(server))

    for key, directives in existing.items():
        if key in wanted_absent or purge and key not in wanted_present:
            for directive in directives:
                editor.remove_directive(directive)

    if new_lines:
        editor.add_lines(block, new_lines, after=server_lines[-1] if server_lines else None)
    return editor.apply()
