# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Action plugin fleet.deployer.strategy: reads the fleet from hostvars, calls a strategy's pure decision
function, and returns what it decided. Documentation: strategy.yml beside the module stub."""

from __future__ import annotations

import os
import time

from ansible.plugins.action import ActionBase

from ansible_collections.fleet.deployer.plugins.plugin_utils import bluegreen, canary, fleet, report, rolling

ARGUMENT_SPEC = {
    "strategy": {"type": "str", "required": True, "choices": ["rolling", "bluegreen", "canary"]},
    "decide": {"type": "str", "required": True,
               "choices": ["preflight", "plan", "bake", "batch", "gate", "step", "switch", "report"]},
    "options": {"type": "dict", "default": {}},
    "plan": {"type": "dict", "default": {}},
    "hooks": {"type": "dict", "default": {}},
    "app_hosts": {"type": "list", "elements": "str", "default": []},
    "lb_hosts": {"type": "list", "elements": "str", "default": []},
    "address_var": {"type": "str", "default": "app_backend_address"},
    "switch": {"type": "dict", "default": {}},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        self._vars = task_vars
        decide = getattr(self, f"_{args['strategy']}_{args['decide']}", None)
        if decide is None:
            return dict(result, failed=True, msg=f"strategy {args['strategy']} has no decision {args['decide']}")
        try:
            self._check_hooks(args["hooks"])
            decided = decide(args)
        except fleet.Refusal as refusal:
            return dict(result, failed=True, msg=str(refusal))
        result.update(decided)
        result["changed"] = False
        return result

    # ---- reading the fleet ----------------------------------------------------------------------------------

    def _hostvar(self, name, key, default=None):
        return self._vars["hostvars"][name].get(key, default)

    def _hosts(self, args):
        names = args["app_hosts"] or self._vars["groups"].get("app", [])
        return [fleet.Host(name=name, address=str(self._hostvar(name, args["address_var"], "")),
                           running=self._hostvar(name, "release_running_version", "") or "",
                           previous=self._hostvar(name, "release_previous_version", "") or "",
                           rolled_back=bool(self._hostvar(name, "release_rolled_back", False)),
                           unreachable=name in self._lost_hosts())
                for name in names]

    def _lost_hosts(self):
        """Hosts of this play that dropped out of it (unreachable, or a read failed) before the decision."""
        return set(self._vars.get("ansible_play_hosts_all", [])) - set(self._vars.get("ansible_play_hosts", []))

    def _lb_servers(self, args):
        lbs = args["lb_hosts"] or self._vars["groups"].get("lb", [])
        return {lb: self._hostvar(lb, "nginx_lb_live_servers") for lb in lbs}

    def _outcomes(self, names):
        return {name: self._hostvar(name, "deploy_steps_outcome") for name in names
                if self._hostvar(name, "deploy_steps_outcome")}

    def _check_hooks(self, hooks):
        for step, path in hooks.items():
            if path and not os.path.isfile(os.path.join(self._vars.get("playbook_dir", ""), path)):
                raise fleet.Refusal(f"The hook {step}={path} is not a file. Nothing was changed.")

    def _check_mode(self):
        return bool(self._play_context.check_mode)

    @staticmethod
    def _with_text(outcome):
        return {"report": outcome, "text": report.render(outcome)}

    # ---- rolling ----------------------------------------------------------------------------------------------

    def _rolling_plan(self, args):
        decided = rolling.plan(self._hosts(args), self._lb_servers(args), args["options"], time.time())
        return {"plan": decided, "add_hosts": decided.pop("add_hosts")}

    def _rolling_bake(self, args):
        rollout = args["plan"]
        batch = rolling.batch_of(rollout, self._vars["ansible_play_batch"])
        address_of = {name: str(self._hostvar(name, args["address_var"], "")) for name in rollout["live"]}
        return {"bake": rolling.bake_plan(rollout, batch, self._outcomes(rollout["live"]), address_of),
                "batch_number": rollout["batches"].index(batch) + 1}

    def _rolling_batch(self, args):
        batch = rolling.batch_of(args["plan"], self._vars["ansible_play_batch"])
        # Every live host's outcome: a failure policy of rollback undoes the earlier batches too.
        return rolling.verdict(args["plan"], batch, self._outcomes(args["plan"]["live"]),
                               args["options"].get("max_fail_percentage", 0), args["options"].get("bake") or None)

    def _rolling_report(self, args):
        # Run on the controller: the plan and the bakes are kept on the live hosts (none when no LB lists a host).
        live = self._vars["groups"].get("live", [])
        plans = (self._hostvar(name, "rolling_plan") for name in live)
        rollout = args["plan"] or next(filter(None, plans), None) or rolling.empty_plan(args["options"], time.time())
        bakes = next(filter(None, (self._hostvar(name, "rolling_bakes") for name in live)), {})
        outcome = rolling.outcome(rollout, self._outcomes(rollout["live"]),
                                  args["options"].get("max_fail_percentage", 0), args["options"].get("batch", 1),
                                  self._check_mode(), time.time(), bakes)
        return dict(self._with_text(outcome), stopped=outcome["stopped"])

    # ---- blue-green -------------------------------------------------------------------------------------------

    def _colour_groups(self):
        groups = self._vars["groups"]
        return {name: list(groups[name]) for name in ("blue", "green", "lb") if name in groups}

    def _bluegreen_preflight(self, args):
        options, groups = args["options"], self._colour_groups()
        bluegreen.preflight(groups, options.get("action"), options.get("version"))
        fleet.check_int(options.get("bake_seconds", 0), "bluegreen_bake_seconds", 0)
        reads = bluegreen.reads(groups, options.get("action"), options.get("full_checks"))
        add_hosts = [{"name": name, "groups": ["bluegreen_release_state"]} for name in reads["release_state"]]
        # What every LB asks while it reads its upstream: nginx_upstream_info's probe option.
        lb_probe = {"backends": {name: str(self._hostvar(name, args["address_var"], "")) for name in reads["probe"]},
                    "health_path": options.get("health_path"), "version_header": options.get("version_header")}
        return {"started": time.time(), "add_hosts": add_hosts, "lb_probe": lb_probe}

    def _bluegreen_hosts(self, args, probed=None):
        """The app hosts; for a break-glass rollback with the versions their health checks answered with."""
        groups = self._colour_groups()
        hosts = {host.name: host for host in self._hosts(dict(args, app_hosts=groups["blue"] + groups["green"]))}
        for name, seen in (probed or {}).items():
            hosts[name].running = seen["version"]
        return hosts

    def _bluegreen_plan(self, args):
        options = args["options"]
        probes = None
        if bluegreen.break_glass(options.get("action"), options.get("full_checks")):
            probes = {lb: self._hostvar(lb, "nginx_lb_probes") or {} for lb in self._lb_servers(args)}
        decided = bluegreen.plan(self._colour_groups(), self._bluegreen_hosts(args), self._lb_servers(args),
                                 options.get("action"), options.get("version"), self._check_mode(),
                                 options.get("started") or time.time(), probes)
        return {"plan": decided, "add_hosts": decided.pop("add_hosts")}

    def _bluegreen_switch(self, args):
        done = {lb: self._hostvar(lb, "__bluegreen_lb_done") or {} for lb in args["lb_hosts"]}
        result = bluegreen.switch_result(args["options"]["started"], done)
        if self._check_mode():
            result.pop("seconds", None)  # nothing switched, so there is no time to report
        return {"switch": result}

    def _bluegreen_bake(self, args):
        """Before the bake: what it judges. After it (options.bake): what its verdict makes the run do."""
        plan, options = args["plan"], args["options"]
        if options.get("bake"):
            settings = options["analysis"]
            reaction = bluegreen.bake_reaction(plan, options["bake"], settings["mode"], options.get("require", False))
            return {"reaction": reaction, "add_hosts": reaction.pop("add_hosts")}
        groups = self._colour_groups()
        address_of = {name: str(self._hostvar(name, args["address_var"], "")) for name in groups["blue"] + groups["green"]}
        return {"bake": bluegreen.bake_plan(plan, groups, args["switch"], address_of,
                                            options["analysis"]["baseline_seconds"])}

    def _gate(self, reason):
        return {"failed": bool(reason), "msg": reason or "every new host passed its smoke test"}

    def _bluegreen_gate(self, args):
        return self._gate(bluegreen.gate(args["plan"], self._outcomes(args["plan"]["smoke_test"])))

    def _bluegreen_report(self, args):
        groups = self._colour_groups()
        hosts = self._bluegreen_hosts(args, args["plan"].get("probed"))
        outcome = bluegreen.outcome(args["plan"], groups, hosts, self._outcomes(list(hosts)), args["switch"],
                                    self._check_mode(), time.time(), args["options"].get("bake"))
        return self._with_text(outcome)

    # ---- canary -----------------------------------------------------------------------------------------------

    def _canary_preflight(self, args):
        canary.check_inputs(args["options"])
        groups = dict(self._colour_groups(), app=list(self._vars["groups"].get("app", [])))
        reads = canary.reads(groups, args["options"].get("action"))
        add_hosts = [{"name": name, "groups": ["canary_read"]} for name in reads]
        return {"started": time.time(), "add_hosts": add_hosts}

    def _canary_plan(self, args):
        groups = dict(self._colour_groups(), app=list(self._vars["groups"].get("app", [])))
        names = groups.get("blue", []) + groups.get("green", []) or groups["app"]
        hosts = {host.name: host for host in self._hosts(dict(args, app_hosts=names))}
        lb_servers = self._lb_servers(args)
        states = {lb: self._hostvar(lb, "canary_lb_state") or {} for lb in lb_servers}
        decided = canary.plan(groups, hosts, lb_servers, states, args["options"],
                              args["options"].get("started") or time.time())
        version = decided["canary"].get("version", "")
        host_plan = {"version": version, "in_place": decided["in_place"]}
        return {"plan": decided, "add_hosts": [{"name": name, "groups": ["canary_prepare"], "plan": host_plan}
                                               for name in decided["prepare"]]}

    def _canary_gate(self, args):
        return self._gate(canary.gate(args["plan"], self._outcomes(args["plan"]["prepare"])))

    def _canary_step(self, args):
        plan = args["plan"]
        address_of = {name: str(self._hostvar(name, args["address_var"], "")) for name in plan["stable"] + plan["pool"]}
        return canary.lb_settings(plan, args["options"]["share"], address_of, args["options"]["upstream"])

    def _canary_report(self, args):
        result = args["options"]
        outcome = canary.report_of(args["plan"], self._vars.get("canary_steps_done") or [],
                                   result["outcome"], result["status"], time.time())
        return self._with_text(outcome)
