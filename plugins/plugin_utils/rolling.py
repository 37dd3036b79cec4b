# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Rolling update decisions: the version to roll to, which hosts to skip, when to stop, and the report."""

from __future__ import annotations

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.fleet.deployer.plugins.plugin_utils import analysis, fleet, report


# After a failed batch: stop there (the updated hosts stay updated), or also roll the updated hosts back.
ON_FAILURE = ("stop", "rollback")
UNDONE = "rolled back"


def _target(live, version, rollback):
    """The version to roll to; in a rollback without one, the release the live set ran before."""
    if version:
        return str(version)
    if not rollback:
        raise fleet.Refusal("Say which version to roll out: -e app_version=VERSION. Nothing was changed.")
    # Hosts a rollback already reached do not count, so a second rollback finds nothing to do.
    previous = sorted({host.previous for host in live if host.previous and not host.rolled_back})
    if len(previous) > 1:
        raise fleet.Refusal(f"The live hosts were rolled out from different releases ({', '.join(previous)}); say "
                            "which one to go back to with -e app_version=VERSION. Nothing was changed.")
    return previous[0] if previous else ""


def plan(hosts, lb_servers, options, now):
    """Checks the inputs and the fleet, and plans the rollout - or raises a Refusal before anything changes."""
    spec = fleet.parse_batch(options.get("batch", 1))
    fleet.check_int(options.get("max_fail_percentage", 0), "rolling_max_fail_percentage", 0, 100)
    fleet.check_int(options.get("pause_seconds", 0), "rolling_pause_seconds", 0)
    fleet.check_int(options.get("min_healthy_seconds", 0), "rolling_min_healthy_seconds", 0)
    on_failure = str(options.get("on_failure", "stop"))
    if on_failure not in ON_FAILURE:
        raise fleet.Refusal(f"rolling_on_failure={options.get('on_failure')!r} must be one of {', '.join(ON_FAILURE)}. "
                            "Nothing was changed.")
    unread = fleet.unread_lbs(lb_servers)
    if unread:
        raise fleet.Refusal(f"No live set could be read from {', '.join(unread)} (unreachable, or no upstream yet: "
                            "run playbooks/site.yml first). Nothing was changed.")
    live = fleet.live_hosts(hosts, lb_servers)
    unreachable = [host.name for host in live if host.unreachable]
    if unreachable:
        raise fleet.Refusal(f"Live host {', '.join(unreachable)} could not be reached: what it runs is unknown and it "
                            "could not be replaced. Fix SSH to it (or take it out of the LB and the inventory) and "
                            "run again. Nothing was changed.")
    floor = fleet.in_service_floor(options.get("min_in_service", 1), len(live))
    widest = max(fleet.batch_sizes(spec, len(live)), default=0)
    if live and len(live) - widest < floor:
        raise fleet.Refusal(
            f"rolling_batch={options.get('batch', 1)} takes up to {widest} of the {len(live)} live hosts out of "
            f"rotation at once, leaving {len(live) - widest} in service; rolling_min_in_service="
            f"{options.get('min_in_service', 1)} asks for at least {floor}. Choose a smaller batch. "
            "Nothing was changed.")
    rollback = boolean(options.get("rollback", False), strict=False)
    bake = bake_options(options)
    target = _target(live, options.get("version"), rollback)
    skip = {}
    for host in live:
        if not target:
            skip[host.name] = "nothing to roll back to"
        elif host.running == target and not fleet.drained(host, lb_servers):
            skip[host.name] = f"already on {target}"  # a re-run resumes where a stopped one ended
    # A rollout installs the release on every host it will replace before the first batch (a rollback switches
    # to releases already there), so a batch only switches, restarts and proves its hosts.
    stage = [] if rollback else [host.name for host in live if host.name not in skip]
    return {
        "strategy": "rolling", "action": "rollback" if rollback else "deploy", "rollback": rollback, "target": target, "started": now, "on_failure": on_failure,
        "batch": spec, "live": [host.name for host in live], "before": {host.name: host.running for host in live},
        "skip": skip, "batches": fleet.batches([host.name for host in live], spec), "bake": bake,
        "add_hosts": [{"name": host.name, "groups": ["live", "rolling_stage"] if host.name in stage else ["live"],
                       "plan": {"target": target, "skip": skip.get(host.name, ""), "installed": rollback,
                                "staged": host.name in stage}}
                      for host in live],
    }


def bake_options(options):
    """How each batch is baked: rolling_bake_seconds (0: not at all), rolling_require_analysis, and the analysis
    settings it judges with (analysis_*, checked by the lookup that read them)."""
    settings = options.get("analysis") or analysis.checked_settings({})
    return {"seconds": fleet.check_int(options.get("bake_seconds", 10), "rolling_bake_seconds", 0),
            "require": boolean(options.get("require_analysis", False), strict=False),
            "mode": settings["mode"], "baseline_seconds": settings["baseline_seconds"]}


def _version_now(rollout, name, outcomes):
    return (outcomes.get(name) or {}).get("version") or rollout["before"][name]


def bake_plan(rollout, batch, outcomes, address_of):
    """What the bake after this batch judges: the live hosts on the target so far (new) against those not on it
    (reference), in the same seconds; once none of those is left, against the old version's traffic before the
    rollout's first drain (baseline, analysis_baseline_seconds long). new is empty when there is nothing to bake:
    baking is off, a rollback (back to what ran before), or no host of the batch was replaced."""
    bake, target = rollout.get("bake") or {}, rollout["target"]
    replaced = [name for name in rollout["live"] if (outcomes.get(name) or {}).get("status") == "replaced"]
    if not bake.get("seconds") or rollout["rollback"] or not set(batch) & set(replaced):
        return {"new": [], "reference": [], "baseline": None}
    on_target = [name for name in rollout["live"] if _version_now(rollout, name, outcomes) == target]
    others = [name for name in rollout["live"] if name not in on_target]
    baseline = None
    if not others:
        first = min(float(outcomes[name]["started"]) for name in replaced)
        baseline = {"start": first - bake["baseline_seconds"], "end": first}
    return {"new": [address_of[name] for name in on_target], "reference": [address_of[name] for name in others],
            "baseline": baseline}


def bake_reaction(rollout, batch_number, bake):
    """What a batch's bake makes the rollout do: {stop, back (the batch's replaced hosts go back), text, would}.
    A fail stops it and sends the batch back; not enough data goes on, saying so, unless rolling_require_analysis;
    in a dry run nothing stops, and `would` says what would have."""
    if not bake:
        return {"stop": False, "back": False, "text": "", "would": ""}
    decision, reason = bake["decision"], bake["reason"]
    stop = back = decision == analysis.FAIL
    if decision == analysis.FAIL:
        text = f"the bake failed: {reason}"
    elif decision == analysis.NO_DATA:
        stop = rollout["bake"]["require"]
        text = (f"not judged: {bake['new']['requests']} of {bake['rules']['min_requests']} requests"
                + (" (rolling_require_analysis=true)" if stop else ""))
    else:
        text = f"the bake passed: {reason}"
    if stop and rollout["bake"]["mode"] == "dry_run":
        return {"stop": False, "back": False, "text": text, "would": f"would stop after batch {batch_number}"}
    return {"stop": stop, "back": back, "text": text, "would": ""}


def empty_plan(options, now):
    """The plan of a run that found no live host to roll."""
    rollback = boolean(options.get("rollback", False), strict=False)
    return {"strategy": "rolling", "action": "rollback" if rollback else "deploy", "rollback": rollback, "target": "",
            "started": now, "batch": [1], "live": [], "before": {}, "skip": {}, "batches": [],
            "bake": bake_options(options)}


def verdict(rollout, batch, outcomes, max_fail_percentage, bake=None):
    """Whether the rollout stops after this batch, and why: its failed hosts (one with no outcome, unreachable,
    failed), or its bake (users' traffic; see bake_reaction). undo: the hosts that go back afterwards, batch by
    batch, each to the release it ran before - the batch's replaced hosts when its bake failed, and with
    rolling_on_failure=rollback every host this rollout updated so far."""
    failed = [name for name in batch if outcomes.get(name, {}).get("status", "failed") == "failed"]
    number = rollout["batches"].index(batch) + 1 if batch in rollout["batches"] else 0
    baked = bake_reaction(rollout, number, bake)
    hosts_stop = len(failed) * 100 > int(max_fail_percentage) * len(batch)
    stop = hosts_stop or baked["stop"]
    why = (f"{', '.join(failed)} failed ({len(failed)} of {len(batch)}, more than rolling_max_fail_percentage="
           f"{max_fail_percentage}%)" if hosts_stop else baked["text"])
    reason = f"batch {', '.join(batch)}: {why}; the hosts after it were not touched"
    replaced = [name for name in rollout["live"] if outcomes.get(name, {}).get("status") == "replaced"]
    going_back = [name for name in replaced if stop and (rollout.get("on_failure") == "rollback"
                                                         or (baked["back"] and name in batch))]
    undo = [{"name": name, "groups": ["rolling_undo"],
             "plan": {"target": rollout["before"][name], "skip": "", "installed": True, "staged": False,
                      "note": (f"{baked['text']}; back on {rollout['before'][name]}" if baked["back"] and name in batch
                               else f"rolling_on_failure=rollback: back on {rollout['before'][name]} after the "
                                    "rollout stopped")}}
            for name in going_back]
    return {"stop": stop, "reason": reason if stop else "", "last": batch == rollout["batches"][-1], "undo": undo,
            "bake": baked}


def batch_of(rollout, names):
    """The planned batch that the play's current hosts belong to."""
    return next(batch for batch in rollout["batches"] if set(names) & set(batch))


def outcome(rollout, outcomes, max_fail_percentage, batch_label, check_mode, now, bakes=None):
    """The report of a rollout from what each host recorded (hosts after a stop recorded nothing) and each batch's
    bake (bakes: {batch number: traffic_analysis's result})."""
    target, live = rollout["target"], rollout["live"]
    bakes = {int(number): bake for number, bake in (bakes or {}).items()}
    stopped, would = "", []
    steps = []
    for number, batch in enumerate(rollout["batches"], start=1):
        reached = [outcomes[name] for name in batch if name in outcomes]
        if not reached:
            break
        decided = verdict(rollout, batch, outcomes, max_fail_percentage, bakes.get(number))
        row = report.step_row(f"batch {number}", batch, reached, "stopped" if decided["stop"] else "done")
        if number in bakes:
            row["analysis"] = dict(bakes[number], effect=decided["bake"]["text"], would=decided["bake"]["would"])
        steps.append(row)
        if decided["bake"]["would"]:
            would.append(f"{decided['bake']['would']}: {decided['bake']['text']}")
        if decided["stop"]:
            stopped = decided["reason"]
            break
    hosts = []
    for name in live:
        before = rollout["before"][name]
        done = outcomes.get(name)
        if done is None:
            hosts.append(report.host_row(name, before, before, "not reached"))
        else:
            hosts.append(report.host_row(name, before, done.get("version") or before, done["status"], done.get("note")))
    undone = [name for name in live if outcomes.get(name, {}).get("status") == UNDONE]
    if stopped and undone:
        who = "rolling_on_failure=rollback rolled" if rollout.get("on_failure") == "rollback" else "the batch went back:"
        stopped += f"; {who} {', '.join(undone)} back to the release each ran before"
    on_target = sum(1 for row in hosts if target and row["after"] == target)
    befores = ", ".join(sorted({rollout["before"][name] for name in live if rollout["before"][name]}))
    rows = [
        ("resources", f"1x - no extra hosts; batches of {batch_label} of {len(live)} live hosts out of rotation at "
                      "a time"),
        ("blast radius", f"{target or '-'} serves on {on_target} of {len(live)} live hosts "
                         f"({round(100 * on_target / max(len(live), 1), 1)}% of requests)"),
        ("rollback", "ansible-playbook playbooks/rolling.yml -e app_version=VERSION (rolls again)" if rollout["rollback"]
         else "ansible-playbook playbooks/rollback.yml (rolls again, batch by batch, to the release each host ran "
              "before)"),
    ]
    rows += [(f"bake {number}", _bake_text(bake, step)) for number, (bake, step) in
             ((number, (bakes[number], steps[number - 1])) for number in sorted(bakes) if number <= len(steps))]
    if would:  # analysis_mode=dry_run: what an enforced run would have done instead
        rows.append(("dry run", "; ".join(would) + " - not enforced (analysis_mode=dry_run)"))
    name = "rolling update (rollback)" if rollout["rollback"] else "rolling update"
    changed = any(row["status"] not in ("unchanged", "not reached") for row in hosts)
    status = "stopped" if stopped else "check" if check_mode else "completed" if changed else "unchanged"
    text = f"STOPPED after {stopped}" if stopped else "check mode: nothing was changed" if check_mode else "completed"
    if would:
        text += f" (dry run: {'; '.join(item.split(':')[0] for item in would)})"
    result = report.outcome(name, f"{befores or '-'} -> {target or 'nothing to do'}", text, status,
                            rollout["started"], now, rows, hosts, steps)
    result["stopped"] = stopped
    return result


def _bake_text(bake, step):
    """One bake for the report: its effect, both sides' figures, the p-value and where the numbers came from."""
    against = "the old version's traffic before the rollout" if bake.get("baseline") else "the hosts not yet updated"
    p_value = f", p={bake['p_value']:.2g}" if bake.get("p_value") is not None else ""
    return (f"{step['analysis']['effect']}; updated hosts {report.side_text(bake['new'])}; against {against}: "
            f"{report.side_text(bake['reference'])}; judged on {bake['source']}{p_value}")
