# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""The fleet as every strategy sees it: which hosts the load balancers send traffic to, and how batches form.

Pure functions of plain data (no Ansible objects), so that a table of fleets can test every decision.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from itertools import groupby

# Whole percentages only: Ansible's serial reads "12.5%" as an error.
_PERCENT = re.compile(r"^\s*(\d+)\s*%\s*$")
_COUNT = re.compile(r"^\s*\d+\s*$")


class Refusal(Exception):
    """A strategy will not start: the message names the bad value and says that nothing changed."""


@dataclass
class Host:
    """What one app host runs, and how every LB lists it."""

    name: str
    address: str = ""
    running: str = ""
    previous: str = ""
    rolled_back: bool = False
    unreachable: bool = False  # what it runs could not be read in this run (SSH failed, or the read did)


def live_hosts(hosts, lb_servers):
    """The hosts (in inventory order) that any LB's upstream lists, drained or not."""
    listed = {server["address"] for servers in lb_servers.values() for server in servers or []}
    return [host for host in hosts if host.address in listed]


def drained(host, lb_servers):
    """Whether some LB has the host marked down (taken out of rotation)."""
    return any(server["address"] == host.address and server.get("down")
               for servers in lb_servers.values() for server in servers or [])


def unread_lbs(lb_servers):
    """The LBs whose upstream could not be read (unreachable, or no upstream yet)."""
    return [lb for lb, servers in lb_servers.items() if not servers]


def parse_batch(spec, name="rolling_batch"):
    """A batch spec as Ansible's `serial` takes it - a count, a percentage or a list of them - checked.

    Ansible's serial treats 0 (and a percentage that rounds to 0 hosts, which becomes 1) specially: 0 means
    every host at once. A count must therefore be 1 or more, and a percentage above 0 and at most 100.
    """
    items = spec if isinstance(spec, list) else [spec]
    if not items:
        raise Refusal(f"{name}=[] is empty: give a count (2), a percentage (25%) or a list of them. "
                      "Nothing was changed.")
    checked = []
    for item in items:
        text = str(item)
        percent = _PERCENT.match(text)
        if isinstance(item, bool) or not (percent or _COUNT.match(text)):
            raise Refusal(f"{name}={item!r} is not a count of hosts (2) or a percentage (25%). Nothing was changed.")
        if percent and not 0 < int(percent.group(1)) <= 100:
            raise Refusal(f"{name}={text} must be above 0% and at most 100%. Nothing was changed.")
        if not percent and int(text) < 1:
            raise Refusal(f"{name}={text} must be at least 1 host (Ansible's serial would take 0 as every host "
                          "at once). Nothing was changed.")
        checked.append(f"{int(percent.group(1))}%" if percent else int(text))
    return checked


def batch_sizes(spec, total):
    """The sizes of the batches Ansible's `serial` makes of `total` hosts (its pct_to_int, last item repeats)."""
    sizes, left = [], total
    for index in range(total):
        if left <= 0:
            break
        item = spec[min(index, len(spec) - 1)]
        size = (int(int(item[:-1]) / 100 * total) or 1) if isinstance(item, str) else item
        sizes.append(min(size, left))
        left -= size
    return sizes


def batches(names, spec):
    """The names split the way `serial` splits a play's hosts."""
    out, start = [], 0
    for size in batch_sizes(spec, len(names)):
        out.append(names[start:start + size])
        start += size
    return out


def in_service_floor(spec, total, name="rolling_min_in_service"):
    """rolling_min_in_service (a count or a percentage of the live hosts) as a number of hosts."""
    text = str(spec)
    percent = _PERCENT.match(text)
    if isinstance(spec, bool) or not (percent or _COUNT.match(text)):
        raise Refusal(f"{name}={spec!r} is not a count of hosts (1) or a percentage (50%). Nothing was changed.")
    if percent:
        share = int(percent.group(1))
        if share > 100:
            raise Refusal(f"{name}={text} is more than 100%. Nothing was changed.")
        return -int(-share * total // 100)  # round up: 50% of 5 hosts keeps 3 in service
    return int(text)


def serving(servers, answers, host_of):
    """Who serves: a line per upstream server with the versions its host answered through the LB, the hosts
    in rotation that never answered, and every version seen. answers: the JSON bodies ({host, version})."""
    seen = {}
    for answer in answers:
        seen.setdefault(answer.get("host"), []).append(answer.get("version"))
    lines, missing = [], []
    for server in servers:
        host = host_of.get(server["address"], "?")
        versions = ",".join(dict.fromkeys(seen.get(host, []))) or "no"
        lines.append(f"{host:<8} {server['address']:<20} weight={server.get('weight', 1)!s:<3} "
                     f"{'DOWN' if server.get('down') else 'up':<5} answered: {versions}")
        if not server.get("down") and not server.get("backup") and host not in seen:
            missing.append(host)
    versions = sorted({a.get("version") for a in answers if a.get("version")})
    return {"lines": lines, "missing": missing, "versions": versions}


NO_RESULT = "no result (unreachable, or failed before its smoke test: see above)"


def smoke_failures(hosts, label, outcomes):
    """Why traffic must not go to these freshly deployed hosts ('' when every one passed its smoke test);
    hosts that failed for the same reason are named together."""
    failed = [(name, outcomes.get(name, {}).get("note") or NO_RESULT) for name in hosts
              if outcomes.get(name, {}).get("status") != "passed"]
    if not failed:
        return ""
    grouped = "; ".join(f"{', '.join(pair[0] for pair in same)}: {reason}"
                        for reason, same in groupby(sorted(failed, key=lambda f: f[1]), key=lambda f: f[1]))
    return f"{len(failed)} of {len(hosts)} {label} hosts failed - {grouped}"


def smoke_outcome(answer, version, status, asker):
    """A freshly deployed host's smoke test, judged from what fleet.deployer.backend_probe heard from `asker`:
    health 200, the smoke request answering `status` with `version` ('' for any), healthy all along.
    Returns {status: passed|failed, version, note}."""
    answer = answer or {}

    def said(code, what):
        return f"Status code was {code} and not [{what}]" if code else answer.get("error") or "no answer"
    if answer.get("health") != 200:
        note = f"Wait for the health check, from {asker}: {said(answer.get('health'), 200)}"
    elif answer.get("request") != status:
        note = f"Send the smoke request, from {asker}: {said(answer.get('request'), status)}"
    elif version and answer.get("version") != version:
        note = f"Check the version: it answered with version {answer.get('version') or 'none'}, not {version}"
    elif answer.get("unhealthy"):
        note = f"Stay healthy, from {asker}: {len(answer['unhealthy'])} checks failed ({', '.join(answer['unhealthy'])})"
    else:
        return {"status": "passed", "version": answer.get("version", ""), "note": ""}
    return {"status": "failed", "version": answer.get("version", ""), "note": note}


def whole_number(value):
    """value as an int (extra-vars arrive as strings), or None when it is not a whole number (booleans are not)."""
    if isinstance(value, bool):
        return None
    try:
        return int(str(value))
    except ValueError:
        return None


def check_int(value, name, low, high=None):
    """An integer option within [low, high], or a Refusal naming it."""
    number = whole_number(value)
    if number is None or number < low or (high is not None and number > high):
        bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise Refusal(f"{name}={value!r} must be a whole number {bounds}. Nothing was changed.")
    return number


def open_connections_filter(port, ignored_addresses):
    """The `ss` filter of the connections a draining host waits for: established to its port, from anywhere but
    itself and the addresses ignored (monitoring servers keep their scrape connections open). Each ignored address
    must be an IP address: it is written into a command line."""
    checked = []
    for address in ignored_addresses:
        try:
            checked.append(str(ipaddress.ip_address(str(address))))
        except ValueError:
            raise Refusal(f"nginx_lb_drain_ignore_addresses: {address!r} is not an IP address. Nothing was "
                          "changed.") from None
    port = check_int(port, "the backend port", 1, 65535)
    ignored = "".join(f" and not ( dst {address} )" for address in checked)
    return f"( sport = :{port} ) and not ( dst 127.0.0.0/8 ){ignored}"
