# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
# Used by nginx_split_clients; runs on the managed host, so standard library only.

"""Read and edit the entries of an Nginx ``split_clients`` block without reformatting anything else.

Nginx hands out the hash range in entry order: the first entry gets [0, p1), the next [p1, p1 + p2), and so on; a
final ``*`` gets the rest. So growing the first entry from 5% to 20% keeps every client it had, and entries are
never reordered here.
"""

from __future__ import annotations

from collections import namedtuple
from decimal import Decimal, InvalidOperation

from ansible_collections.fleet.deployer.plugins.module_utils.nginx_conf import (
    Editor, NginxConfError, Parsed, quote_word,
)

REMAINDER = '*'
_HUNDREDTH = Decimal('0.01')

Split = namedtuple('Split', 'value percent')
Entry = namedtuple('Entry', 'directive value percent')    # an entry line of the block


def variable_name(variable):
    """The block's variable as Nginx writes it, with its '$'."""
    return variable if variable.startswith('$') else '$' + variable


def _decimal(raw):
    if isinstance(raw, bool):
        return None
    text = str(raw).strip()
    try:
        value = Decimal(text[:-1] if text.endswith('%') else text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def parse_percent(raw):
    """A percentage as Nginx takes it (above 0, at most 2 decimals) -> Decimal, '*' -> REMAINDER, else None."""
    if str(raw).strip() == REMAINDER:
        return REMAINDER
    value = _decimal(raw)
    if value is None or not 0 < value <= 100 or value != value.quantize(_HUNDREDTH):
        return None
    return value


def percent_text(percent):
    return REMAINDER if percent == REMAINDER else format(percent.normalize(), 'f') + '%'


def _number(percent):
    """Decimal -> int when whole, else float: what a playbook compares against."""
    return int(percent) if percent == percent.to_integral_value() else float(percent)


def _blocks(parsed):
    return [block for block in parsed.blocks('split_clients') if len(block.args) == 2]


def _block(parsed, variable):
    return parsed.only_block(_blocks(parsed), lambda block: block.args[1].value, variable_name(variable),
                             'split_clients', 'split_clients')


def _entries(parsed, block):
    """Every entry of the block, in order; what Nginx would refuse is an error."""
    entries = []
    for child in block.children:
        line = parsed.line_of(child.start)
        if child.children is not None or len(child.words) != 2:
            raise NginxConfError('line %d: a split_clients entry is "<percent>%% <value>;" or "* <value>;"' % line)
        percent = parse_percent(child.words[0].value)
        if percent is None or not child.words[0].value.endswith(('%', REMAINDER)):
            raise NginxConfError("line %d: '%s' is not a percentage such as 5%% or 12.25%%, nor *"
                                 % (line, child.words[0].value))
        entries.append(Entry(child, child.words[1].value, percent))
    return entries


def describe(entries):
    """Entries as returned to the playbook; share is what each one gets, the remainder for '*'."""
    explicit = _total(entries)
    described, remainder_taken = [], False
    for entry in entries:
        if entry.percent == REMAINDER:
            share = Decimal(0) if remainder_taken else 100 - explicit
            remainder_taken = True
        else:
            share = entry.percent
        percent = REMAINDER if entry.percent == REMAINDER else _number(entry.percent)
        described.append({'value': entry.value, 'percent': percent, 'share': _number(share)})
    return described


def _total(splits):
    return sum((split.percent for split in splits if split.percent != REMAINDER), Decimal(0))


def split_clients_entries(text, variable):
    """The entries of the one split_clients block that sets variable, as describe() reports them."""
    parsed = Parsed(text)
    return describe(_entries(parsed, _block(parsed, variable)))


def validate_splits(splits):
    """The wanted entries as Splits, with percent 0 left out; refuses, naming the value, what Nginx
    would refuse or what would not say one thing: a bad percentage, '*' before the end, a value twice, over 100%."""
    wanted, seen = [], set()
    for number, split in enumerate(splits, 1):
        value, raw = split.get('value'), split.get('percent')
        if value is None or raw is None:
            raise NginxConfError('split %d needs a value and a percent; got %r' % (number, split))
        if value in seen:
            raise NginxConfError("value '%s' is listed twice" % value)
        seen.add(value)
        if _decimal(raw) == 0:
            continue    # Nginx has no 0%: an entry without share is left out of the block
        percent = parse_percent(raw)
        if percent is None:
            raise NginxConfError("percent '%s' of value '%s' is not a percentage from 0 to 100 with at most 2 "
                                 "decimals, nor *" % (raw, value))
        if percent == REMAINDER and number != len(splits):
            raise NginxConfError("value '%s' has percent *, which only the last split can have: it takes what the "
                                 "others leave" % value)
        wanted.append(Split(value, percent))
    total = _total(wanted)
    if total > 100:
        raise NginxConfError('percentages add up to %s%%, more than 100 (%s)' % (
            format(total.normalize(), 'f'), ', '.join('%s: %s' % (split.value, percent_text(split.percent))
                                                      for split in wanted if split.percent != REMAINDER)))
    if not wanted:
        raise NginxConfError('every split has percent 0; a split_clients block needs at least one entry')
    return wanted


def _value_column(text, directive):
    """How far an entry's value starts from its percentage, when only spaces separate them; else None."""
    percent, value = directive.words
    gap = text[percent.end:value.start]
    return value.start - percent.start if gap and gap == ' ' * len(gap) else None


def _new_entry(percent, value, column):
    text = percent_text(percent)
    return '%s%s%s;' % (text, ' ' * max(1, (column or 0) - len(text)), quote_word(value))


def edit_split_clients(text, variable, splits):
    """Return text with the entries of the split_clients block that sets variable made those of splits, in order.

    An entry whose value is listed keeps its line and gets the new percentage; a new value gets a line of its own
    at its place; entries not listed, or listed with percent 0, are removed. Reordering is refused: it would move
    clients from one value to another.
    """
    wanted = validate_splits(splits)
    parsed = Parsed(text)
    block = _block(parsed, variable)
    entries = _entries(parsed, block)
    by_value = {}
    for entry in entries:
        by_value.setdefault(entry.value, []).append(entry)
    wanted_values = [split.value for split in wanted]
    for value in wanted_values:
        if len(by_value.get(value, [])) > 1:
            lines = ', '.join(str(parsed.line_of(entry.directive.start)) for entry in by_value[value])
            raise NginxConfError("value '%s' appears %d times in split_clients '%s' (lines %s); refusing to guess "
                                 "which to change" % (value, len(by_value[value]), variable_name(variable), lines))
    kept_in_file_order = [entry.value for entry in entries if entry.value in wanted_values]
    kept_in_wanted_order = [value for value in wanted_values if value in by_value]
    if kept_in_file_order != kept_in_wanted_order:
        raise NginxConfError("splits list %s in another order than the block (%s); split_clients hands out its "
                             "hash range in order, so reordering would move clients between values: change the "
                             "order in the file itself" % (', '.join(kept_in_wanted_order),
                                                           ', '.join(kept_in_file_order)))

    editor = Editor(parsed)
    for entry in entries:
        if entry.value not in wanted_values:
            editor.remove_directive(entry.directive)
    last_entry = entries[-1].directive if entries else None
    column = _value_column(parsed.text, entries[0].directive) if entries else None
    pending = []    # new entries waiting for the next kept one, so they go just before it
    for split in wanted:
        if split.value not in by_value:
            pending.append(_new_entry(split.percent, split.value, column))
            continue
        entry = by_value[split.value][0]
        if pending:
            editor.add_lines_before(entry.directive, pending)
            pending = []
        if entry.percent != split.percent:
            _set_percent(editor, entry.directive, split.percent)
    if pending:
        editor.add_lines(block, pending, after=last_entry)
    return editor.apply()


def _set_percent(editor, directive, percent):
    """Replace an entry's percentage, keeping its value in its column when only spaces separate the two."""
    (old, value), new = directive.words, percent_text(percent)
    column = _value_column(editor.text, directive)
    if column is None:
        editor.replace_word(old, new)
    else:
        editor.replace_span(old.start, value.start, new + ' ' * max(1, column - len(new)))
