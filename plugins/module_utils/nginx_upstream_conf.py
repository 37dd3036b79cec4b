# -*- coding: utf-8 -*-
# Shared by nginx_upstream and nginx_upstream_info; runs on the managed host, so standard library only.

"""Read and edit the ``server`` lines of Nginx ``upstream`` blocks without reformatting anything else.

Text is expected as decoded with ``surrogateescape`` so that encoding it back gives the original bytes.
Edits are spans of the original text: whatever an edit does not cover is kept byte for byte.
"""

from __future__ import annotations

import re

# The server parameters this code manages. Nginx's defaults are reported for lines that do not set them.
VALUE_DEFAULTS = {'weight': 1, 'max_fails': 1, 'fail_timeout': '10s'}
FLAG_PARAMS = ('down', 'backup')
_INT_PARAMS = ('weight', 'max_fails')

# Same token rules as ngx_conf_read_token(): '#' opens a comment only where a token could start,
# quotes only open a token at its start, a word ends at whitespace, ';' or '{' (but '${' stays in it).
_TOKEN_RE = re.compile(r'''
      (?P<space>[ \t\r\n]+)
    | (?P<comment>\#[^\n]*?(?=\r?\n|\Z))
    | (?P<punct>[;{}])
    | (?P<quoted>"(?:\\[\s\S]|[^"\\])*"|'(?:\\[\s\S]|[^'\\])*')
    | (?P<word>(?!["'])(?:\\[\s\S]|\$\{|[^ \t\r\n;{\\])+)
''', re.VERBOSE)
_ESCAPES = {'"': '"', "'": "'", '\\': '\\', 't': '\t', 'r': '\r', 'n': '\n'}
_ESCAPE_RE = re.compile(r'\\(.)', re.DOTALL)

_PORT = r'(?P<port>\d{1,5})'
_ADDRESS_RES = (
    re.compile(r'unix:/[^\s;{}#"\'\\]+'),
    re.compile(r'\[[0-9A-Fa-f:.]+\]:' + _PORT),
    re.compile(r'[A-Za-z0-9_.-]+:' + _PORT),
)
_TIME_RE = re.compile(r'(?:\d+(?:ms|[smhdwMy])?)+')


class NginxConfError(ValueError):
    """The configuration or the requested change cannot be handled; the message says why."""


class Token:
    __slots__ = ('kind', 'value', 'start', 'end')

    def __init__(self, kind, value, start, end):
        self.kind = kind    # 'word', ';', '{' or '}'
        self.value = value  # a word with quotes and escapes resolved, as Nginx sees it
        self.start = start
        self.end = end


class Directive:
    __slots__ = ('words', 'start', 'end', 'children', 'close_start')

    def __init__(self, words, end, children=None):
        self.words = words
        self.start = words[0].start
        self.end = end              # after the ';' or the closing '}'
        self.children = children    # None for a simple directive
        self.close_start = None     # offset of the closing '}' of a block

    @property
    def name(self):
        return self.words[0].value

    @property
    def args(self):
        return self.words[1:]


class Parsed:
    """Directive tree of one configuration text, plus where its comments end."""

    def __init__(self, text):
        self.text = text
        self.comment_ends = set()
        self.directives = self._parse(self._tokens())

    def line_of(self, offset):
        return self.text.count('\n', 0, offset) + 1

    def _tokens(self):
        text, pos = self.text, 0
        while pos < len(text):
            match = _TOKEN_RE.match(text, pos)
            if match is None:
                raise NginxConfError('line %d: unterminated quote or escape' % self.line_of(pos))
            kind, raw = match.lastgroup, match.group()
            if kind == 'comment':
                self.comment_ends.add(match.end())
            elif kind == 'punct':
                yield Token(raw, raw, match.start(), match.end())
            elif kind == 'quoted':
                yield Token('word', _unescape(raw[1:-1]), match.start(), match.end())
            elif kind == 'word':
                yield Token('word', _unescape(raw), match.start(), match.end())
            pos = match.end()

    def _parse(self, tokens):
        top = []
        open_blocks = []    # Directive objects whose '}' has not been seen yet
        words = []
        for token in tokens:
            siblings = open_blocks[-1].children if open_blocks else top
            if token.kind == 'word':
                words.append(token)
            elif token.kind == '}':
                if words or not open_blocks:
                    raise NginxConfError('line %d: unexpected "}"' % self.line_of(token.start))
                block = open_blocks.pop()
                block.end, block.close_start = token.end, token.start
            elif not words:
                raise NginxConfError('line %d: unexpected "%s"' % (self.line_of(token.start), token.kind))
            elif token.kind == ';':
                siblings.append(Directive(words, token.end))
                words = []
            else:
                block = Directive(words, None, children=[])
                siblings.append(block)
                open_blocks.append(block)
                words = []
        if words or open_blocks:
            raise NginxConfError('unexpected end of file, expecting ";" or "}"')
        return top

    def upstreams(self, name=None):
        """All upstream blocks in file order, at any depth; only those called name if given."""
        found = []
        pending = list(reversed(self.directives))
        while pending:
            directive = pending.pop()
            if directive.children is None:
                continue
            if directive.name == 'upstream' and len(directive.args) == 1:
                if name is None or directive.args[0].value == name:
                    found.append(directive)
            else:
                pending.extend(reversed(directive.children))
        return found

    def upstream(self, name):
        """The one upstream block called name."""
        blocks = self.upstreams(name)
        if not blocks:
            known = ', '.join(block.args[0].value for block in self.upstreams()) or 'none'
            raise NginxConfError("no upstream named '%s' (upstreams found: %s)" % (name, known))
        if len(blocks) > 1:
            lines = ', '.join(str(self.line_of(block.start)) for block in blocks)
            raise NginxConfError("upstream '%s' is defined %d times (lines %s); refusing to guess which"
                                 % (name, len(blocks), lines))
        return blocks[0]


def _unescape(raw):
    return _ESCAPE_RE.sub(lambda match: _ESCAPES.get(match.group(1), match.group()), raw)


def _server_lines(block):
    return [child for child in block.children
            if child.name == 'server' and child.children is None and child.args]


def describe_server(directive, parsed):
    """The server line as a dict: managed parameters (Nginx defaults when unset) and the others as they are."""
    server = dict({'address': directive.args[0].value, 'down': False, 'backup': False, 'other_params': {}},
                  **VALUE_DEFAULTS)
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
    for block in parsed.upstreams(name):
        servers = _server_lines(block)
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
    return [describe_server(server, parsed) for server in _server_lines(parsed.upstream(name))]


def split_config_dump(dump):
    """Split the output of ``nginx -T`` into (path, text) per configuration file."""
    headers = list(re.finditer(r'^# configuration file (.+):\r?\n', dump, re.MULTILINE))
    if not headers:
        raise NginxConfError('no "# configuration file ...:" header found; is this the output of nginx -T?')
    return [(header.group(1), dump[header.end():headers[i + 1].start() if i + 1 < len(headers) else len(dump)])
            for i, header in enumerate(headers)]


def address_key(address):
    """How Nginx would tell two server addresses apart: host case-insensitive, port 80 when left out."""
    if address.startswith('unix:'):
        return address
    match = re.fullmatch(r'(\[[^\]]*\]|[^:]*)(?::(\d+))?', address)
    if match is None:
        return address
    return '%s:%d' % (match.group(1).lower(), int(match.group(2) or 80))


def validate_servers(servers):
    """Refuse, with the bad value named, anything in the requested servers that Nginx would not take."""
    seen = set()
    for server in servers:
        address = server.get('address')
        if not address:
            raise NginxConfError('every server needs an address; got %r' % (server,))
        match = next((m for m in (regex.fullmatch(address) for regex in _ADDRESS_RES) if m), None)
        if match is None or 'port' in match.groupdict() and not 0 < int(match.group('port')) < 65536:
            raise NginxConfError("server address '%s' is not host:port, [ipv6]:port or unix:/path" % address)
        if address_key(address) in seen:
            raise NginxConfError("server address '%s' is listed twice" % address)
        seen.add(address_key(address))
        weight, max_fails, fail_timeout = server.get('weight'), server.get('max_fails'), server.get('fail_timeout')
        if weight is not None and weight < 1:
            raise NginxConfError('weight %s of server %s is below 1: Nginx has no weight 0; to send a server '
                                 'no traffic, give it down: true' % (weight, address))
        if max_fails is not None and max_fails < 0:
            raise NginxConfError('max_fails %s of server %s is below 0' % (max_fails, address))
        if fail_timeout is not None and not _TIME_RE.fullmatch(str(fail_timeout)):
            raise NginxConfError("fail_timeout '%s' of server %s is not an Nginx time such as 10s or 1m30s"
                                 % (fail_timeout, address))


class _Editor:
    """Collects non-overlapping (start, end, replacement) edits of one text and applies them at once."""

    def __init__(self, parsed):
        self.parsed = parsed
        self.text = parsed.text
        self.edits = []

    def apply(self):
        text = self.text
        # Right to left so earlier offsets stay valid; at equal start a removal goes before an insertion.
        for start, end, replacement in sorted(self.edits, reverse=True):
            text = text[:start] + replacement + text[end:]
        return text

    def _line_start(self, offset):
        return self.text.rfind('\n', 0, offset) + 1

    def _line_end(self, offset):
        """Offset just after the newline ending the line that holds offset (or the end of the text)."""
        newline = self.text.find('\n', offset)
        return len(self.text) if newline < 0 else newline + 1

    def _eol(self, offset):
        newline = self.text.find('\n', offset)
        if newline < 0:
            newline = self.text.find('\n')
        return '\r\n' if newline > 0 and self.text[newline - 1] == '\r' else '\n'

    def _owns_its_lines(self, directive):
        """True when nothing but indentation precedes it and nothing but a comment follows it on its lines."""
        after = self.text[directive.end:self._line_end(directive.end)].strip()
        return self._indent(directive.start) is not None and (not after or after.startswith('#'))

    def remove_directive(self, directive):
        if self._owns_its_lines(directive):
            # Its trailing comment goes with it: it described this server.
            self.edits.append((self._line_start(directive.start), self._line_end(directive.end), ''))
            return
        # Shares its line: only the directive and the blanks after it go, so removals never overlap.
        end = directive.end
        while end < len(self.text) and self.text[end] in ' \t':
            end += 1
        self.edits.append((directive.start, end, ''))

    def remove_word(self, token):
        start = token.start
        while start > 0 and self.text[start - 1] in ' \t\r\n':
            start -= 1
        if start in self.parsed.comment_ends:
            # Joining it to the line above would put the rest of the directive into that comment.
            end = token.end
            while self.text[end] in ' \t':
                end += 1
            self.edits.append((token.start, end, ''))
        else:
            self.edits.append((start, token.end, ''))

    def replace_word(self, token, text):
        self.edits.append((token.start, token.end, text))

    def insert(self, offset, text):
        self.edits.append((offset, offset, text))

    def _indent(self, offset):
        """The whitespace that starts the line of offset, or None if something else precedes offset there."""
        before = self.text[self._line_start(offset):offset]
        return None if before.strip() else before

    def add_servers(self, block, lines):
        """Add server lines after the block's last server line, indented like it, or else before its '}'."""
        servers = _server_lines(block)
        anchor = servers[-1] if servers else None
        if anchor is not None and self._owns_its_lines(anchor):
            indent, eol = self._indent(anchor.start), self._eol(anchor.end)
            self.insert(self._line_end(anchor.end), ''.join(indent + line + eol for line in lines))
        elif self._indent(block.close_start) is None:
            self.insert(block.close_start, ''.join(line + ' ' for line in lines))
        else:
            child_indents = [self._indent(child.start) for child in block.children]
            indent = next((found for found in child_indents if found is not None),
                          (self._indent(block.start) or '') + '    ')
            eol = self._eol(block.close_start)
            self.insert(self._line_start(block.close_start), ''.join(indent + line + eol for line in lines))


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
    block = parsed.upstream(name)
    editor = _Editor(parsed)
    existing = {}
    for directive in _server_lines(block):
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
        editor.add_servers(block, new_lines)
    return editor.apply()
