"""The traffic_weights and upstream_servers filters (plugins/filter/traffic.py)."""

import math
from fractions import Fraction

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.deployer.plugins.filter.traffic import FilterModule, traffic_weights, upstream_servers


def group_shares(groups, weights):
    """Share of the traffic each group gets under weighted round robin, as exact fractions of 100."""
    total = sum(weights.values())
    return {name: Fraction(100 * sum(weights[host] for host in spec['hosts']), total)
            for name, spec in groups.items()}


def hosts(prefix, count):
    return ['%s%d' % (prefix, number) for number in range(1, count + 1)]


def test_five_percent_to_one_canary_of_five():
    groups = {'canary': {'share': 5, 'hosts': ['a']}, 'stable': {'share': 95, 'hosts': ['b', 'c', 'd', 'e']}}

    assert traffic_weights(groups) == {'a': 4, 'b': 19, 'c': 19, 'd': 19, 'e': 19}


def test_twenty_percent_over_two_canaries_and_eighteen_stable():
    groups = {'canary': {'share': 20, 'hosts': hosts('c', 2)}, 'stable': {'share': 80, 'hosts': hosts('s', 18)}}

    weights = traffic_weights(groups)

    assert set(weights[host] for host in hosts('c', 2)) == {9}
    assert set(weights[host] for host in hosts('s', 18)) == {4}


@pytest.mark.parametrize('shares, sizes', [
    ((50, 50), (2, 3)),
    ((12.5, 87.5), (1, 7)),
    ((33.3, 66.7), (3, 2)),
    ((1, 2, 97), (1, 2, 7)),
    ((0.1, 99.9), (1, 1)),
])
def test_each_group_gets_exactly_its_share_with_the_smallest_weights(shares, sizes):
    groups = {'g%d' % index: {'share': share, 'hosts': hosts('g%d-' % index, size)}
              for index, (share, size) in enumerate(zip(shares, sizes))}

    weights = traffic_weights(groups)

    assert group_shares(groups, weights) == {name: Fraction(str(spec['share'])) for name, spec in groups.items()}
    assert math.gcd(*weights.values()) == 1, 'weights are not the smallest'


def test_hosts_of_a_zero_share_group_get_weight_zero():
    groups = {'canary': {'share': 0, 'hosts': ['a']}, 'stable': {'share': 100, 'hosts': ['b', 'c']}}

    assert traffic_weights(groups) == {'a': 0, 'b': 1, 'c': 1}


@pytest.mark.parametrize('groups, message', [
    ({'canary': {'share': 5, 'hosts': ['a']}, 'stable': {'share': 90, 'hosts': ['b']}},
     r'shares add up to 95.0, not 100 \(canary: 5, stable: 90\)'),
    ({'canary': {'share': 5, 'hosts': []}, 'stable': {'share': 95, 'hosts': ['b']}},
     r"group 'canary' has no hosts"),
    ({'canary': {'share': 5, 'hosts': 'a'}, 'stable': {'share': 95, 'hosts': ['b']}},
     r"group 'canary' has no hosts \(a non-empty list of names is needed, got 'a'\)"),
    ({'canary': {'share': 'five', 'hosts': ['a']}}, r"share of group 'canary' is 'five', not a number"),
    ({'canary': {'share': True, 'hosts': ['a']}}, r"share of group 'canary' is True, not a number"),
    ({'canary': {'hosts': ['a']}}, r"share of group 'canary' is None, not a number"),
    ({'a': {'share': 120, 'hosts': ['a']}, 'b': {'share': -20, 'hosts': ['b']}},
     r"share of group 'a' is 120, not between 0 and 100"),
    ({'canary': {'share': 50, 'hosts': ['a']}, 'stable': {'share': 50, 'hosts': ['b', 'a']}},
     r"host 'a' is in both group 'canary' and group 'stable'"),
    ({'canary': {'share': 100, 'hosts': ['a', 'a']}}, r"group 'canary' lists a host twice"),
    ({'canary': ['a']}, r"group 'canary' should be a dict with share and hosts"),
    ({}, 'expected a non-empty dict of groups'),
])
def test_bad_groups_are_refused_saying_which(groups, message):
    with pytest.raises(AnsibleFilterError, match=message):
        traffic_weights(groups)


def test_upstream_servers_marks_zero_weights_down_and_clears_down_otherwise():
    assert upstream_servers({'a:1': 0, 'b:1': 19}) == [
        {'address': 'a:1', 'down': True},
        {'address': 'b:1', 'weight': 19, 'down': False},
    ]


@pytest.mark.parametrize('weights, message', [
    ({'a:1': -1}, r"weight of 'a:1' is -1, not a whole number >= 0"),
    ({'a:1': 1.5}, r"weight of 'a:1' is 1.5, not a whole number >= 0"),
    (['a:1'], 'expected a dict of address: weight'),
])
def test_upstream_servers_refuses_bad_weights(weights, message):
    with pytest.raises(AnsibleFilterError, match=message):
        upstream_servers(weights)


def test_filters_are_registered_under_their_documented_names():
    assert FilterModule().filters() == {'traffic_weights': traffic_weights, 'upstream_servers': upstream_servers}
