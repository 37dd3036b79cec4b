# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""The release role's inputs, checked on each host before anything changes: pure functions of plain data."""

from __future__ import annotations

import json
import re

_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+-]*$")


def _whole(value):
    """value as an int, or None when it is not a whole number (booleans are not)."""
    if isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def input_errors(version, port, keep):
    """One sentence per bad input, each naming its value; [] when all are good."""
    errors = []
    if not _VERSION.match(str(version)):
        errors.append(f"release_version={json.dumps(str(version))} is not a version (letters, digits, . _ + -).")
    number = _whole(port)
    if number is None or not 0 < number < 65536:
        errors.append(f"release_port={json.dumps(port)} is not a TCP port (1-65535).")
    number = _whole(keep)
    if number is None or number < 2:
        errors.append(f"release_keep={json.dumps(keep)} must be 2 or more (the current and the previous release).")
    return errors
