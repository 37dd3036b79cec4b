# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Reconcile decisions: which upstream servers go back into rotation and which go out, after anything went wrong.

The expected release of a host is the one its `current` link points to: that is what the release role switched
to last and what a restart runs. A host is in line when the LB reaches its health check (200) and it answers with
that release's version; anything else - no answer, an error, or another version (a restart still pending, the
controller killed between the link and the restart) - keeps it out until a deploy finishes the job.

Pure functions of plain data (no Ansible objects), so that a table of fleets can test every decision.
"""

from __future__ import annotations

from ansible_collections.fleet.deployer.plugins.module_utils.inputs import address_key
from ansible_collections.fleet.deployer.plugins.plugin_utils.fleet import Refusal, in_service_floor

IN, OUT, UNCHANGED = "in", "out", "unchanged"


def check_floor(spec, total, name="reconcile_min_in_service"):
    """The floor as a number of hosts: never below one, so that reconcile cannot empty a load balancer."""
    floor = in_service_floor(spec, total, name)
    if floor < 1:
        raise Refusal(f"{name}={spec} keeps no host in rotation; it must keep at least 1. Nothing was changed.")
    return floor


def judge(probe, release):
    """(in line, why) for one host: probe {status, version, error} as the LB saw it, release from `current`
    (None when it could not be read)."""
    status, version = probe.get("status") or 0, probe.get("version") or ""
    if status != 200:
        answer = f"health check answered {status}" if status else f"no answer ({probe.get('error') or 'no probe'})"
        return False, f"unhealthy: {answer}"
    if release is None:
        return None, f"healthy on {version or '?'}, but its current release could not be read (unreachable over SSH)"
    if version != release:
        return False, f"answers {version or 'no version'} but its current release is {release} (a deploy did not finish)"
    return True, f"healthy on its current release {release}"


def decide_lb(servers, probes, hosts):
    """The rows for one LB: servers as nginx_upstream_info reads them, probes {address: probe},
    hosts {address: {name, release}}; addresses are matched in their one normalised form (address_key)."""
    hosts = {address_key(address): host for address, host in hosts.items()}
    probes = {address_key(address): probe for address, probe in probes.items()}
    rows = []
    for server in servers:
        address, down = server["address"], bool(server.get("down"))
        host = hosts.get(address_key(address))
        if host is None:
            rows.append({"host": "?", "address": address, "action": UNCHANGED, "down": down,
                         "why": "not an app host of the inventory: left alone"})
            continue
        in_line, why = judge(probes.get(address_key(address), {}), host.get("release"))
        if in_line is None or in_line != down:
            action = UNCHANGED
        else:
            action = IN if in_line else OUT
        rows.append({"host": host["name"], "address": address, "action": action,
                     "down": down if action == UNCHANGED else not in_line, "why": why})
    return rows


def plan(lbs, hosts, floor_spec=1, check_mode=False):
    """What reconcile does on every LB, or a Refusal before anything changes.

    lbs: {lb: {"servers": [...], "probes": {address: {status, version, error}}}};
    hosts: {address: {"name": ..., "release": str or None}}.
    Returns {"changes": {lb: [{address, down}]}, "rows": {lb: [row]}, "lines": [str]}.
    """
    rows, changes, refusals = {}, {}, []
    for lb, seen in lbs.items():
        servers = seen.get("servers") or []
        if not servers:
            raise Refusal(f"{lb}: its upstream could not be read (no server listed). Nothing was changed.")
        rows[lb] = decide_lb(servers, seen.get("probes") or {}, hosts)
        floor = check_floor(floor_spec, len(servers))
        in_rotation = sum(1 for row in rows[lb] if not row["down"])
        going_out = [row for row in rows[lb] if row["action"] == OUT]
        if going_out and in_rotation < floor:
            why = "; ".join(f"{row['host']}: {row['why']}" for row in going_out)
            refusals.append(f"{lb}: taking {', '.join(row['host'] for row in going_out)} out would leave "
                            f"{in_rotation} of {len(servers)} live hosts in rotation, fewer than "
                            f"reconcile_min_in_service={floor_spec} ({floor}) - {why}")
        changes[lb] = [{"address": row["address"], "down": row["down"]} for row in rows[lb]
                       if row["action"] != UNCHANGED]
    if refusals:
        raise Refusal("Refused: " + " | ".join(refusals) + ". Nothing was changed: bring a host back to health first.")
    return {"changes": changes, "rows": rows, "lines": lines(rows, check_mode)}


def lines(rows, check_mode=False):
    """One line per LB and host: in / out / unchanged, and why; then a count per LB."""
    verbs = {IN: "would go in" if check_mode else "in", OUT: "would go out" if check_mode else "out"}
    out = []
    for lb, lb_rows in rows.items():
        for row in lb_rows:
            state = "down" if row["down"] else "in rotation"
            verb = verbs.get(row["action"], f"unchanged ({state})")
            out.append(f"{lb} {row['host']:<8} {row['address']:<20} {verb}: {row['why']}")
        counts = {action: sum(1 for row in lb_rows if row["action"] == action) for action in (IN, OUT, UNCHANGED)}
        kept = sum(1 for row in lb_rows if not row["down"])
        out.append(f"{lb}: {counts[IN]} in, {counts[OUT]} out, {counts[UNCHANGED]} unchanged; "
                   f"{kept} of {len(lb_rows)} in rotation")
    return out
