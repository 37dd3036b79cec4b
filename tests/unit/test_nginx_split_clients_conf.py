"""Parser and writer behind nginx_split_clients (plugins/module_utils/nginx_split_clients_conf.py), from tables."""

import pytest

from ansible_collections.fleet.deployer.plugins.module_utils.nginx_conf import NginxConfError
from ansible_collections.fleet.deployer.plugins.module_utils.nginx_split_clients_conf import (
    edit_split_clients, split_clients_entries,
)

# The canary's sticky split, with what the module must leave alone around it.
CANARY = '''\
# split_clients "$x" $canary_upstream { 50% evil; }   <- a comment that looks like config
map $cookie_uid $canary_key { "" $remote_addr; default $cookie_uid; }
split_clients "${canary_key}" $canary_upstream {
    5%   user-api-canary;   # stays first: it keeps its users as it grows
    *    user-api-stable;
}
split_clients "${remote_addr}" $other {
    50%  a;
    *    b;
}
'''


def splits(*pairs):
    return [{'value': value, 'percent': percent} for value, percent in pairs]


GROW = splits(('user-api-canary', 20), ('user-api-stable', '*'))

EDITS = [
    # (case, text, variable, wanted splits, expected text)
    ('grow the canary, value stays in its column', CANARY, '$canary_upstream', GROW,
     CANARY.replace('5%   user-api-canary', '20%  user-api-canary')),
    ('variable without its $', CANARY, 'canary_upstream', GROW,
     CANARY.replace('5%   user-api-canary', '20%  user-api-canary')),
    ('same share spelled otherwise changes nothing', CANARY, '$canary_upstream',
     splits(('user-api-canary', '5.00%'), ('user-api-stable', '*')), CANARY),
    ('decimals as Nginx takes them', CANARY, '$canary_upstream',
     splits(('user-api-canary', 12.25), ('user-api-stable', '*')),
     CANARY.replace('5%   user-api-canary', '12.25% user-api-canary')),
    ('percent 0 takes the line and its comment out', CANARY, '$canary_upstream',
     splits(('user-api-canary', 0), ('user-api-stable', '*')),
     CANARY.replace('    5%   user-api-canary;   # stays first: it keeps its users as it grows\n', '')),
    ('back from 0: the canary goes first again, in the column', 'split_clients $k $v {\n    *    stable;\n}\n', 'v',
     splits(('canary', '0.5%'), ('stable', '*')),
     'split_clients $k $v {\n    0.5% canary;\n    *    stable;\n}\n'),
    ('new entry at the end, unlisted entry removed', 'split_clients $k $v {\n  10% a;\n  20% b;\n}\n', '$v',
     splits(('a', 10), ('c', '*')), 'split_clients $k $v {\n  10% a;\n  *   c;\n}\n'),
    ('one-line block edited in line', 'split_clients $k $v { 5% a; * b; }\n', '$v',
     splits(('c', 1), ('a', 6), ('b', '*')), 'split_clients $k $v { 1% c; 6% a; * b; }\n'),
    ('tabs and CRLF kept', 'split_clients $k $v {\r\n\t5%\tcanary;\r\n\t*\tstable;\r\n}\r\n', '$v',
     splits(('canary', 50), ('stable', '*')), 'split_clients $k $v {\r\n\t50%\tcanary;\r\n\t*\tstable;\r\n}\r\n'),
    ('quoted value matched, new odd value quoted', 'split_clients $k $v {\n    5% "a";\n}\n', '$v',
     splits(('a', 5), ('b "c"', 10)), 'split_clients $k $v {\n    5% "a";\n    10% "b \\"c\\"";\n}\n'),
    ('nested in http, other blocks untouched', 'http {\n  split_clients $k $w { 1% x; }\n'
     '  split_clients $k $v {\n    1% x;\n  }\n}\n', '$v', splits(('x', 2)),
     'http {\n  split_clients $k $w { 1% x; }\n  split_clients $k $v {\n    2% x;\n  }\n}\n'),
    ('total may stay below 100', CANARY, '$other', splits(('a', 30), ('b', 30)),
     CANARY.replace('50%  a;\n    *    b;', '30%  a;\n    30%  b;')),
]


@pytest.mark.parametrize('case, text, variable, wanted, expected', EDITS, ids=[edit[0] for edit in EDITS])
def test_edit_touches_only_what_changes_and_a_second_run_nothing(case, text, variable, wanted, expected):
    once = edit_split_clients(text, variable, wanted)

    assert once == expected
    assert edit_split_clients(once, variable, wanted) == once


def test_bytes_that_are_not_utf8_survive():
    raw = 'split_clients $k $v {\n    # caf\xe9 in latin-1\n    5% a;\n}\n'.encode('latin-1')

    after = edit_split_clients(raw.decode('utf-8', 'surrogateescape'), '$v', splits(('a', 7)))

    assert after.encode('utf-8', 'surrogateescape') == raw.replace(b'5% a;', b'7% a;')


READS = [
    # (case, text, variable, expected entries)
    ('remainder gets what the others leave', CANARY, 'canary_upstream',
     [{'value': 'user-api-canary', 'percent': 5, 'share': 5},
      {'value': 'user-api-stable', 'percent': '*', 'share': 95}]),
    ('decimals come back as numbers', 'split_clients $k $v { 0.5% a; 12.25% "b c"; * d; }', '$v',
     [{'value': 'a', 'percent': 0.5, 'share': 0.5}, {'value': 'b c', 'percent': 12.25, 'share': 12.25},
      {'value': 'd', 'percent': '*', 'share': 87.25}]),
    ('no remainder entry', 'split_clients $k $v { 10% a; 20.0% b; }', 'v',
     [{'value': 'a', 'percent': 10, 'share': 10}, {'value': 'b', 'percent': 20, 'share': 20}]),
    ('a second * gets nothing', 'split_clients $k $v { 100% a; * b; }', 'v',
     [{'value': 'a', 'percent': 100, 'share': 100}, {'value': 'b', 'percent': '*', 'share': 0}]),
]


@pytest.mark.parametrize('case, text, variable, expected', READS, ids=[read[0] for read in READS])
def test_reads_entries_with_their_shares(case, text, variable, expected):
    assert split_clients_entries(text, variable) == expected


BAD_SPLITS = [
    (splits(('canary', 'abc'), ('stable', '*')),
     "percent 'abc' of value 'canary' is not a percentage from 0 to 100 with at most 2 decimals, nor *"),
    (splits(('canary', -5)), "percent '-5' of value 'canary' is not a percentage"),
    (splits(('canary', 100.5)), "percent '100.5' of value 'canary' is not a percentage"),
    (splits(('canary', '12.125%')), "percent '12.125%' of value 'canary' is not a percentage"),
    (splits(('canary', True)), "percent 'True' of value 'canary' is not a percentage"),
    (splits(('canary', 'nan')), "percent 'nan' of value 'canary' is not a percentage"),
    (splits(('stable', '*'), ('canary', 5)), "value 'stable' has percent \\*, which only the last split can have"),
    (splits(('canary', 5), ('canary', 10)), "value 'canary' is listed twice"),
    (splits(('a', 60), ('b', 40.5), ('c', '*')), r'percentages add up to 100.5%, more than 100 \(a: 60%, b: 40.5%\)'),
    (splits(('canary', 0)), 'every split has percent 0'),
    ([{'value': 'canary'}], "split 1 needs a value and a percent; got {'value': 'canary'}"),
]


@pytest.mark.parametrize('wanted, message', BAD_SPLITS)
def test_bad_splits_are_refused_naming_the_value(wanted, message):
    with pytest.raises(NginxConfError, match='^' + message):
        edit_split_clients(CANARY, '$canary_upstream', wanted)


BAD_FILES = [
    (CANARY, '$nope', GROW,
     r"no split_clients named '\$nope' \(split_clients found: \$canary_upstream, \$other\)"),
    ('split_clients $k $v { 5% a; }\nsplit_clients $j $v { 5% a; }\n', '$v', GROW,
     r"split_clients '\$v' is defined 2 times \(lines 1, 2\)"),
    ('split_clients $k $v {\n 5% a;\n 6% a;\n}\n', '$v', splits(('a', 5)),
     r"value 'a' appears 2 times in split_clients '\$v' \(lines 2, 3\); refusing to guess"),
    (CANARY, '$canary_upstream', splits(('user-api-stable', 80), ('user-api-canary', '*')),
     'splits list user-api-stable, user-api-canary in another order than the block '
     r'\(user-api-canary, user-api-stable\)'),
    ('split_clients $k $v {\n 5 a;\n}\n', '$v', splits(('a', 5)),
     "line 2: '5' is not a percentage such as 5% or 12.25%, nor \\*"),
    ('split_clients $k $v {\n 5% a b;\n}\n', '$v', splits(('a', 5)),
     'line 2: a split_clients entry is "<percent>% <value>;" or "\\* <value>;"'),
    ('split_clients $k $v {\n 5% a;\n', '$v', splits(('a', 5)), 'unexpected end of file'),
]


@pytest.mark.parametrize('text, variable, wanted, message', BAD_FILES)
def test_what_cannot_be_edited_safely_is_refused(text, variable, wanted, message):
    with pytest.raises(NginxConfError, match=message):
        edit_split_clients(text, variable, wanted)
