"""The run's exit code and its JSON summary (schema: summary.schema.json beside this file)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

SCHEMA = Path(__file__).with_name("summary.schema.json")

# exit code -> the summary's `result` when the playbook did not complete
DONE, FAILED, REFUSED, STOPPED, LOCKED = 0, 1, 2, 3, 4
RESULTS = {FAILED: "failed", REFUSED: "refused", STOPPED: "stopped", LOCKED: "locked"}
REDACTED = "<redacted>"


def exit_code(runner_status, report_status, changed_hosts, lock_holder):
    """0 done; 4 another deploy holds the lock; 3 stopped or aborted with every host serving and the LBs valid
    (the report says so); 2 refused before any change (a failed run in which no task changed anything);
    1 failed and needs a person. runner_status is ansible-runner's: successful, failed, timeout, canceled."""
    if runner_status == "successful" and report_status != "stopped":
        return DONE
    if lock_holder:
        return LOCKED
    if report_status == "stopped":
        return STOPPED
    if runner_status == "failed" and not changed_hosts:
        return REFUSED
    return FAILED


def result(code, report_status):
    """The summary's one-word result: the report's status when the run completed (completed, unchanged, check)."""
    return RESULTS.get(code) or report_status or "completed"


def validate(summary):
    """Raises jsonschema.ValidationError when the summary does not follow the schema."""
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(summary)


def masked(value):
    """-e values as the summary and the report show them (they may be secrets): every name kept, every value
    <redacted>."""
    if isinstance(value, dict):
        return {key: masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [masked(item) for item in value]
    return REDACTED
