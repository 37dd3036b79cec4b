"""fleet: CI's entry point to the fleet.deployer playbooks, on ansible-runner.

    fleet deploy rolling   --version 1.1.0 [--batch 25%] [--pause 30]
    fleet deploy bluegreen --version 1.1.0
    fleet deploy canary    --version 1.1.0 [--steps 5,20,50,100] [--split sticky]
    fleet rollback rolling|bluegreen
    fleet promote | abort | status canary
    fleet status
    fleet reconcile
    common: [--inventory PATH] [--check] [--json FILE|-] [--report-dir DIR] [--keep-raw-logs] [-e KEY=VALUE ...]

Progress goes to stderr (a bar on a terminal, time-stamped lines otherwise), the JSON summary to --json. The
values given with -e may be secrets: the summary and the report show their names only, and ansible-runner's
folder (its extravars, environment and events) is removed after the run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import ansible_runner
import jsonschema
import yaml
from ansible.errors import AnsibleError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.parsing.splitter import parse_kv

from fleet_cli import events, lblog, measure, progress, report, summary

EXIT_CODES = """exit codes:
  0  done (also: nothing to do, or --check)
  1  failed and needs a person: the report says where
  2  refused before any change: bad input, inventory or artifact checksum
  3  stopped or aborted with every host serving and the load balancers valid
  4  another deploy holds the lock: it waited fleet_lock_wait seconds, nothing was changed"""
BUCKET_SECONDS = 1.0
CANCEL_POLL_SECONDS = 0.5  # how often runner asks whether fleet was interrupted
MIN_BUCKET_REQUESTS = 10
ANSIBLE_OUTPUT = "ansible-output.log"  # Ansible's own output, kept beside the report
PRIVATE_UMASK = 0o077  # every file of a run, fleet's and ansible-runner's, for the user running fleet only


class Refused(Exception):
    """fleet itself refuses, before any playbook runs (exit 2)."""


def _batch(text):
    """--batch: 2, 25% or a list 1,25%,50% - as rolling_batch takes them."""
    items = [int(item) if item.strip().isdigit() else item.strip() for item in text.split(",")]
    return items if len(items) > 1 else items[0]


def _steps(text):
    """--steps 5,20,pause,50,100 -> [5, 20, "pause", 50, 100]."""
    return [int(item) if item.strip().isdigit() else item.strip() for item in text.split(",")]


def parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--inventory", metavar="PATH", help="inventory (default: ansible.cfg's, the lab)")
    common.add_argument("--check", action="store_true", help="Ansible's check mode: change nothing, say what would")
    common.add_argument("--json", metavar="FILE", help="write the JSON summary to FILE, or to stdout with -")
    common.add_argument("--report-dir", metavar="DIR", help="default: reports/<time>-<strategy>/")
    common.add_argument("--keep-raw-logs", action="store_true",
                        help="keep the LBs' access-log lines whole in the report folder (client addresses, request "
                             "lines with their query strings); by default only their time, status, upstream, "
                             "upstream_status, version and request_time")
    common.add_argument("-e", "--extra-vars", action="append", default=[], metavar="KEY=VALUE",
                        help="any playbook variable, as ansible-playbook -e takes it (KEY=VALUE, JSON, @FILE); "
                             "the summary and the report show its names, never its values")
    top = argparse.ArgumentParser(prog="fleet", description="Run the fleet.deployer playbooks from CI.",
                                  epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command", required=True)
    deploy = commands.add_parser("deploy", help="deploy a version").add_subparsers(dest="strategy", required=True)
    rolling = deploy.add_parser("rolling", parents=[common], help="playbooks/rolling.yml")
    rolling.add_argument("--batch", type=_batch, help="hosts per batch: 2, 25%% or 1,25%%,50%% (default 1)")
    rolling.add_argument("--pause", type=int, metavar="SECONDS", help="pause between batches")
    bluegreen = deploy.add_parser("bluegreen", parents=[common], help="playbooks/bluegreen.yml")
    canary = deploy.add_parser("canary", parents=[common], help="playbooks/canary.yml")
    canary.add_argument("--steps", type=_steps, help="shares in %%, e.g. 5,20,50,100 or 5,pause,20,100")
    canary.add_argument("--split", choices=["weights", "sticky"], help="how the LB splits traffic")
    for strategy in (rolling, bluegreen, canary):
        strategy.add_argument("--version", required=True, help="the version to deploy (app_version)")
    rollback = commands.add_parser("rollback", parents=[common], help="roll back the last deploy")
    rollback.add_argument("strategy", choices=["rolling", "bluegreen"])
    for action in ("promote", "abort"):
        commands.add_parser(action, parents=[common], help=f"{action} the running canary").add_argument(
            "strategy", choices=["canary"])
    status = commands.add_parser("status", parents=[common], help="who serves what (or: status canary)")
    status.add_argument("strategy", nargs="?", choices=["canary"])
    commands.add_parser("reconcile", parents=[common],
                        help="put the LBs in line with the fleet: healthy hosts in, broken ones out")
    return top


def job_of(args):
    """(label, strategy, action, playbook, extravars) for the command line."""
    if args.command == "deploy":
        extravars = {"app_version": args.version}
        if args.strategy == "rolling":
            extravars.update({"rolling_batch": args.batch, "rolling_pause_seconds": args.pause})
        if args.strategy == "canary":
            extravars.update({"canary_steps": args.steps, "canary_split": args.split})
        return (f"deploy {args.strategy}", args.strategy, "deploy", f"{args.strategy}.yml",
                {key: value for key, value in extravars.items() if value is not None})
    if args.command == "rollback":
        return ("rollback rolling", "rolling", "rollback", "rollback.yml", {}) if args.strategy == "rolling" else \
            ("rollback bluegreen", "bluegreen", "rollback", "bluegreen.yml", {"bluegreen_action": "rollback"})
    if args.command == "status" and not args.strategy:
        return "status", "status", "status", "status.yml", {}
    if args.command == "reconcile":
        return "reconcile", "reconcile", "reconcile", "reconcile.yml", {}
    return f"{args.command} canary", "canary", args.command, "canary.yml", {"canary_action": args.command}


def extra_var(value):
    """One -e value the way ansible-playbook reads it: @FILE, a JSON/YAML mapping, or KEY=VALUE pairs."""
    shown = value if value.startswith("@") else summary.REDACTED  # a value may be a secret, a file's name is not
    try:
        if value.startswith("@"):
            loaded = yaml.safe_load(Path(value[1:]).read_text())
        elif value.lstrip().startswith("{"):
            loaded = yaml.safe_load(value)
        else:
            loaded = parse_kv(value)
    except (yaml.YAMLError, AnsibleError) as error:  # their messages quote the text they could not parse
        raise Refused(f"-e {shown} does not parse ({type(error).__name__})") from None
    if not isinstance(loaded, dict) or "_raw_params" in loaded:
        raise Refused(f"-e {shown} is not KEY=VALUE, a mapping or @FILE")
    return loaded


def extra_vars(values):
    """All -e values merged, the last one winning, as with ansible-playbook."""
    merged = {}
    for value in values:
        merged.update(extra_var(value))
    return merged


def shown_extra_var(value):
    """An -e value as the summary shows it: @FILE as given, a mapping or KEY=VALUE pairs with every value masked."""
    if value.startswith("@"):
        return value
    try:
        loaded = extra_var(value)
    except Refused:
        return summary.REDACTED
    if value.lstrip().startswith("{"):
        return json.dumps(summary.masked(loaded))
    return " ".join(f"{name}={summary.REDACTED}" for name in loaded)


def shown_argv(argv, values):
    """The command line with each -e value masked, however it was given (-e VALUE, -eVALUE, --extra-vars=VALUE);
    fleet's own options as they were."""
    shown = []
    for token in argv:
        value = next((value for value in values
                      if value and (token == value or (token.startswith("-") and token.endswith(value)))), None)
        shown.append(token if value is None else token[:len(token) - len(value)] + shown_extra_var(value))
    return shown


def project_dir():
    """The repository with playbooks/: FLEET_PROJECT_DIR, else the first one from the current folder up, else
    the one this package was installed from (make setup installs it editable)."""
    if os.environ.get("FLEET_PROJECT_DIR"):
        return Path(os.environ["FLEET_PROJECT_DIR"]).resolve()
    for folder in [Path.cwd(), *Path.cwd().parents, *Path(__file__).resolve().parents]:
        if (folder / "playbooks" / "rolling.yml").is_file() and (folder / "ansible.cfg").is_file():
            return folder
    raise Refused("no project found: run fleet inside the repository, or set FLEET_PROJECT_DIR")


def check_inputs(project, playbook, inventory, extravars):
    if not (project / "playbooks" / playbook).is_file():
        raise Refused(f"playbooks/{playbook} does not exist in {project}")
    if inventory and not Path(inventory).exists():
        raise Refused(f"no inventory at {inventory}")
    if boolean(extravars.get("rolling_confirm", False), strict=False):
        raise Refused("fleet runs without prompts: use --pause SECONDS between batches, or in AWX a workflow "
                      "approval between job templates (docs/fleet.md: As an AWX project)")


def _iso(epoch):
    return progress.stamp(epoch) if epoch else None


def _steps_of(collector, report_steps, entries, target, finished):
    """The report's steps (rolling batches), else the plays; each with its share of requests from the LB log."""
    if report_steps:
        steps = [dict(step, started=float(step["started"]) if step.get("started") else None,
                      finished=float(step["finished"]) if step.get("finished") else None) for step in report_steps]
    else:
        plays = [phase for phase in collector.phases if not phase.get("batch")]
        ends = [phase["started"] for phase in plays[1:]] + [finished]
        steps = [{"name": phase["name"], "hosts": [], "started": phase["started"], "finished": end,
                  "status": "done"} for phase, end in zip(plays, ends)]
    for step in steps:
        timed = step["started"] is not None and step["finished"] is not None
        step["started_iso"] = _iso(step["started"])
        step["seconds"] = round(step["finished"] - step["started"], 1) if timed else None
        step["share_observed"] = lblog.share(entries, target, step["started"], step["finished"]) \
            if timed and entries is not None else None
    return steps


def observed(warn, what, function, *args):
    """function(*args), or None after warn(...): fleet's own figures and files never change a run's outcome."""
    try:
        return function(*args)
    except Exception as error:  # noqa: BLE001 - any bug in what fleet adds to a run is a warning, not a crash
        warn(f"{what} failed: {type(error).__name__}: {error}")
        return None


def stopped_by(signal_name, lock_taken):
    """The outcome of a run fleet was told to stop (Ctrl-C, CI's timeout)."""
    held = f" It held the deploy lock on {', '.join(sorted(lock_taken))}, which fleet gives back." if lock_taken else ""
    return (f"interrupted by {signal_name}: the playbook was stopped mid-run.{held} Hosts it had drained may be out "
            "of rotation: run `fleet reconcile` to put the healthy ones back, then the same command again.")


def helper_playbook(name, project, inventory, envvars, scratch, extravars):
    """Runs one of fleet's own playbooks after the run (its runner folder in scratch); raises RuntimeError, with
    Ansible's errors, when it fails."""
    private = scratch / f"runner-{name.replace('_', '-')}"
    private.mkdir(exist_ok=True)
    runner = ansible_runner.run(private_data_dir=str(private), project_dir=str(project),
                                playbook=str(project / "playbooks" / f"{name}.yml"), inventory=inventory,
                                envvars=envvars, extravars=extravars, quiet=True)
    if runner.status != "successful":
        output = Path(runner.config.artifact_dir, "stdout").read_text(errors="replace").splitlines()
        errors = [line.strip() for line in output if line.startswith(("fatal:", "ERROR!"))]
        raise RuntimeError(f"playbooks/{name}.yml {runner.status} (rc {runner.rc}): {' | '.join(errors) or '-'}")


def release_interrupted_lock(project, inventory, envvars, scratch, holders):
    """Gives back the deploy lock of the run fleet interrupted (playbooks/release_lock.yml); returns the holders
    released, or raises RuntimeError."""
    for holder in sorted(set(holders)):
        helper_playbook("release_lock", project, inventory, envvars, scratch, {"fleet_lock_holder_id": holder})
    return sorted(set(holders))


def read_lb_log(project, inventory, envvars, scratch, directory, start, end, keep_raw):
    """Copies every LB's access log with playbooks/lb_log.yml; keeps the lines of [start, end) in
    directory/lb-log/<lb>.jsonl, whole with keep_raw, else reduced to what the report needs. Returns
    (entries, LB names) or raises RuntimeError."""
    kept = directory / "lb-log"
    kept.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as copies:
        helper_playbook("lb_log", project, inventory, envvars, scratch, {"lb_log_dest": copies})
        entries, lbs = [], []
        for copy in sorted(Path(copies).glob("*.log")):
            lines = lblog.window_lines(copy.read_text(errors="replace").splitlines(), start, end)
            (kept / f"{copy.stem}.jsonl").write_text(
                "".join((line if keep_raw else lblog.reduced(line)) + "\n" for line in lines))
            entries += lblog.parse(lines)
            lbs.append(copy.stem)
    return entries, lbs


def traffic_of(entries, lbs, start, end, target, marks, directory, title):
    """The traffic over the window: totals for the summary; the per-second series (the picture's numbers)
    in traffic.json; the picture itself."""
    series = lblog.series(entries, start, end, BUCKET_SECONDS)
    totals = lblog.totals(series)
    peak, at = lblog.peak_share(series, target, MIN_BUCKET_REQUESTS)
    (directory / "traffic.json").write_text(json.dumps(
        {"window": {"from": start, "to": end}, "bucket_seconds": BUCKET_SECONDS, "target": target,
         "marks": marks, "series": series}, indent=1))
    if totals["requests"]:
        report.picture(series, marks, target, f"{title} ({totals['requests']} requests, LB log)",
                       directory / report.PICTURE)
    return dict(totals, lbs=lbs, window={"from": start, "to": end, "from_iso": _iso(start), "to_iso": _iso(end)},
                bucket_seconds=BUCKET_SECONDS, error_rate=round(totals["errors"] / max(totals["requests"], 1), 6),
                peak_share=peak, peak_at=at, min_requests=MIN_BUCKET_REQUESTS, data="traffic.json",
                picture=report.PICTURE if totals["requests"] else None)


def marks_of(phases, judgements, start):
    """What the picture marks: a line at each batch's or step's start and the report's play (or else each play's
    start), and a shaded span over each window a judgement on users' traffic looked at."""
    batches = [phase for phase in phases if phase.get("batch")]
    plays = [phase for phase in phases if not phase.get("batch")]
    chosen = batches + plays[-1:] if batches else plays[1:]
    lines = [{"name": events.short(phase["name"]), "t": round(phase["started"] - start, 3)} for phase in chosen]
    spans = [{"name": judged["name"], "t": round(judged["window"]["start"] - start, 3),
              "until": round(judged["window"]["end"] - start, 3), "decision": judged["decision"]}
             for judged in judgements if (judged.get("window") or {}).get("start")]
    return lines + spans


def run(args, project, label, strategy, action, playbook, extravars, shown_args, scratch):
    """The run; shown_args are the argv and extravars the summary shows, scratch the folder of ansible-runner's
    private data (extravars, environment, events), removed after the run."""
    inventory = str(Path(args.inventory).resolve()) if args.inventory else None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    directory = Path(args.report_dir or project / "reports" / f"{stamp}-{label.replace(' ', '-')}").resolve()
    directory.mkdir(parents=True, exist_ok=True)
    envvars = {} if os.environ.get("ANSIBLE_CONFIG") else {"ANSIBLE_CONFIG": str(project / "ansible.cfg")}
    shown = progress.for_stream(sys.stderr, directory / "progress.log")
    collector = events.Collector(shown, check=args.check)
    warn = collector.warn
    # Ctrl-C, or CI's timeout: runner stops the playbook (its whole process group) at its next look.
    interrupted = []
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, lambda number, _: interrupted.append(signal.Signals(number).name))
    shown.say(f"fleet {label}: playbooks/{playbook}{' --check' if args.check else ''}, report in {directory}")
    started = time.time()
    (scratch / "runner").mkdir()
    runner = ansible_runner.run(
        private_data_dir=str(scratch / "runner"), project_dir=str(project),
        playbook=str(project / "playbooks" / playbook), inventory=inventory, extravars=extravars,
        cmdline="--check --diff" if args.check else None, envvars=envvars, quiet=True,
        settings={"pexpect_timeout": CANCEL_POLL_SECONDS},
        event_handler=collector, cancel_callback=lambda: bool(interrupted))
    finished = time.time()
    played = collector.report or {}
    changed = {host for host, count in (runner.stats or {}).get("changed", {}).items() if count}
    code = summary.exit_code(runner.status, played.get("status"), changed, collector.lock_holder)
    before, target = events.plan_versions(collector.plan)
    target = target or extravars.get("app_version", "")
    outcome = played.get("outcome") or (collector.failures[-1]["message"] if collector.failures else runner.status)
    if interrupted:
        code, outcome = summary.FAILED, stopped_by(interrupted[0], collector.lock_taken)
        shown.say(outcome)
        if collector.lock_taken and observed(warn, "giving back the deploy lock", release_interrupted_lock, project,
                                             inventory, envvars, scratch, collector.lock_taken.values()) is None:
            outcome += f" Its deploy lock could not be given back ({collector.warnings[-1]})."

    entries, traffic = None, None
    if collector.report:
        read = observed(warn, "reading the LB log", read_lb_log, project, inventory, envvars, scratch, directory,
                        started, finished, args.keep_raw_logs)
        if read:
            entries, lbs = read
            traffic = observed(warn, "the traffic figures", traffic_of, entries, lbs, started, finished, target,
                               marks_of(collector.phases, collector.judgements, started), directory,
                               f"fleet {label}: {', '.join(before) or '-'} -> {target or '-'}")
    observed(warn, "keeping Ansible's output", shutil.copyfile, Path(runner.config.artifact_dir, "stdout"),
             directory / ANSIBLE_OUTPUT)
    result = {
        "fleet_summary": 1,
        "command": f"fleet {label}", "argv": shown_args["argv"], "strategy": strategy, "action": action,
        "check": args.check, "exit_code": code,
        "result": "interrupted" if interrupted else summary.result(code, played.get("status")), "outcome": outcome,
        "versions": {"from": before, "to": target or None},
        "started": _iso(started), "finished": _iso(finished), "seconds": round(finished - started, 1),
        "playbook": f"playbooks/{playbook}", "inventory": inventory, "extravars": shown_args["extravars"],
        "hosts": played.get("hosts", []), "rows": played.get("rows", []),
        "steps": _steps_of(collector, played.get("steps"), entries, target, finished) if played else [],
        "failures": collector.failures, "messages": collector.messages,
        "switch_seconds": collector.switch_seconds, "traffic": traffic, "analysis": collector.judgements,
        "report": None, "warnings": collector.warnings,
        "artifacts": {"stdout": str(directory / ANSIBLE_OUTPUT), "progress": str(directory / "progress.log"),
                      "runner_status": runner.status, "rc": runner.rc},
    }
    if played:
        table = observed(warn, "the measured figures", measure.table, strategy, action, result["seconds"],
                         result["hosts"], collector.outcomes, collector.switch_seconds, traffic, target)
        if table:
            result["measured"] = [{"row": row, "seed": seed, "run": measured} for row, seed, measured in table]
            written = observed(warn, "writing the report", report.write, directory, result, table,
                               collector.report_text)
            if written:
                result["report"] = {"dir": str(directory), "markdown": str(written[0]), "html": str(written[1]),
                                    "picture": str(directory / report.PICTURE) if traffic and traffic["picture"]
                                    else None}
    shown.close()
    return finish(args, result, collector.report_text or "\n".join(
        line for message in collector.messages for line in (message if isinstance(message, list) else [message])),
        directory)


def finish(args, result, text, directory=None):
    """Validates and writes the summary, says how the run ended; returns the exit code."""
    try:
        summary.validate(result)
    except jsonschema.ValidationError as error:  # written anyway: the run's outcome matters more than its form
        result["warnings"].append(f"the summary does not follow its schema: {error.message}")
        print(f"WARNING: {result['warnings'][-1]}", file=sys.stderr)
    document = json.dumps(result, indent=2) + "\n"
    if directory:
        (directory / "summary.json").write_text(document)
    if args.json == "-":
        sys.stdout.write(document)
    elif args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(document)
    if text:
        print(text, file=sys.stderr)
    where = f"; report: {result['report']['markdown']}" if result.get("report") else ""
    print(f"fleet {result['command'][6:]}: {result['result']} (exit {result['exit_code']}){where}", file=sys.stderr)
    return result["exit_code"]


def refused(args, label, strategy, action, message, shown_argv):
    """A summary for a run fleet refused before any playbook ran."""
    now = time.time()
    result = {"fleet_summary": 1, "command": f"fleet {label}", "argv": shown_argv, "strategy": strategy,
              "action": action, "check": bool(getattr(args, "check", False)), "exit_code": summary.REFUSED,
              "result": "refused", "outcome": message, "versions": {"from": [], "to": None},
              "started": _iso(now), "finished": _iso(now), "seconds": 0.0, "playbook": None, "inventory": None,
              "extravars": {}, "hosts": [], "rows": [], "steps": [], "failures": [], "messages": [],
              "switch_seconds": None, "traffic": None, "analysis": [], "report": None, "artifacts": None,
              "warnings": []}
    print(f"fleet: {message}", file=sys.stderr)
    return finish(args, result, "")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)  # bad input: argparse exits 2
    label, strategy, action, playbook, extravars = job_of(args)
    shown_args = {"argv": shown_argv(argv, args.extra_vars), "extravars": dict(extravars)}
    # The ansible-playbook that runner starts is the one installed beside this Python (the .venv's).
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    umask = os.umask(PRIVATE_UMASK)
    try:
        try:
            given = extra_vars(args.extra_vars)
            extravars.update(given)
            project = project_dir()
            check_inputs(project, playbook, args.inventory, extravars)
        except (Refused, OSError) as error:
            return refused(args, label, strategy, action, str(error), shown_args["argv"])
        shown_args["extravars"].update(summary.masked(given))
        with tempfile.TemporaryDirectory(prefix="fleet-runner-") as scratch:
            return run(args, project, label, strategy, action, playbook, extravars, shown_args, Path(scratch))
    finally:
        os.umask(umask)


if __name__ == "__main__":
    sys.exit(main())
