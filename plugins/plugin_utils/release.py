# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""The release role's inputs, checked on each host before anything changes: pure functions of plain data."""

from __future__ import annotations

import json
import re

from ansible_collections.fleet.deployer.plugins.module_utils.inputs import InputError, check_port
from ansible_collections.fleet.deployer.plugins.plugin_utils.fleet import whole_number

_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z._+-]*")


def input_errors(version, port, keep):
    """One sentence per bad input, each naming its value; [] when all are good."""
    errors = []
    if not _VERSION.fullmatch(str(version)):  # `$` would let a trailing newline through
        errors.append(f"release_version={json.dumps(str(version))} is not a version (letters, digits, . _ + -).")
    try:
        check_port(port, "release_port")
    except InputError as error:
        errors.append(str(error))
    number = whole_number(keep)
    if number is None or number < 2:
        errors.append(f"release_keep={json.dumps(keep, default=str)} must be 2 or more (the current and the previous release).")
    return errors
