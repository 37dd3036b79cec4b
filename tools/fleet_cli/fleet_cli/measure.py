"""The seed's comparison table (../shared/seed/SUMMARY.md), filled with one run's measured figures. Plain
functions, tested from tables."""

from __future__ import annotations

# What the seed says of each strategy, row by row.
SEED = {
    "rolling": {"resources": "1x (least)", "release speed": "slow (one by one)",
                "rollback speed": "slow (roll again)", "blast radius": "high (spreads step by step)"},
    "bluegreen": {"resources": "2x (most)", "release speed": "very fast (instant switch)",
                  "rollback speed": "very fast (switch back)", "blast radius": "low (all or nothing)"},
    "canary": {"resources": "~1.2x (by share)", "release speed": "gradual (minutes to hours)",
               "rollback speed": "very fast (cut canary traffic)", "blast radius": "very low (a small share of users)"},
}


def _tokens(status):
    return {token.strip() for token in status.split(",")}


def extra_hosts(hosts):
    """App hosts that run beside the live set: a blue-green idle colour kept for the switch back (status
    "green, idle"), not a retired one ("..., stopped"). Rolling replaces in place: none."""
    return [row["host"] for row in hosts if "idle" in _tokens(row["status"]) and "stopped" not in _tokens(row["status"])]


def out_of_rotation_seconds(outcomes):
    """Host-seconds spent out of rotation: from the start of each host's replacement (its drain) to the end of
    it (re-added, or put back after a failure). outcomes: {host: {started, finished, status}}."""
    return round(sum(float(o["finished"]) - float(o["started"]) for o in outcomes.values()
                     if o.get("started") not in (None, "", "None") and o.get("finished")), 1)


def table(strategy, action, seconds, hosts, outcomes, switch_seconds, traffic, target):
    """[(row, the seed says, this run)] for the seed's four rows that a run can measure."""
    seed = SEED.get(strategy, {})
    extra = extra_hosts(hosts)
    resources = f"{round(len(extra) * (seconds or 0))} host-seconds beyond 1x"
    resources += f" ({len(extra)} idle hosts running x {seconds} s)" if extra else " (no extra hosts)"
    away = out_of_rotation_seconds(outcomes)
    if away:
        resources += f"; {away} host-seconds out of rotation (drain to re-add)"
    release = f"{seconds} s wall time" + (f"; the switch itself {switch_seconds} s" if switch_seconds is not None
                                          else "")
    rollback = f"`fleet rollback {strategy}`" + (f": this run, {seconds} s" if action == "rollback" else " (not run)")
    if not traffic or not traffic["requests"]:
        blast = "no requests in the LB log over the run"
    elif traffic["peak_share"] is None:
        blast = f"fewer than {traffic['min_requests']} requests in every second of the LB log"
    else:
        blast = (f"peak {100 * traffic['peak_share']:.1f}% of requests answered by {target} (in the second "
                 f"+{traffic['peak_at']:.0f} s; {traffic['requests']} requests in the LB log)")
    return [("resources", seed.get("resources", "-"), resources),
            ("release speed", seed.get("release speed", "-"), release),
            ("rollback speed", seed.get("rollback speed", "-"), rollback),
            ("blast radius", seed.get("blast radius", "-"), blast)]
