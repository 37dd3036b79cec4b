# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Action plugin fleet.deployer.traffic_analysis: judges a new version on users' traffic, from every LB's access
log at once (or from Prometheus), until the judgement settles. The judgement itself is plugin_utils.analysis.
Documentation: plugins/modules/traffic_analysis.py."""

from __future__ import annotations

import posixpath
import shlex
import time

from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.plugins.loader import connection_loader

from ansible_collections.fleet.deployer.plugins.plugin_utils import analysis, prometheus

ARGUMENT_SPEC = {
    "lbs": {"type": "list", "elements": "str", "default": []},
    "new": {"type": "list", "elements": "str", "required": True, "aliases": ["canary_addresses"]},
    "reference": {"type": "list", "elements": "str", "default": []},
    "seconds": {"type": "int", "default": 10},
    "deadline_seconds": {"type": "int", "default": 0},
    "baseline": {"type": "dict", "options": {"start": {"type": "float", "required": True},
                                             "end": {"type": "float", "required": True}}},
    "share": {"type": "float"},
    "share_tolerance": {"type": "float", "default": 1.0},
    "settings": {"type": "dict", "default": {}},
    "log_path": {"type": "path", "default": "/var/log/nginx/access.log"},
    "lookback": {"type": "int", "default": 0},
    # fleet.deployer.canary_watch's options (it redirects here), until it is removed
    "interval": {"type": "float"},
    "rules": {"type": "dict"},
}
# canary_watch's rules -> the analysis settings (latency_floor was in seconds)
OLD_RULES = {"max_error_rate": ("max_error_rate", 1), "max_latency_ratio": ("max_latency_ratio", 1),
             "latency_floor": ("latency_floor_ms", 1000), "min_requests": ("min_requests", 1)}
READ_BACK_LINES = 200000  # how far back a baseline or a status looks in each LB's log


class LogReader:
    """One LB's access log over one connection: what was logged since the last look, and what came before.

    The log is read as bytes and split on b"\\n" only; a line still being written waits for the next look. A rotated
    log is followed: a new file at the path (another inode) or this file cut shorter than what was read. Nginx
    writes into the renamed file until it reopens its log, so that file is read as long as the new one is empty
    and while it is still in the log's folder; then the new one from its beginning.
    """

    def __init__(self, lb, connection, path):
        self.lb, self.connection, self.path = lb, connection, shlex.quote(path)
        self.folder = shlex.quote(posixpath.dirname(path) or ".")
        self.inode, self.offset = (int(number) for number in self.run(f"stat -L --format='%i %s' {self.path}").split())
        self.partial = b""

    def run(self, command):
        rc, stdout, stderr = self.connection.exec_command(command, sudoable=True)
        if rc != 0:
            raise AnsibleError(f"{command} failed on {self.lb}: {to_text(stderr).strip()}")
        return stdout

    def _read(self, file, offset):
        """(inode, size, the bytes from offset on) of `file`, a shell word, opened once for both; (None, 0, b"")
        when there is no such file (between a rotation's rename and the new file)."""
        output = self.run(f"log={file}; {{ stat -L --format='%i %s' /dev/stdin && tail --bytes=+{offset + 1}; }} "
                          f'< "$log" || [ ! -e "$log" ]')
        if not output:
            return None, 0, b""
        head, data = output.partition(b"\n")[::2]
        inode, size = (int(number) for number in head.split())
        return inode, size, data

    def _rest_of_renamed(self):
        """What the file this reader followed got since the last look, while it is still in the log's folder."""
        return self._read(f'"$(find {self.folder} -maxdepth 1 -type f -inum {self.inode} -print -quit)"',
                          self.offset)[2]

    def records(self, data):
        return [analysis.parse_line(line, self.lb) for line in data.split(b"\n") if line]

    def _complete_lines(self, data):
        self.offset += len(data)
        *complete, self.partial = (self.partial + data).split(b"\n")
        return self.records(b"\n".join(complete))

    def since_last_look(self):
        inode, size, data = self._read(self.path, self.offset)
        if inode == self.inode and size >= self.offset:
            return self._complete_lines(data)
        records = []
        if inode != self.inode:
            records = self._complete_lines(self._rest_of_renamed())
            if size == 0:  # no new file yet, or Nginx still writes into the renamed one
                return records
        # On to the new file (or the cut one) from its beginning; a line cut by the rotation is never completed.
        self.inode, self.offset, self.partial = inode, 0, b""
        return records + self._complete_lines(self._read(self.path, 0)[2])

    def before(self):
        """The lines logged before this reader began (at most READ_BACK_LINES of them)."""
        return self.records(self.run(f"head --bytes={self.offset} {self.path} | tail -n {READ_BACK_LINES}"))


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        self._vars = task_vars
        args["lbs"] = args["lbs"] or [self._task.delegate_to or task_vars["inventory_hostname"]]
        try:
            settings = analysis.checked_settings(dict(self._old_options(args), **args["settings"]))
        except ValueError as error:
            return dict(result, failed=True, msg=str(error))
        watch = self._watch_prometheus if settings["provider"] == "prometheus" else self._watch_logs
        started = time.time()
        deadline = started + max(args["deadline_seconds"], args["seconds"])
        try:
            judged = watch(args, settings, started, deadline)[1]
        finally:
            self._close()
        result.update(judged, changed=False, started=started, finished=time.time())
        return result

    @staticmethod
    def _old_options(args):
        """canary_watch's interval and rules, as settings."""
        settings = {name: float(args["rules"][old]) * factor for old, (name, factor) in OLD_RULES.items()
                    if old in (args["rules"] or {})}
        if args["interval"] is not None:
            settings["interval_seconds"] = args["interval"]
        return settings

    # ---- the LBs' logs ----------------------------------------------------------------------------------------

    def _connection_to(self, lb):
        """The task's own connection for the host it runs on (or is delegated to), a new one for every other LB,
        made from that LB's inventory variables the way Ansible connects to it (the task's become applies)."""
        if lb == (self._task.delegate_to or self._vars.get("inventory_hostname")):
            return self._connection
        known = self._vars["hostvars"][lb]  # each value is templated when read: read only the connection's
        kind = known["ansible_connection"] if "ansible_connection" in known else self._play_context.connection
        wanted = {name for names in C.MAGIC_VARIABLE_MAPPING.values() for name in names}
        wanted |= set(C.config.get_plugin_vars("connection", kind))
        variables = dict({name: known[name] for name in wanted if name in known}, inventory_hostname=lb)
        context = self._play_context.set_task_and_variable_override(task=self._task, variables=variables,
                                                                    templar=self._templar)
        connection = connection_loader.get(kind, context)
        task_keys = dict(self._task.dump_attrs(), timeout=context.timeout)
        task_keys.pop("retries", None)
        connection.set_options(task_keys=task_keys,
                               var_options=connection._resolve_option_variables(variables, self._templar))
        connection.set_become_plugin(self._connection.become)
        self._opened.append(connection)
        return connection

    def _close(self):
        for connection in getattr(self, "_opened", []):
            connection.close()

    def _watch_logs(self, args, settings, started, deadline):
        self._opened = []
        readers = [LogReader(lb, self._connection_to(lb), args["log_path"]) for lb in args["lbs"]]
        rules = analysis.rules_of(settings)
        if args["lookback"]:  # a status: the last seconds, judged once
            records = [record for reader in readers for record in reader.before()]
            return self._judged(args, rules, records, started - args["lookback"], started, baseline=None)
        baseline = None
        if args["baseline"]:
            baseline = [record for reader in readers for record in reader.before()]
        records = []
        while True:
            time.sleep(settings["interval_seconds"])
            for reader in readers:
                records.extend(reader.since_last_look())
            now = time.time()
            verdict, judged = self._judged(args, rules, records, started, now, baseline)
            if analysis.settle(verdict, now, started, args["seconds"], deadline):
                return verdict, judged

    def _judged(self, args, rules, records, start, end, baseline):
        window = analysis.analyse(records, args["new"], start, end)
        reference = window.reference
        if baseline is not None:
            reference = analysis.analyse(baseline, (), args["baseline"]["start"], args["baseline"]["end"]).reference
        verdict = analysis.judge(window.new.figures(), reference.figures(), rules)
        if args["share"] is not None and verdict.decision != analysis.FAIL:
            verdict = analysis.share_verdict(verdict, window.by_lb, args["share"], args["share_tolerance"])
        return verdict, analysis.summary(start, end, window.new.summary(), reference.summary(), verdict, rules,
                                         "lb_log", args["share"], window.observed_share, window.by_lb,
                                         args["baseline"])

    # ---- Prometheus ----------------------------------------------------------------------------------------------

    def _watch_prometheus(self, args, settings, started, deadline):
        rules = analysis.rules_of(settings)
        source = prometheus.Source(settings["prometheus_url"])
        while True:
            if not args["lookback"]:
                time.sleep(settings["interval_seconds"])
            now = time.time()
            start = now - args["lookback"] if args["lookback"] else started
            source.queries, source.problem = [], ""  # the report shows the last round's queries
            new = source.figures(args["new"], start, now)
            reference = source.figures(args["reference"], *(
                (args["baseline"]["start"], args["baseline"]["end"]) if args["baseline"] else (start, now)))
            verdict = analysis.judge(new, reference, rules)
            if source.problem and verdict.decision != analysis.FAIL:
                verdict = analysis.Verdict(analysis.NO_DATA, source.problem)
            total = new.requests + reference.requests
            record = analysis.summary(start, now, new, reference, verdict, rules, "prometheus", args["share"],
                                      100.0 * new.requests / total if total and not args["baseline"] else None,
                                      baseline=args["baseline"], queries=source.queries)
            if args["lookback"] or analysis.settle(verdict, now, started, args["seconds"], deadline):
                return verdict, record
