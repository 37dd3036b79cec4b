# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Rolling update decisions: the version to roll to, which hosts to skip, when to stop, and the report."""

from __future__ import annotations

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.fleet.deployer.plugins.plugin_utils import fleet, report


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
        "strategy": "rolling", "rollback": rollback, "target": target, "started": now, "on_failure": on_failure,
        "batch": spec, "live": [host.name for host in live], "before": {host.name: host.running for host in live},
        "skip": skip, "batches": fleet.batches([host.name for host in live], spec),
        "add_hosts": [{"name": host.name, "groups": ["live", "rolling_stage"] if host.name in stage else ["live"],
                       "plan": {"target": target, "skip": skip.get(host.name, ""), "installed": rollback,
                                "staged": host.name in stage}}
                      for host in live],
    }


def empty_plan(options, now):
    """The plan of a run that found no live host to roll."""
    return {"strategy": "rolling", "rollback": boolean(options.get("rollback", False), strict=False), "target": "",
            "started": now, "batch": [1], "live": [], "before": {}, "skip": {}, "batches": []}


def verdict(rollout, batch, outcomes, max_fail_percentage):
    """Whether the rollout stops after this batch, and why. A host with no outcome (unreachable) failed.
    undo: with rolling_on_failure=rollback, the hosts this rollout updated so far, each with the release to go
    back to (the one it ran before); they are rolled back batch by batch after the stop."""
    failed = [name for name in batch if outcomes.get(name, {}).get("status", "failed") == "failed"]
    stop = len(failed) * 100 > int(max_fail_percentage) * len(batch)
    reason = (f"batch {', '.join(batch)}: {', '.join(failed)} failed ({len(failed)} of {len(batch)}, more than "
              f"rolling_max_fail_percentage={max_fail_percentage}%); the hosts after it were not touched")
    undo = []
    if stop and rollout.get("on_failure") == "rollback":
        undo = [{"name": name, "groups": ["rolling_undo"],
                 "plan": {"target": rollout["before"][name], "skip": "", "installed": True, "staged": False}}
                for name in rollout["live"] if outcomes.get(name, {}).get("status") == "replaced"]
    return {"stop": stop, "reason": reason if stop else "", "last": batch == rollout["batches"][-1], "undo": undo}


def batch_of(rollout, names):
    """The planned batch that the play's current hosts belong to."""
    return next(batch for batch in rollout["batches"] if set(names) & set(batch))


def outcome(rollout, outcomes, max_fail_percentage, batch_label, check_mode, now):
    """The report of a rollout from what each host recorded (hosts after a stop recorded nothing)."""
    target, live = rollout["target"], rollout["live"]
    stopped = ""
    steps = []
    for batch in rollout["batches"]:
        reached = [outcomes[name] for name in batch if name in outcomes]
        if not reached:
            break
        decided = verdict(rollout, batch, outcomes, max_fail_percentage)
        steps.append(report.step_row(f"batch {len(steps) + 1}", batch, reached, "stopped" if decided["stop"] else "done"))
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
        stopped += f"; rolling_on_failure=rollback rolled {', '.join(undone)} back to the release each ran before"
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
    name = "rolling update (rollback)" if rollout["rollback"] else "rolling update"
    changed = any(row["status"] not in ("unchanged", "not reached") for row in hosts)
    status = "stopped" if stopped else "check" if check_mode else "completed" if changed else "unchanged"
    text = f"STOPPED after {stopped}" if stopped else "check mode: nothing was changed" if check_mode else "completed"
    result = report.outcome(name, f"{befores or '-'} -> {target or 'nothing to do'}", text, status,
                            rollout["started"], now, rows, hosts, steps)
    result["stopped"] = stopped
    return result
