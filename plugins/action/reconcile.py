# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Action plugin fleet.deployer.reconcile: reads the LBs' upstreams, what each LB's probe of its servers
answered, and which release each app host's `current` link points to; calls plugin_utils.reconcile.plan.
Documentation: reconcile.py beside the module stubs."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.fleet.deployer.plugins.plugin_utils import fleet, reconcile

ARGUMENT_SPEC = {
    "lb_hosts": {"type": "list", "elements": "str", "required": True},
    "app_hosts": {"type": "list", "elements": "str", "default": []},
    "address_var": {"type": "str", "default": "app_backend_address"},
    "probes_var": {"type": "str", "required": True},
    "release_var": {"type": "str", "default": "release_current_version"},
    "min_in_service": {"type": "raw", "default": 1},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        hostvars = task_vars["hostvars"]
        lbs = {}
        for lb in args["lb_hosts"]:
            answers = (hostvars[lb].get(args["probes_var"]) or {}).get("answers", {})
            probes = {answer["address"]: {"status": answer["health"], "version": answer["health_version"],
                                          "error": answer["error"]} for answer in answers.values()}
            lbs[lb] = {"servers": hostvars[lb].get("nginx_lb_live_servers") or [], "probes": probes}
        hosts = {str(hostvars[name].get(args["address_var"], "")): {
                 "name": name, "release": hostvars[name].get(args["release_var"])}
                 for name in args["app_hosts"] or task_vars["groups"].get("app", [])}
        try:
            decided = reconcile.plan(lbs, hosts, args["min_in_service"], bool(self._play_context.check_mode))
        except fleet.Refusal as refusal:
            return dict(result, failed=True, msg=str(refusal))
        result.update(decided, changed=False)
        return result
