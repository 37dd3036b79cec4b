# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
# Shared by the nginx modules of fleet.deployer; runs on the managed host, so standard library only.

"""Tokenize and parse Nginx configuration text, and edit it in place without reformatting anything else.

Text is expected as decoded with ``surrogateescape`` so that encoding it back gives the original bytes.
Edits are spans of the original text: whatever an edit does not cover is kept byte for byte.
"""

from __future__ import annotations

import fnmatch
import os.path
import re

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
_BARE_WORD_RE = re.compile(r'[^\s;{}#"\'\\]+')


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
        if text.startswith('\ufeff'):
            # Nginx would read it as part of the first directive's name and refuse the file.
            raise NginxConfError('line 1: the file starts with a UTF-8 byte order mark (BOM), which Nginx reads as '
                                 'part of the first directive ("unknown directive"); save the file without it')
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

    def directives_named(self, name):
        """Every directive called name, in file order, at any depth."""
        found, pending = [], list(reversed(self.directives))
        while pending:
            directive = pending.pop()
            if directive.name == name:
                found.append(directive)
            pending.extend(reversed(directive.children or []))
        return found

    def blocks(self, name):
        """Every block directive called name, in file order, at any depth (not looking inside the ones found)."""
        found = []
        pending = list(reversed(self.directives))
        while pending:
            directive = pending.pop()
            if directive.children is None:
                continue
            if directive.name == name:
                found.append(directive)
            else:
                pending.extend(reversed(directive.children))
        return found

    def only_block(self, blocks, key_of, key, kind, kinds):
        """The one block of blocks whose key_of(block) is key; kind and kinds name such blocks in messages."""
        matching = [block for block in blocks if key_of(block) == key]
        if not matching:
            known = ', '.join(key_of(block) for block in blocks) or 'none'
            raise NginxConfError("no %s named '%s' (%s found: %s)" % (kind, key, kinds, known))
        if len(matching) > 1:
            lines = ', '.join(str(self.line_of(block.start)) for block in matching)
            raise NginxConfError("%s '%s' is defined %d times (lines %s); refusing to guess which"
                                 % (kind, key, len(matching), lines))
        return matching[0]


def _unescape(raw):
    return _ESCAPE_RE.sub(lambda match: _ESCAPES.get(match.group(1), match.group()), raw)


_DUMP_HEADER_RE = re.compile(r'^# configuration file (.+):\r?\n', re.MULTILINE)


def split_config_dump(dump):
    """Split the output of ``nginx -T`` into (path, text) per configuration file.

    Nginx writes a header line before each file, but a file may hold a comment that reads the same. A header line
    counts only where Nginx could have written it: after a whole file (outside any block or quoted string) and
    naming a file that an ``include`` of the files before it matches; anywhere else it is a comment of its file.
    """
    headers = list(_DUMP_HEADER_RE.finditer(dump))
    if not headers:
        raise NginxConfError('no "# configuration file ...:" header found; is this the output of nginx -T?')
    conf_dir = os.path.dirname(headers[0].group(1))
    accepted, included = [headers[0]], []   # included: the patterns of the files before the current one
    for header in headers[1:]:
        patterns = _includes(dump[accepted[-1].end():header.start()], conf_dir)
        if patterns is None:
            continue    # inside a block or a quoted string of the file before: part of it
        if any(fnmatch.fnmatchcase(header.group(1), pattern) for pattern in included + patterns):
            accepted.append(header)
            included += patterns
    ends = [header.start() for header in accepted[1:]] + [len(dump)]
    return [(header.group(1), dump[header.end():end]) for header, end in zip(accepted, ends)]


def _includes(text, conf_dir):
    """The absolute patterns of text's include directives, or None when text is no whole file."""
    try:
        parsed = Parsed(text)
    except NginxConfError:
        return None
    return [os.path.join(conf_dir, directive.args[0].value)
            for directive in parsed.directives_named('include') if directive.args]


class Editor:
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
        self.replace_span(token.start, token.end, text)

    def replace_span(self, start, end, text):
        self.edits.append((start, end, text))

    def insert(self, offset, text):
        self.edits.append((offset, offset, text))

    def _indent(self, offset):
        """The whitespace that starts the line of offset, or None if something else precedes offset there."""
        before = self.text[self._line_start(offset):offset]
        return None if before.strip() else before

    def add_lines(self, block, lines, after=None):
        """Add directive lines after the directive after, indented like it, or else before the block's '}'."""
        if after is not None and self._owns_its_lines(after):
            indent, eol = self._indent(after.start), self._eol(after.end)
            self.insert(self._line_end(after.end), ''.join(indent + line + eol for line in lines))
        elif self._indent(block.close_start) is None:
            self.insert(block.close_start, ''.join(line + ' ' for line in lines))
        else:
            child_indents = [self._indent(child.start) for child in block.children]
            indent = next((found for found in child_indents if found is not None),
                          (self._indent(block.start) or '') + '    ')
            eol = self._eol(block.close_start)
            self.insert(self._line_start(block.close_start), ''.join(indent + line + eol for line in lines))

    def add_lines_before(self, directive, lines):
        """Add directive lines just before directive, each on a line of its own indented like it if it has one."""
        indent = self._indent(directive.start)
        if indent is None:
            self.insert(directive.start, ''.join(line + ' ' for line in lines))
        else:
            eol = self._eol(directive.start)
            self.insert(self._line_start(directive.start), ''.join(indent + line + eol for line in lines))


def quote_word(value):
    """value as one Nginx word: bare when that is plain, else double-quoted so Nginx reads back the same value."""
    if _BARE_WORD_RE.fullmatch(value):
        return value
    return '"%s"' % value.replace('\\', '\\\\').replace('"', '\\"')
