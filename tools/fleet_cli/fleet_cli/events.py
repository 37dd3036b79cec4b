"""ansible-runner's event handler: keeps what the summary and the report need (the strategy's plan and report,
each host's outcome, failures, when each play started) and tells the progress what happens, as it happens.
Everything comes from the events' structured data (task results, facts), never from Ansible's text."""

from __future__ import annotations

from datetime import datetime, timezone

STRATEGY_ACTION = "fleet.deployer.strategy"


def created(event):
    """The event's time as epoch seconds (runner writes ISO 8601; a naive one is UTC)."""
    when = datetime.fromisoformat(event["created"])
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def plan_versions(plan):
    """(from [versions], to) as a strategy's plan states them ({} -> ([], ''))."""
    if "before" in plan:  # rolling
        return sorted({v for v in plan["before"].values() if v}), plan.get("target", "")
    if "live_version" in plan:  # blue-green
        return [v for v in [plan["live_version"]] if v], plan.get("version", "")
    return sorted({v for v in plan.get("from", []) if v}), plan.get("target") or plan.get("version", "")


def changing_hosts(plan):
    """The hosts a plan changes, in order: rolling's live hosts it does not skip, blue-green's idle ones."""
    if "batches" in plan:
        return [name for batch in plan["batches"] for name in batch if name not in plan.get("skip", {})]
    return list(dict.fromkeys(plan.get("prepare", []) + plan.get("smoke_test", []) + plan.get("retire", [])))


def describe_plan(plan, check):
    """What the run is going to do, in one line."""
    before, target = plan_versions(plan)
    head = "check mode, nothing is changed - the run would: " if check else "plan: "
    if "batches" in plan:
        skip = "".join(f"; {name} skipped: {why}" for name, why in plan.get("skip", {}).items())
        batches = " | ".join(", ".join(batch) for batch in plan["batches"])
        return (f"{head}roll {', '.join(before) or '-'} -> {target or 'nothing'} on {len(plan['live'])} live hosts in "
                f"{len(plan['batches'])} batches: {batches}{skip}")
    if "live" in plan and "idle" in plan:
        if plan.get("note"):
            return f"{head}{plan['note']}"
        doing = {"deploy": f"install {target} on {', '.join(plan['prepare'])}, smoke-test them, switch",
                 "rollback": f"smoke-test {', '.join(plan['smoke_test'])}, switch back",
                 "retire": f"stop {', '.join(plan['retire'])}", "start": f"start {', '.join(plan['prepare'])}"}
        switch = f" every LB ({', '.join(plan.get('lbs', []))}) from {plan['live']} to {plan['switch_to']}" \
            if plan.get("switch_to") else ""
        return (f"{head}{plan['live']} is live on {plan['live_version']}, {plan['idle']} idles on "
                f"{plan['idle_version'] or '-'}; {doing.get(plan['action'], plan['action'])}{switch}")
    return f"{head}{plan.get('strategy', 'run')}: {', '.join(before) or '-'} -> {target or '-'}"


def short(name):
    """A play's name up to its " - " ("Deploy - install ..." -> "Deploy"), or its first word when that is long."""
    head = name.split(" - ")[0]
    return head if len(head) <= 20 else head.split()[0]


class Collector:
    def __init__(self, progress, check=False):
        self.progress = progress
        self.check = check
        self.plan = {}
        self.report = None
        self.report_text = ""
        self.messages = []     # what debug tasks said (status.yml)
        self.failures = []     # failed tasks, rescued ones too
        self.phases = []       # [{name, started}] the plays, in order
        self.outcomes = {}     # host -> what the strategy recorded for it
        self.switch_seconds = None
        self.lock_holder = None
        self.batch = 0
        self._plan_play = None
        self._plays = set()
        self._play = None

    def __call__(self, event):
        handler = getattr(self, "_" + event.get("event", ""), None)
        if handler:
            handler(event.get("event_data", {}), created(event))
        return True  # keep the event in runner's artifacts

    # ---- what the progress shows --------------------------------------------------------------------------

    def counts(self):
        """(done, total, share of live hosts on the target in %, or None)."""
        changing = changing_hosts(self.plan)
        done = sum(1 for name in changing if name in self.outcomes)
        _, target = plan_versions(self.plan)
        if "batches" in self.plan and self.plan["live"]:
            on = sum(1 for name in self.plan["live"]
                     if self.outcomes.get(name, {}).get("version") == target
                     or (name in self.plan.get("skip", {}) and self.plan["before"].get(name) == target))
            return done, len(changing), round(100 * on / len(self.plan["live"]))
        if "switch_to" in self.plan and self.plan.get("switch_to"):
            return done, len(changing), 100 if self.switch_seconds is not None else 0
        return done, len(changing), None

    def where(self):
        batches = len(self.plan.get("batches", []))
        return f"batch {self.batch} of {batches}" if batches and self.batch else self._play or "starting"

    def share(self):
        _, _, share = self.counts()
        return f"{plan_versions(self.plan)[1]} on {share}% of live hosts" if share is not None else ""

    def status(self):
        done, total, _ = self.counts()
        parts = [self.where(), f"{done} of {total} hosts done" if total else "", self.share()]
        return " - ".join(part for part in parts if part)

    def _tell(self, message=None):
        if message:
            self.progress.say(f"{message}  [{self.status()}]")
        done, total, _ = self.counts()
        self.progress.update(done, total, self.where(), self.share())

    # ---- events -------------------------------------------------------------------------------------------

    def _playbook_on_play_start(self, data, when):
        name = data.get("name") or data.get("play", "")
        if name in self._plays:
            return  # a serial play starts again, as a new play, for each batch
        self._plays.add(name)
        self.phases.append({"name": name, "started": when})
        self._play = short(name)
        self.progress.say(f"play {len(self._plays)}: {name}")
        self._tell()

    def _runner_on_start(self, data, when):
        batches = self.plan.get("batches", [])
        if not batches or data.get("play_uuid") == self._plan_play:
            return
        number = next((i + 1 for i, batch in enumerate(batches) if data.get("host") in batch), 0)
        if number > self.batch:
            self.batch = number
            self.phases.append({"name": f"batch {number}", "started": when, "batch": True})
            self._tell(f"batch {number} of {len(batches)} starts: {', '.join(batches[number - 1])}")

    def _runner_on_ok(self, data, when):
        res = data.get("res") or {}
        host = data.get("host", "")
        if data.get("task_action") == STRATEGY_ACTION:
            if res.get("plan"):
                self.plan, self._plan_play = res["plan"], data.get("play_uuid")
                self._tell(describe_plan(self.plan, self.check))
            if res.get("report"):
                self.report, self.report_text = res["report"], res.get("text", "")
        facts = res.get("ansible_facts") or {}
        if facts.get("deploy_steps_outcome"):
            outcome = self.outcomes[host] = facts["deploy_steps_outcome"]
            note = f": {outcome['note'][:160]}" if outcome.get("note") else ""
            status = f"would be {outcome['status']}" if self.check else outcome["status"]
            self._tell(f"{host} {status} ({outcome.get('version') or '-'}){note}")
        if (facts.get("bluegreen_switch") or {}).get("seconds") is not None:
            self.switch_seconds = float(facts["bluegreen_switch"]["seconds"])
            self._tell(f"switched: every answer through the LBs came from the new colour after "
                       f"{self.switch_seconds} s")
        if data.get("task_action") in ("ansible.builtin.debug", "debug") and "msg" in res and not self.report:
            self.messages.append(res["msg"])

    def _runner_on_failed(self, data, when):
        if data.get("ignore_errors"):
            return
        self._failed(data, (data.get("res") or {}).get("msg", "failed"))
        self.lock_holder = self.lock_holder or (data.get("res") or {}).get("lock_holder")

    def _runner_on_unreachable(self, data, when):
        self._failed(data, "unreachable: " + str((data.get("res") or {}).get("msg", "")))

    def _failed(self, data, message):
        failure = {"host": data.get("host", ""), "task": data.get("task", ""), "message": str(message)}
        self.failures.append(failure)
        self._tell(f"FAILED on {failure['host']}: {failure['task']}: {failure['message'][:300]}")
