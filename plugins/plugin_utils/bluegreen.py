# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Blue-green decisions. The LBs' upstreams are the only state: the colour they send traffic to is live, the
other one idles. Everything here is a function of that state and of what the app hosts run."""

from __future__ import annotations

from dataclasses import replace

from ansible.module_utils.compat.version import LooseVersion

from ansible_collections.fleet.deployer.plugins.plugin_utils import analysis, fleet, report

COLOURS = ("blue", "green")
ACTIONS = ("deploy", "rollback", "retire", "start")


def preflight(groups, action, version):
    """Refuses an inventory that is not blue-green, or inputs that cannot work, before any host is contacted."""
    missing = [colour for colour in COLOURS if colour not in groups]
    if missing:
        raise fleet.Refusal(f"The inventory has no {' and no '.join(missing)} group: blue-green needs the app hosts "
                            "split into the groups blue and green. Nothing was changed.")
    empty = [colour for colour in COLOURS if not groups[colour]]
    if empty:
        raise fleet.Refusal("".join(f"The {colour} group is empty. " for colour in empty)
                            + "Blue-green needs hosts in both colours. Nothing was changed.")
    both = [host for host in groups["blue"] if host in groups["green"]]
    if both:
        raise fleet.Refusal(f"{', '.join(both)} {'is' if len(both) == 1 else 'are'} in both blue and green: each "
                            "app host must have exactly one colour. Nothing was changed.")
    if not groups.get("lb"):
        raise fleet.Refusal("The inventory has no lb group: blue-green switches the load balancers' upstream. "
                            "Nothing was changed.")
    if action not in ACTIONS:
        raise fleet.Refusal(f"bluegreen_action={action!r} is not one of {', '.join(ACTIONS)}. Nothing was changed.")
    if action == "deploy" and not str(version or ""):
        raise fleet.Refusal("Say which version to deploy: -e app_version=VERSION. Nothing was changed.")


def break_glass(action, full_checks):
    """A rollback reads only the LBs and, through them, the hosts' health - unless the full checks are asked for."""
    return action == "rollback" and not full_checks


def reads(groups, action, full_checks):
    """What the run reads before it plans: app hosts over SSH (release state), or the app hosts whose health each
    LB asks while it reads its upstream (a break-glass rollback: one round trip per LB, no app host contacted)."""
    app_hosts = list(groups["blue"]) + list(groups["green"])
    if break_glass(action, full_checks):
        return {"release_state": [], "probe": app_hosts}
    return {"release_state": app_hosts, "probe": []}


START_HINT = " - stopped or retired? -e bluegreen_action=start starts the colour again"


def probe_outcomes(names, probes):
    """Each host's health as every LB saw it (fleet.deployer.backend_probe answers {lb: {name: answer}}):
    {name: {status, version, note}}; passed only when every LB got 200 with one version."""
    outcomes = {}
    for name in names:
        answers = {lb: found.get(name) or {} for lb, found in probes.items()}
        versions = sorted({a.get("health_version") for a in answers.values() if a.get("health_version")})
        bad = [lb for lb, answer in answers.items() if answer.get("health") != 200]
        outcome = {"status": "passed", "version": versions[0] if len(versions) == 1 else "", "note": ""}
        if bad:
            first = answers[bad[0]]
            silent = not first.get("health")
            why = first.get("error") or "no answer" if silent else f"answered {first['health']}"
            outcome.update(status="stopped" if silent else "failed",
                           note=f"Ask the health check from {', '.join(bad)}: {why}{START_HINT if silent else ''}")
        elif len(versions) != 1:
            outcome.update(status="failed", note=f"answers different versions through the LBs: {', '.join(versions)}")
        outcomes[name] = outcome
    return outcomes


def _live_colour(groups, hosts, lb_servers):
    """The one colour every LB sends all its traffic to, or a Refusal that says what each LB does."""
    unread = fleet.unread_lbs(lb_servers)
    if unread:
        raise fleet.Refusal(f"No live set could be read from {', '.join(unread)} (unreachable, or no upstream yet: "
                            "run playbooks/site.yml first). Nothing was changed.")
    colour_of = {hosts[name].address: colour for colour in COLOURS for name in groups[colour]}
    seen = {lb: sorted({colour_of.get(server["address"], "hosts in neither colour") for server in servers})
            for lb, servers in lb_servers.items()}
    colours = {colour for found in seen.values() for colour in found}
    if len(colours) != 1 or not colours <= set(COLOURS):
        doing = "; ".join(f"{lb} sends it to {' and '.join(found)}" for lb, found in seen.items())
        raise fleet.Refusal(f"Blue-green needs every LB to send all traffic to one colour, but {doing}. "
                            "Nothing was changed.")
    return colours.pop()


def _nothing_to_do(action, version, live, idle, live_versions, idle_version):
    """Why this run has nothing to do ('' when it has something)."""
    if action == "deploy" and live_versions == [str(version)]:
        return f"Nothing to do: {live} (live) already runs {version}."
    if action != "rollback" or not idle_version:  # no healthy idle host: the gate stops the rollback
        return ""
    if live_versions == [idle_version]:
        return (f"Nothing to roll back: {idle} idles on {idle_version}, the release {live} (live) already runs.")
    if any(LooseVersion(v) <= LooseVersion(idle_version) for v in live_versions):
        return (f"Nothing to roll back: {live} (live) runs {', '.join(live_versions)} and {idle} idles on the newer "
                f"{idle_version} - the rollback already happened. To go forward again: playbooks/bluegreen.yml "
                f"-e app_version={idle_version}.")
    return ""


def plan(groups, hosts, lb_servers, action, version, check_mode, now, probes=None):
    """What this run does: the live and idle colour, and the hosts or colour of each step. probes: for a
    break-glass rollback, every app host's health as each LB saw it (the hosts' versions come from there, and the
    idle hosts are checked by it instead of a smoke test)."""
    live = _live_colour(groups, hosts, lb_servers)
    idle = next(colour for colour in COLOURS if colour != live)
    probed = {}
    if probes is not None:
        probed = probe_outcomes(list(groups["blue"]) + list(groups["green"]), probes)
        hosts = {name: replace(host, running=probed[name]["version"]) for name, host in hosts.items()}
    live_versions = sorted({hosts[name].running for name in groups[live] if hosts[name].running})
    # A host the break-glass check found unhealthy stops the run at the gate, naming it; it has no version here.
    checked = [name for name in groups[idle] if probed.get(name, {}).get("status", "passed") == "passed"]
    idle_versions = [hosts[name].running for name in checked] or [""]
    if action == "rollback" and checked:
        unknown = [name for name, running in zip(checked, idle_versions) if not running]
        if unknown:
            raise fleet.Refusal(f"Cannot roll back to {idle}: no release is known on {', '.join(unknown)} (never "
                                f"deployed, or unreachable). Nothing was changed: {live} stays live.")
        if len(set(idle_versions)) > 1:
            runs = ", ".join(f"{name} {running}" for name, running in zip(checked, idle_versions))
            raise fleet.Refusal(f"Cannot roll back to {idle}: its hosts run different releases ({runs}). "
                                f"Nothing was changed: {live} stays live.")
    idle_version = idle_versions[0]
    note = _nothing_to_do(action, version, live, idle, live_versions, idle_version)
    idle_hosts = [] if note else list(groups[idle])
    steps = {
        "prepare": idle_hosts if action in ("deploy", "start") else [],
        # In check mode nothing was installed or started, so only a rollback's smoke tests mean something.
        "smoke_test": idle_hosts if action == "rollback" or (action in ("deploy", "start") and not check_mode) else [],
        "switch_to": idle if idle_hosts and action in ("deploy", "rollback") else "",
        "retire": list(groups[idle]) if action == "retire" else [],
    }
    # Probed hosts were checked from the LBs already: no smoke-test play runs on them.
    step_groups = {name: [f"bluegreen_{step}" for step in ("prepare", "smoke_test", "retire")
                          if name in steps[step] and not (step == "smoke_test" and probed)]
                   for name in groups[idle]}
    # The version the switch goes to; the smoke tests expect it ('' for start: each host's own).
    switch_version = str(version) if action == "deploy" else idle_version if action == "rollback" else ""
    host_plan = {"action": action, "version": switch_version}
    return dict(
        steps, strategy="bluegreen", action=action, live=live, idle=idle, started=now, note=note,
        live_version=", ".join(live_versions), idle_version=", ".join(sorted(set(filter(None, idle_versions)))),
        version=switch_version, lbs=list(lb_servers), probed=probed,
        add_hosts=[{"name": name, "groups": joined, "plan": host_plan} for name, joined in step_groups.items() if joined],
    )


def gate(bluegreen_plan, outcomes):
    """Why the switch must not happen ('' when every idle host passed its smoke test, or its break-glass check)."""
    return fleet.smoke_failures(bluegreen_plan["smoke_test"], bluegreen_plan["idle"],
                                dict(outcomes, **bluegreen_plan.get("probed", {})))


def switch_result(started, lbs):
    """How the switch went on every LB at once. lbs: {lb: {verified (epoch), task, failure}} as each LB recorded
    it ({} for an LB that recorded nothing). Returns {failure, seconds}: failure ('' if none) says where each LB
    failed, as failed_step does for a loop over the LBs - then every LB must go back."""
    failures = {}
    for lb, done in lbs.items():
        task, why = done.get("task", ""), done.get("failure") or ("" if done.get("verified") else "no result")
        if why:
            failures.setdefault(task, []).append(f"{lb}: {why[len(task) + 2:] if why.startswith(task + ': ') else why}")
    if failures:
        return {"failure": "; ".join(f"{task}: {'; '.join(each)}" if task else "; ".join(each)
                                     for task, each in failures.items())}
    return {"failure": "", "started": float(started),
            "seconds": round(max(float(done["verified"]) for done in lbs.values()) - float(started), 2)}


def _result(p, switched, stopped, switch_failure, check_mode, switched_back=False):
    if switched_back:
        return f"SWITCHED BACK after the switch: {stopped}; every LB is back on {p['live']}"
    if stopped:
        return "STOPPED before the switch: the LBs were not touched"
    if switch_failure:
        return f"FAILED at the switch: every LB is back on {p['live']}"
    if p["note"]:
        return p["note"]
    if check_mode:
        return "check mode: nothing was changed"
    if switched:
        return f"completed: {p['switch_to']} is live on {p['version']}"
    return f"completed: {p['idle']} {'stopped' if p['action'] == 'retire' else 'runs again'}"


def _rows(p, groups, switched, switch_seconds, stopped, idle_stopped, check_mode, switched_back=False):
    now_live = p["switch_to"] if switched else p["live"]
    other = next(colour for colour in COLOURS if colour != now_live)
    rows = [("live", f"{now_live} takes all traffic; {other} idles"),
            ("resources", f"1x: {p['idle']} stopped, its releases kept; a rollback refuses until "
                          "-e bluegreen_action=start" if idle_stopped
             else f"2x while both colours run ({len(groups['blue'])} + {len(groups['green'])} hosts); retire brings "
                  "it back to 1x: -e bluegreen_action=retire")]
    if switched:
        rows.append(("switch", f"{switch_seconds} s from the start of the switch until every answer through "
                               f"{', '.join(p['lbs'])} came from {p['version']}"))
        rows.append(("rollback", f"ansible-playbook playbooks/bluegreen.yml -e bluegreen_action=rollback (back to "
                                 f"{p['live']} {p['live_version']} in one reload)") if p["action"] == "deploy"
                    else ("forward again", f"ansible-playbook playbooks/bluegreen.yml -e app_version="
                                           f"{p['live_version']} ({p['live']} still runs it)"))
    if p["switch_to"] and not check_mode:
        rows.append(("blast radius",
                     "all users at once at the switch, but only after every idle host passed its smoke test"
                     if switched else "all users, from the switch until the switch back" if switched_back
                     or not stopped else f"none: no user was switched; the LBs still send everyone to "
                                         f"{p['live']} {p['live_version']}"))
    return rows


def bake_plan(p, groups, switch, address_of, baseline_seconds):
    """What the bake after a deploy's switch judges: the new colour against the old colour's traffic in the
    baseline_seconds before the switch began."""
    return {"new": [address_of[name] for name in groups[p["switch_to"]]],
            "reference": [address_of[name] for name in groups[p["live"]]],
            "baseline": {"start": float(switch["started"]) - baseline_seconds, "end": float(switch["started"])}}


def bake_reaction(p, bake, mode, require):
    """What the bake's verdict makes the run do: {switch_back, text, would, add_hosts}. A fail switches every LB back
    to the old colour (the new one stays installed, for inspection); not enough data keeps the switch, saying so,
    unless bluegreen_require_analysis; a dry run switches nothing back and says it would have."""
    decision, reason = bake["decision"], bake["reason"]
    back = decision == analysis.FAIL or (decision == analysis.NO_DATA and require)
    text = (f"the bake failed: {reason}" if decision == analysis.FAIL
            else f"not judged: {bake['new']['requests']} of {bake['rules']['min_requests']} requests"
                 + (" (bluegreen_require_analysis=true)" if require else "") if decision == analysis.NO_DATA
            else f"the bake passed: {reason}")
    if back and mode == "dry_run":
        return {"switch_back": False, "text": text, "would": "would switch back", "add_hosts": []}
    return {"switch_back": back, "text": text, "would": "",
            "add_hosts": [{"name": lb, "groups": ["bluegreen_switch_back"]} for lb in p["lbs"]] if back else []}


def outcome(p, groups, hosts, outcomes, switch, check_mode, now, bake=None):
    """The report of a run. switch: {seconds, failure, stopped} as far as the run got; bake: the bake after the
    switch, with what it made the run do (`reaction`)."""
    reaction = (bake or {}).get("reaction", {})
    if reaction.get("switch_back"):  # the users went back to the old colour: the run stopped after its switch
        switch = dict(switch, stopped=reaction["text"], back=True)
    switched = switch.get("seconds") is not None and not switch.get("back")
    # A break-glass rollback checked the idle hosts from the LBs: those are their outcomes.
    outcomes = dict(outcomes, **{name: done for name, done in p.get("probed", {}).items() if name in groups[p["idle"]]})
    stopped, switch_failure = switch.get("stopped", ""), switch.get("failure", "")
    idle_stopped = p["action"] == "retire" or any(o.get("status") == "stopped" for o in outcomes.values())
    now_live = p["switch_to"] if switched else p["live"]
    rows = []
    for colour in COLOURS:
        for name in groups[colour]:
            done = outcomes.get(name, {})
            state = f"{colour}, {'live' if colour == now_live else 'idle'}"
            state += ", stopped" if name in p["retire"] else ""
            note = done.get("note", "") if done.get("status") in ("failed", "stopped") else ""
            rows.append(report.host_row(name, hosts[name].running, done.get("version") or hosts[name].running,
                                        state + (", FAILED" if note else ""), note[:70]))
    change = (f"{p['live_version']} -> {p['version']}" if p["action"] == "deploy" or p["switch_to"]
              else p["action"] + (f" {p['idle']}" if p["action"] != "rollback" else ""))
    name = "blue-green" + (f" ({p['action']})" if p["action"] != "deploy" else "")
    status = ("stopped" if stopped or switch_failure else "check" if check_mode else "unchanged" if p["note"]
              else "completed")
    summary = _rows(p, groups, switched, switch.get("seconds"), stopped, idle_stopped, check_mode,
                    switch.get("back", False))
    if bake:
        summary.append(("bake", _bake_text(bake)))
    if reaction.get("would"):  # analysis_mode=dry_run
        summary.append(("dry run", f"{reaction['would']}: {reaction['text']} - not enforced (analysis_mode=dry_run)"))
    text = _result(p, switched, stopped, switch_failure, check_mode, switch.get("back"))
    result = report.outcome(name, change, text + (f" (dry run: {reaction['would']})" if reaction.get("would") else ""),
                            status, p["started"], now, summary, rows)
    result["message"] = _failure_message(p, stopped, switch_failure, switch.get("back"))
    if bake:
        result["analysis"] = bake
    return result


def _bake_text(bake):
    p_value = f", p={bake['p_value']:.2g}" if bake.get("p_value") is not None else ""
    return (f"{bake['reaction']['text']}; the new colour {report.side_text(bake['new'])}; against the old colour "
            f"before the switch: {report.side_text(bake['reference'])}; judged on {bake['source']}{p_value}")


def _failure_message(p, stopped, switch_failure, switched_back=False):
    """What a run that stopped or failed says last ('' when it did neither)."""
    if switched_back:
        return (f"Switched back after the switch: {stopped}. Every LB sends all traffic to {p['live']} "
                f"({p['live_version']}) again; {p['switch_to']} keeps {p['version']} installed for inspection.")
    if stopped:
        return (f"Stopped before the switch: {stopped.rstrip('.')}. Nothing was switched: every LB still sends all "
                f"traffic to {p['live']} ({p['live_version']}).")
    if switch_failure:
        return (f"The switch to {p['switch_to']} failed ({switch_failure}). Every LB is back on {p['live']} "
                f"({p['live_version']}).")
    return ""
