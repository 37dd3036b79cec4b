"""ansible-runner's event handler: keeps what the summary and the report need (the strategy's plan and report,
each host's outcome, failures, when each play started) and tells the progress what happens, as it happens.
Everything comes from the events' structured data (task results, facts), never from Ansible's text."""

from __future__ import annotations

from datetime import datetime, timezone

STRATEGY_ACTION = "fleet.deployer.strategy"
WATCH_ACTION = "fleet.deployer.traffic_analysis"
LOCK_ACTION = "fleet.deployer.deploy_lock"
STEPS_ROLE = "deploy_steps"  # roles/deploy_steps: drain, deploy, verify, re-add, record
# What the summary keeps of each judgement: the window, both sides, the p-value, the source, the verdict.
JUDGEMENT = ("decision", "reason", "source", "window", "baseline", "new", "reference", "p_value", "share", "lbs",
             "queries", "rules")


def created(event):
    """The event's time as epoch seconds (runner writes ISO 8601; a naive one is UTC)."""
    when = datetime.fromisoformat(event["created"])
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


class Rolling:
    """A rolling plan (plugins/plugin_utils/rolling.py): the live hosts in batches, some skipped."""

    @staticmethod
    def versions(plan):
        return sorted({v for v in plan["before"].values() if v}), plan.get("target", "")

    @staticmethod
    def changing(plan):
        return [name for batch in plan["batches"] for name in batch if name not in plan.get("skip", {})]

    @staticmethod
    def describe(plan, target, before):
        skip = "".join(f"; {name} skipped: {why}" for name, why in plan.get("skip", {}).items())
        batches = " | ".join(", ".join(batch) for batch in plan["batches"])
        return (f"roll {', '.join(before) or '-'} -> {target or 'nothing'} on {len(plan['live'])} live hosts in "
                f"{len(plan['batches'])} batches: {batches}{skip}")


class BlueGreen:
    """A blue-green plan (plugins/plugin_utils/bluegreen.py): the live and idle colour, and each step's hosts."""

    @staticmethod
    def versions(plan):
        return [v for v in [plan["live_version"]] if v], plan.get("version", "")

    @staticmethod
    def changing(plan):
        return list(dict.fromkeys(plan["prepare"] + plan["smoke_test"] + plan["retire"]))

    @staticmethod
    def describe(plan, target, before):
        action = plan["action"]
        doing = {"deploy": lambda: f"install {target} on {', '.join(plan['prepare'])}, smoke-test them, switch",
                 "rollback": lambda: f"smoke-test {', '.join(plan['smoke_test']) or 'nothing'}, switch back",
                 "retire": lambda: f"stop {', '.join(plan['retire'])}",
                 "start": lambda: f"start {', '.join(plan['prepare'])}"}.get(action, lambda: action)()
        switch = f" every LB ({', '.join(plan.get('lbs', []))}) from {plan['live']} to {plan['switch_to']}" \
            if plan.get("switch_to") else ""
        return (f"{plan['live']} is live on {plan['live_version']}, {plan['idle']} idles on "
                f"{plan['idle_version'] or '-'}; {doing}{switch}")


class Canary:
    """A canary plan (plugins/plugin_utils/canary.py): stable and canary hosts, and the steps this run takes."""

    @staticmethod
    def versions(plan):
        return [v for v in plan["live_version"].split(", ") if v], plan["canary"].get("version", "")

    @staticmethod
    def changing(plan):
        return list(plan["prepare"])

    @staticmethod
    def describe(plan, target, before):
        steps = " -> ".join(step["step"] if step["step"] == "pause" else f"{step['step']}%"
                            for step in plan["run_steps"])
        where = (f"in place on {', '.join(plan['pool'])}" if plan["in_place"]
                 else f"on {plan['idle']} ({', '.join(plan['pool'])})")
        stable = f"{plan['live']} stays on {', '.join(before) or '-'}"
        doing = {"deploy": lambda: f"canary {target} {where}, {plan['canary']['split']} split: {steps}; {stable}",
                 "promote": lambda: f"promote the canary of {target}: {steps}",
                 "abort": lambda: f"abort the canary of {target}: 0% to it on every LB; {stable}",
                 "status": lambda: f"where the canary of {target} stands"}
        return doing.get(plan["action"], lambda: plan["action"])()


class Unknown:
    """Any other plan (or none yet): only what every plan may say."""

    @staticmethod
    def versions(plan):
        return [], plan.get("target") or plan.get("version", "")

    @staticmethod
    def changing(plan):
        return []

    @staticmethod
    def describe(plan, target, before):
        return f"{plan.get('strategy', 'run')}: {', '.join(before) or '-'} -> {target or '-'}"


# The plan's own `strategy` (set by the fleet.deployer.strategy action) says how to read it.
PLANS = {"rolling": Rolling, "bluegreen": BlueGreen, "canary": Canary}


def reader(plan):
    return PLANS.get(plan.get("strategy"), Unknown)


def plan_versions(plan):
    """(from [versions], to) as a strategy's plan states them ({} -> ([], ''))."""
    return reader(plan).versions(plan)


def changing_hosts(plan):
    """The hosts a plan changes, in order: rolling's live hosts it does not skip, blue-green's idle ones, the
    canary's hosts to install."""
    return reader(plan).changing(plan)


def describe_plan(plan, check):
    """What the run is going to do, in one line."""
    head = "check mode, nothing is changed - the run would: " if check else "plan: "
    if plan.get("note"):
        return f"{head}{plan['note']}"
    before, target = plan_versions(plan)
    return head + reader(plan).describe(plan, target, before)


def short(name):
    """A play's name up to its " - " ("Deploy - install ..." -> "Deploy"), or its first word when that is long."""
    head = name.split(" - ")[0]
    return head if len(head) <= 20 else head.split()[0]


class Collector:
    """Runner's event handler. It only observes: an error in it is a warning ("progress failed: ..."), printed and
    kept for the summary and the report, and the playbook runs on to its own end."""

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
        self.lock_taken = {}   # lb -> run id of the lock this run took (fleet gives it back if the run is stopped)
        self.warnings = []     # what went wrong in fleet itself, never in the playbook
        self.judgements = []   # each judgement of the new version on users' traffic (traffic_analysis)
        self.batch = 0
        self.canary_share = None
        self._plan_play = None
        self._plays = set()
        self._play = None

    def __call__(self, event):
        try:
            handler = getattr(self, "_" + event.get("event", ""), None)
            if handler:
                handler(event.get("event_data", {}), created(event))
        except Exception as error:  # noqa: BLE001 - whatever broke here, the deploy goes on
            self.warn(f"progress failed: {type(error).__name__}: {error}")
        return True  # keep the event in runner's artifacts

    def warn(self, message):
        """Keeps a warning (each one once) and prints it, if printing still works."""
        if message in self.warnings:
            return
        self.warnings.append(message)
        try:
            self.progress.say(f"WARNING: {message}")
        except Exception:  # noqa: BLE001 - the warning is kept for the summary either way
            pass

    # ---- what the progress shows --------------------------------------------------------------------------

    def counts(self):
        """(hosts done, hosts to change)."""
        changing = changing_hosts(self.plan)
        return sum(1 for name in changing if name in self.outcomes), len(changing)

    def where(self):
        batches = len(self.plan.get("batches", []))
        return f"batch {self.batch} of {batches}" if batches and self.batch else self._play or "starting"

    def share(self):
        """How far the new version reached: rolling's live hosts on it, blue-green's switch, the canary's step."""
        strategy, target = self.plan.get("strategy"), plan_versions(self.plan)[1]
        if strategy == "rolling" and self.plan["live"]:
            on = sum(1 for name in self.plan["live"]
                     if self.outcomes.get(name, {}).get("version") == target
                     or (name in self.plan["skip"] and self.plan["before"].get(name) == target))
            return f"{target} on {round(100 * on / len(self.plan['live']))}% of live hosts"
        if strategy == "bluegreen" and self.plan.get("switch_to"):
            return f"{target} on {100 if self.switch_seconds is not None else 0}% of live hosts"
        if strategy == "canary" and self.canary_share is not None:
            return f"{target} on {self.canary_share:g}% of requests"
        return ""

    def status(self):
        done, total = self.counts()
        parts = [self.where(), f"{done} of {total} hosts done" if total else "", self.share()]
        return " - ".join(part for part in parts if part)

    def _tell(self, message=None):
        if message:
            self.progress.say(f"{message}  [{self.status()}]")
        done, total = self.counts()
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
        """A batch starts when its first host starts the shared deploy steps (its drain, or the record of a host
        it skips) - not when the stage play before the batches touches every host."""
        batches = self.plan.get("batches", [])
        if not batches or data.get("role") != STEPS_ROLE or data.get("play_uuid") == self._plan_play:
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
            if "canary_share" in res:  # a canary step's LB settings: the step starts
                self.canary_share = float(res["canary_share"])
                self.phases.append({"name": f"{self.canary_share:g}%", "started": when, "batch": True})
                self._tell(f"canary step at {self.canary_share:g}% starts: {res['canary_hosts']} canary host(s)")
        if data.get("task_action") == WATCH_ACTION and res.get("decision"):
            judgement = dict({key: res.get(key) for key in JUDGEMENT}, name=self._judged_what())
            self.judgements.append(judgement)
            self._tell(f"{judgement['name']}: {judgement['decision']} - {judgement['reason']}")
        if data.get("task_action") == LOCK_ACTION:
            if res.get("acquired"):
                self.lock_taken[host] = res["lock"]["run_id"]
            else:
                self.lock_taken.pop(host, None)
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

    def _judged_what(self):
        """What a judgement on users' traffic was about, as the plan tells: a canary step, a batch's bake..."""
        strategy = self.plan.get("strategy")
        if strategy == "canary":
            return f"canary step at {self.canary_share:g}%" if self.canary_share is not None else "the last seconds"
        if strategy == "rolling":
            return f"bake after batch {self.batch}"
        return "bake after the switch" if strategy == "bluegreen" else "judgement"

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
