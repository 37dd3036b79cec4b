# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
# Documentation: traffic_weights.yml and upstream_servers.yml next to this file.

"""Jinja filters that turn traffic shares into Nginx weights and those into nginx_upstream servers."""

from __future__ import annotations

from fractions import Fraction
from functools import reduce
from math import gcd, lcm

from ansible.errors import AnsibleFilterError


def _share(group, spec):
    share = spec.get('share')
    try:
        # str() first so that 12.5 or 0.1 are read as written, not as their binary approximation.
        value = None if isinstance(share, bool) else Fraction(str(share))
    except ValueError:
        value = None
    if value is None:
        raise AnsibleFilterError("traffic_weights: share of group '%s' is %r, not a number" % (group, share))
    if not 0 <= value <= 100:
        raise AnsibleFilterError("traffic_weights: share of group '%s' is %s, not between 0 and 100" % (group, share))
    return value


def _hosts(group, spec):
    hosts = spec.get('hosts')
    if not isinstance(hosts, (list, tuple)) or not hosts or not all(isinstance(host, str) and host for host in hosts):
        raise AnsibleFilterError("traffic_weights: group '%s' has no hosts (a non-empty list of names is needed, "
                                 "got %r)" % (group, hosts))
    if len(set(hosts)) != len(hosts):
        raise AnsibleFilterError("traffic_weights: group '%s' lists a host twice: %s" % (group, hosts))
    return hosts


def traffic_weights(groups):
    """{group: {'share': percent, 'hosts': [...]}} -> {host: weight}: the smallest integer weights that give each
    group exactly its share, spread evenly over its hosts. Hosts of a 0% group get weight 0."""
    if not isinstance(groups, dict) or not groups:
        raise AnsibleFilterError('traffic_weights: expected a non-empty dict of groups, got %r' % (groups,))
    for group, spec in groups.items():
        if not isinstance(spec, dict):
            raise AnsibleFilterError("traffic_weights: group '%s' should be a dict with share and hosts, got %r"
                                     % (group, spec))
    shares = {group: _share(group, spec) for group, spec in groups.items()}
    hosts = {group: _hosts(group, spec) for group, spec in groups.items()}
    if sum(shares.values()) != 100:
        listed = ', '.join('%s: %s' % (group, spec['share']) for group, spec in groups.items())
        raise AnsibleFilterError('traffic_weights: shares add up to %s, not 100 (%s)'
                                 % (float(sum(shares.values())), listed))
    owner = {}
    for group, members in hosts.items():
        for host in members:
            if host in owner:
                raise AnsibleFilterError("traffic_weights: host '%s' is in both group '%s' and group '%s'"
                                         % (host, owner[host], group))
            owner[host] = group

    # Each host of a group weighs share / number of hosts; scale those fractions to the smallest integers.
    per_host = {group: shares[group] / len(hosts[group]) for group in groups}
    scale = reduce(lcm, (value.denominator for value in per_host.values()), 1)
    integers = {group: int(value * scale) for group, value in per_host.items()}
    divisor = reduce(gcd, integers.values())
    return {host: integers[owner[host]] // divisor for host in owner}


def upstream_servers(weights):
    """{address: weight} -> servers for nginx_upstream: weight 0 becomes down (Nginx has no weight 0, and the
    weight the server had is kept), any other weight is set and the server is taken out of down."""
    if not isinstance(weights, dict):
        raise AnsibleFilterError('upstream_servers: expected a dict of address: weight, got %r' % (weights,))
    servers = []
    for address, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            raise AnsibleFilterError("upstream_servers: weight of '%s' is %r, not a whole number >= 0"
                                     % (address, weight))
        servers.append({'address': address, 'down': True} if weight == 0
                       else {'address': address, 'weight': weight, 'down': False})
    return servers


class FilterModule:
    def filters(self):
        return {'traffic_weights': traffic_weights, 'upstream_servers': upstream_servers}
