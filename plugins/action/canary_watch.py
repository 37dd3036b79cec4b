# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Action plugin fleet.deployer.canary_watch: watches one canary step on a load balancer (the task's host, usually
by delegate_to) - every few seconds it reads what Nginx logged since the step began and judges it with
canary_analysis, until the step passes, fails, or runs out of time. Documentation: plugins/modules/canary_watch.py.
"""

from __future__ import annotations

import shlex
import time

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.fleet.deployer.plugins.plugin_utils import canary_analysis

ARGUMENT_SPEC = {
    "log_path": {"type": "path", "default": "/var/log/nginx/access.log"},
    "canary_addresses": {"type": "list", "elements": "str", "required": True},
    "share": {"type": "float", "required": True},
    "seconds": {"type": "int", "default": 60},
    "deadline_seconds": {"type": "int", "default": 300},
    "interval": {"type": "float", "default": 3.0},
    "lookback": {"type": "int", "default": 0},
    "rules": {"type": "dict", "default": {}},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        try:
            rules = canary_analysis.Rules(**args["rules"])
        except (TypeError, ValueError) as error:
            return dict(result, failed=True, msg=f"canary rules {args['rules']}: {error}")
        self._log = args["log_path"]
        judged = self._look_back(args, rules) if args["lookback"] else self._watch(args, rules)
        result.update(judged, changed=False)
        return result

    def _remote(self, command):
        done = self._low_level_execute_command(command, sudoable=True)
        if done["rc"] != 0:
            raise AnsibleError(f"{command} failed on the LB: {done['stderr'].strip()}")
        return done["stdout"]

    def _look_back(self, args, rules):
        """One verdict over the last `lookback` seconds (for status: no waiting)."""
        now = time.time()
        lines = self._remote(f"tail -n 200000 {shlex.quote(self._log)}").splitlines()
        window = canary_analysis.analyse(lines, args["canary_addresses"], start=now - args["lookback"], end=now)
        verdict = canary_analysis.judge(window.canary, window.stable, rules)
        return self._summary(window, verdict, args, now, now)

    def _watch(self, args, rules):
        started = time.time()
        offset = int(self._remote(f"stat --format=%s {shlex.quote(self._log)}"))
        lines, partial = [], ""
        while True:
            time.sleep(args["interval"])
            text = self._remote(f"tail --bytes=+{offset + 1} {shlex.quote(self._log)}")
            offset += len(text.encode())
            *complete, partial = (partial + text).split("\n")
            lines.extend(complete)
            now = time.time()
            window = canary_analysis.analyse(lines, args["canary_addresses"], start=started)
            verdict = canary_analysis.at_deadline(canary_analysis.judge(window.canary, window.stable, rules), now,
                                                  started + args["deadline_seconds"])
            if verdict.decision == "fail" or (verdict.decision == "pass" and now - started >= args["seconds"]):
                return self._summary(window, verdict, args, started, now)

    @staticmethod
    def _summary(window, verdict, args, started, finished):
        summary = canary_analysis.step_summary(window, verdict, args["share"])
        return {"step": summary, "decision": verdict.decision, "reason": verdict.reason, "started": started,
                "finished": finished}
