# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Canary decisions: the steps, where a canary stands (read from the LBs), what each step writes to the LBs, and
the report. The judgement of a step on users' traffic is plugin_utils/analysis.py.

The LB side (nginx_lb creates it): the main upstream holds the stable hosts; `<upstream>-canary` the canary hosts;
`<upstream>-mix` both, weighted (weights mode); the split_clients `$fleet_split` sends each request's key to the
mix (weights mode) or a sticky share to the canary upstream (sticky mode), the rest to the main upstream;
`$fleet_always` is where `X-Canary: always` goes. `never` always goes to the main upstream. A JSON state file on
each LB keeps what the canary started with, so promote and abort need only the action.
"""

from __future__ import annotations

import math
from numbers import Number

from ansible_collections.fleet.deployer.plugins.filter.traffic import traffic_weights
from ansible_collections.fleet.deployer.plugins.plugin_utils import analysis, fleet, report

ACTIONS = ("deploy", "promote", "abort", "status")
SPLITS = ("weights", "sticky")
PAUSE = "pause"
DEFAULT_STEPS = [5, 20, 50, 100]
# How a canary run ended -> the report's status (stopped: every host serving, the LBs valid).
# What a judged step keeps of traffic_analysis's result, for the report and the summary.
JUDGEMENT = ("window", "source", "p_value", "rules", "lbs", "queries", "new", "reference")
RUN_STATUS = {"promoted": "completed", "paused": "completed", "abort": "completed", "aborted": "stopped",
              "unchanged": "unchanged", "status": "unchanged", "failed": "failed"}


def parse_steps(steps):
    """The steps, checked: shares in % rising to 100 (promotion), with "pause" between them."""
    if not isinstance(steps, list) or not steps:
        raise fleet.Refusal(f"canary_steps={steps!r} must be a list such as [5, 20, 50, 100]. Nothing was changed.")
    last = 0
    for index, step in enumerate(steps):
        if step == PAUSE:
            if index == 0 or steps[index - 1] == PAUSE or index == len(steps) - 1:
                raise fleet.Refusal(f"canary_steps={steps!r}: a pause goes between two shares. Nothing was changed.")
            continue
        if isinstance(step, bool) or not isinstance(step, Number) or not last < step <= 100:
            raise fleet.Refusal(f"canary_steps={steps!r}: {step!r} is not a share above {last:g} and at most 100 "
                                "(each step a larger share of requests, in %). Nothing was changed.")
        last = step
    if last != 100:
        raise fleet.Refusal(f"canary_steps={steps!r} must end with 100 (the promotion). Nothing was changed.")
    return steps


def hosts_needed(share, live_count):
    """Canary hosts at a share: ceil(share x live / 100), at least one."""
    return max(1, math.ceil(share * live_count / 100))


def check_inputs(options):
    """The inputs of a canary run, or a Refusal naming the bad one."""
    action, split = options.get("action", "deploy"), options.get("split", "weights")
    if action not in ACTIONS:
        raise fleet.Refusal(f"canary_action={action!r} is not one of {', '.join(ACTIONS)}. Nothing was changed.")
    if split not in SPLITS:
        raise fleet.Refusal(f"canary_split={split!r} is not one of {', '.join(SPLITS)}. Nothing was changed.")
    if action == "deploy" and not str(options.get("version") or ""):
        raise fleet.Refusal("Say which version to deploy: -e app_version=VERSION. Nothing was changed.")
    parse_steps(options.get("steps", DEFAULT_STEPS))
    for name in ("step_seconds", "step_deadline_seconds"):
        fleet.check_int(options.get(name, 1), f"canary_{name}", 1)


def reads(groups, action):
    """The app hosts whose release the run reads over SSH. A manual abort with colours reads none: it only sends
    0% to the canary on the LBs, and their state file says everything it needs (a break-glass abort). In place,
    an abort puts the canary hosts back on their release, so it reads them like every other action."""
    in_place = not (groups.get("blue") and groups.get("green"))
    return [] if action == "abort" and not in_place else list(groups.get("app", []))


def running_canary(states):
    """The canary the LBs' state files describe, or None. They must agree."""
    found = {lb: state for lb, state in states.items() if state}
    if not found:
        return None
    distinct = {repr(sorted((key, repr(value)) for key, value in state.items())) for state in found.values()}
    if len(distinct) > 1 or len(found) != len(states):
        raise fleet.Refusal(f"The LBs do not agree on the canary: {', '.join(sorted(found))} have one, "
                            f"{', '.join(sorted(set(states) - set(found))) or 'none'} not, or theirs differ. "
                            "Abort it (-e canary_action=abort). Nothing was changed.")
    return next(iter(found.values()))


def plan(groups, hosts, lb_servers, states, options, now):
    """What this run does. With the groups blue and green the idle colour supplies the canary hosts; without
    them the canary is in place: live hosts are drained, upgraded and weighed in, and promotion rolls the rest."""
    check_inputs(options)
    action = options.get("action", "deploy")
    current = running_canary(states)
    in_place = not (groups.get("blue") and groups.get("green"))
    if in_place:
        live = [host.name for host in fleet.live_hosts([hosts[name] for name in groups.get("app", [])], lb_servers)]
        live_name, idle_name, idle = "the stable hosts", "in place", []
        _check_read(lb_servers)
    else:
        live_name = _live_colour(groups, hosts, lb_servers)
        idle_name = "green" if live_name == "blue" else "blue"
        live, idle = list(groups[live_name]), list(groups[idle_name])
    version = str(current["version"] if current else options.get("version") or "")
    stable_versions = sorted({hosts[name].running for name in live
                              if hosts[name].running and (hosts[name].running != version or not in_place)})
    base = {"strategy": "canary", "action": action, "in_place": in_place, "live": live_name, "idle": idle_name,
            "stable": live, "pool": idle, "started": now, "note": "",
            # an abort reads no app host: the canary's state on the LBs knows the stable version
            "live_version": ", ".join(stable_versions) or (current or {}).get("stable_version", ""),
            "prepare": [], "run_steps": [], "abort": False, "live_count": len(live)}
    if action == "status":
        return dict(base, canary=current or {}, note="" if current else "No canary runs.")
    if action == "deploy":
        if current:
            raise fleet.Refusal(f"A canary of {current['version']} runs ({_where(current)}): promote it "
                                "(-e canary_action=promote) or abort it (-e canary_action=abort) first. "
                                "Nothing was changed.")
        steps = parse_steps(options.get("steps", DEFAULT_STEPS))
        if sorted({hosts[name].running for name in live}) == [version]:
            return dict(base, note=f"Nothing to do: {live_name} (live) already run{'' if in_place else 's'} "
                                   f"{version}.", canary={"version": version})
        if not in_place and len(idle) < hosts_needed(100, len(live)):
            raise fleet.Refusal(f"The idle colour {idle_name} has {len(idle)} hosts; promoting the canary needs "
                                f"{len(live)} (as many as {live_name}). Nothing was changed.")
        canary = {"version": version, "steps": steps, "step": -1, "split": options.get("split", "weights"),
                  "started": now, "stable_version": base["live_version"]}
        run = dict(base, canary=canary, run_steps=_steps_from(canary, 0))
    elif not current:
        return dict(base, note=f"No canary runs: nothing to {action}.", canary={})
    elif action == "abort":
        run = dict(base, canary=current, abort=True)
    else:
        run = dict(base, canary=current, run_steps=_steps_from(current, current["step"] + 1))
    return _hosts_of_run(run, hosts) if in_place else dict(run, prepare=idle if action == "deploy" else [])


def _check_read(lb_servers):
    unread = fleet.unread_lbs(lb_servers)
    if unread:
        raise fleet.Refusal(f"No live set could be read from {', '.join(unread)} (unreachable, or no upstream yet: "
                            "run playbooks/site.yml first). Nothing was changed.")


def _hosts_of_run(run, hosts):
    """In place: the live hosts this run's steps need as canaries (those already on the version first) - the
    pool - and the stable rest. The pool's new hosts are drained and upgraded before the first step."""
    live, version = run["stable"], run["canary"]["version"]
    upgraded = [name for name in live if hosts[name].running == version]
    below = [step["step"] for step in run["run_steps"] if step["step"] not in (PAUSE, 100)]
    needed = hosts_needed(max(below), len(live)) if below else 1
    pool = (upgraded + [name for name in live if name not in upgraded])[:max(needed, len(upgraded))]
    stable = [name for name in live if name not in pool]
    if not stable and not run["abort"]:
        raise fleet.Refusal(f"An in-place canary at {max(below, default=0)}% of {len(live)} live hosts would leave "
                            "no stable host to compare it with. Use fewer hosts per step or an idle colour. "
                            "Nothing was changed.")
    return dict(run, pool=pool, stable=stable, prepare=[] if run["abort"] else pool[len(upgraded):])


def _live_colour(groups, hosts, lb_servers):
    _check_read(lb_servers)
    colour_of = {hosts[name].address: colour for colour in ("blue", "green") for name in groups.get(colour, [])}
    seen = {colour_of.get(server["address"]) for servers in lb_servers.values() for server in servers}
    if len(seen) != 1 or None in seen:
        raise fleet.Refusal("A canary from the idle colour needs every LB to send all traffic to one colour (blue "
                            "or green). Nothing was changed.")
    return seen.pop()


def _where(canary):
    steps, index = canary["steps"], canary["step"]
    if index < 0:
        return "starting"
    share = steps[index - 1] if steps[index] == PAUSE else steps[index]
    state = "paused at" if steps[index] == PAUSE else "at"
    return f"{state} {share}%, step {index + 1} of {len(steps)}"


def _steps_from(canary, first):
    """The steps this run goes through, from index `first` up to and including the next pause (or the end)."""
    run = []
    for index in range(first, len(canary["steps"])):
        run.append({"index": index, "step": canary["steps"][index]})
        if canary["steps"][index] == PAUSE:
            break
    return run


def lb_settings(canary_plan, share, address_of, upstream):
    """What every LB gets at a share: the canary upstream's servers, the mix's weights, the splits.

    The canary hosts are the first hosts_needed(share) of the idle colour; at 100% all of them take the traffic
    and none of the stable hosts (the promotion then switches the main upstream to the idle colour)."""
    stable = [address_of[name] for name in canary_plan["stable"]]
    pool = [address_of[name] for name in canary_plan["pool"]]
    active = pool[:hosts_needed(share, canary_plan["live_count"])]
    weights = traffic_weights({"canary": {"share": share, "hosts": active},
                               "stable": {"share": 100 - share, "hosts": stable}})
    mix = [{"address": address, "weight": weight, "down": False} if weight else {"address": address, "down": True}
           for address, weight in weights.items()]
    sticky = canary_plan["canary"]["split"] == "sticky"
    split = ([{"value": f"{upstream}-canary", "percent": share}, {"value": upstream, "percent": "*"}] if sticky
             else [{"value": f"{upstream}-mix", "percent": "*"}])
    return {"canary_servers": [{"address": address, "down": False} for address in active], "mix_servers": mix,
            "split": split, "always": [{"value": f"{upstream}-canary", "percent": "*"}], "canary_hosts": len(active),
            "canary_share": share}


def gate(canary_plan, outcomes):
    """Why no step may start ('' when every freshly deployed canary host passed its smoke test)."""
    return fleet.smoke_failures(canary_plan["prepare"], canary_plan["idle"], outcomes)


def current_share(state):
    """The share of the step a canary's state says it is at (0 before the first)."""
    passed = [step for step in state.get("steps", [])[:state.get("step", -1) + 1] if step != PAUSE]
    return passed[-1] if passed else 0


def ending(canary_plan):
    """How a run that went through its steps ended: {status, outcome} (an abort for a failed step is the rescue's)."""
    canary, action = canary_plan["canary"], canary_plan["action"]
    if canary_plan["note"]:
        return {"status": "unchanged", "outcome": canary_plan["note"]}
    if action == "status":
        return {"status": "status", "outcome": f"a canary of {canary['version']} runs ({_where(canary)})"}
    if action == "abort":
        return {"status": "abort", "outcome": f"aborted on request: every LB sends all traffic to "
                                              f"{canary_plan['live']} ({canary_plan['live_version']}) again"}
    if canary_plan["in_place"]:
        return {"status": "promoted", "outcome": f"promoted: every live host runs {canary['version']}"}
    return {"status": "promoted", "outcome": f"promoted: {canary_plan['idle']} is live on {canary['version']}"}


def in_place_groups(canary_plan, status):
    """In place, the hosts the plays after the steps take care of, as [host, group] pairs: after an abort the canary
    hosts go back (canary_revert); after a promotion the stable rest is rolled (canary_roll) and the canary hosts
    rejoin the main upstream (canary_readd)."""
    if not canary_plan["in_place"]:
        return []
    if status in ("abort", "aborted"):
        return [[name, "canary_revert"] for name in canary_plan["pool"]]
    if status == "promoted":
        return ([[name, "canary_roll"] for name in canary_plan["stable"]]
                + [[name, "canary_readd"] for name in canary_plan["pool"]])
    return []


def step_row(watch, step, settings, mode="enforce"):
    """One judged step for the report, from traffic_analysis's result, and what it makes the run do: a step that
    did not pass aborts the canary (no data by the deadline is never a pass) - or, in a dry run, says it would."""
    decision, reason = watch.get("decision", ""), watch.get("reason", "")
    if decision == analysis.NO_DATA:
        reason += " when the step deadline passed"
    acted = decision != analysis.PASS
    dry_run = mode == "dry_run"
    return {"index": step["index"], "share": watch.get("share", {}).get("configured"),
            "observed_share": watch.get("share", {}).get("observed") or 0, "canary": _side(watch.get("new", {})),
            "stable": _side(watch.get("reference", {})), "decision": decision, "reason": reason,
            "started": watch.get("started"), "finished": watch.get("finished"),
            "canary_hosts": settings.get("canary_hosts", 0), "abort": acted and not dry_run,
            "would": f"would abort at step {step['index'] + 1}" if acted and dry_run else "",
            "judgement": {key: watch.get(key) for key in JUDGEMENT}}


def _side(stats):
    p95 = stats.get("p95")
    return {"requests": stats.get("requests", 0), "error_rate": stats.get("error_rate") or 0,
            "upstream_failures": stats.get("upstream_failures", stats.get("retried", 0)),
            "p95_ms": None if p95 is None else round(p95 * 1000)}


def report_of(canary_plan, steps_done, outcome_text, status, now):
    """The canary's report: one row per step with its numbers, then the comparison rows."""
    canary = canary_plan["canary"]
    steps = [report.step_row(f"step {done['index'] + 1}: {done['share']}%", done.get("hosts", []),
                             [{"started": done.get("started"), "finished": done.get("finished")}], done["decision"])
             for done in steps_done]
    peak = max((done.get("observed_share", 0) for done in steps_done), default=0)
    rows = [("live", f"{canary_plan['live']} on {canary_plan['live_version']}; " + (
        f"in place: {len(canary_plan['pool'])} of the {canary_plan['live_count']} live hosts run the canary"
        if canary_plan["in_place"] else f"the canary hosts come from {canary_plan['idle']}"))]
    rows += [(f"step {done['index'] + 1}", _step_text(done)) for done in steps_done]
    rows += [] if status in ("unchanged", "status") else [
        ("resources", _resources(canary_plan, steps_done)),
        ("blast radius", f"{peak:.1f}% of requests at the most reached {canary.get('version', '-')} while it was "
                         "judged" + ("; all of them after the promotion" if status == "promoted" else "")),
        ("rollback", _undo(canary_plan, status)),
    ]
    would = [f"{done['would']}: {done['reason']}" for done in steps_done if done.get("would")]
    if would:  # analysis_mode=dry_run: what an enforced run would have done instead
        rows.append(("dry run", "; ".join(would) + " - not enforced (analysis_mode=dry_run)"))
        outcome_text += f" (dry run: {'; '.join(done['would'] for done in steps_done if done.get('would'))})"
    change = f"{canary_plan['live_version']} -> {canary.get('version', '-')}"
    result = report.outcome("canary", change, outcome_text, RUN_STATUS[status], canary_plan["started"], now, rows, [],
                            steps)
    result["canary_steps"] = steps_done
    return result


def _resources(canary_plan, steps_done):
    peak_hosts = max((done.get("canary_hosts", 0) for done in steps_done), default=0)
    if canary_plan["in_place"]:
        return (f"1x - no extra hosts; {len(canary_plan['pool'])} of the {canary_plan['live_count']} live hosts "
                "left the stable side to run the canary")
    return (f"{1 + peak_hosts / max(canary_plan['live_count'], 1):.1f}x at the peak: {peak_hosts} "
            f"{canary_plan['idle']} host(s) beside {canary_plan['live_count']} stable ones")


def _undo(canary_plan, status):
    if status == "paused":
        return "ansible-playbook playbooks/canary.yml -e canary_action=abort (0% to the canary in one reload)"
    if status == "promoted" and canary_plan["in_place"]:
        return (f"ansible-playbook playbooks/rolling.yml -e app_version={canary_plan['canary']['stable_version']} "
                "(rolls back, batch by batch)")
    if status == "promoted":
        return (f"ansible-playbook playbooks/bluegreen.yml -e bluegreen_action=rollback (back to {canary_plan['live']} "
                "in one reload)")
    return f"none needed: every LB sends all traffic to {canary_plan['live']}"


def _ms(side):
    return "-" if side.get("p95_ms") is None else f"{side['p95_ms']} ms"


def _step_text(done):
    canary, stable = done.get("canary", {}), done.get("stable", {})
    figures = (f"share {done['share']}% configured, {done.get('observed_share', 0):.1f}% observed; canary "
               f"{canary.get('requests', 0)} requests, {canary.get('error_rate', 0) * 100:.2f}% errors, "
               f"p95 {_ms(canary)}; stable {stable.get('requests', 0)} requests, "
               f"{stable.get('error_rate', 0) * 100:.2f}% errors, p95 {_ms(stable)}")
    judged = done.get("judgement") or {}
    source = f"; judged on {judged['source']}" if judged.get("source") else ""
    p_value = f", p={judged['p_value']:.2g}" if judged.get("p_value") is not None else ""
    dry_run = f" (dry run: {done['would']}, not enforced)" if done.get("would") else ""
    return f"{done['decision']}{dry_run}: {done.get('reason', '')}; {figures}{source}{p_value}"
