# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
# Documentation: release_input_errors.yml and env_file_lines.yml next to this file.

"""Jinja filters of the release role: its inputs checked in one task per host rather than one per input, and its
environment written the way systemd reads it back."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.deployer.plugins.module_utils import inputs
from ansible_collections.fleet.deployer.plugins.plugin_utils import release

# Inside double quotes systemd's EnvironmentFile= parser unescapes exactly these after a backslash (and keeps any
# other backslash); everything else, newlines and non-ASCII text included, is taken as it is.
_SYSTEMD_QUOTED_ESCAPES = re.compile(r'([\\"`$])')


def release_input_errors(version, port, keep):
    """release.input_errors: one sentence per bad input, [] when all are good."""
    return release.input_errors(version, port, keep)


def env_file_lines(environment, name="release_environment"):
    """KEY="value" lines that systemd's EnvironmentFile= reads back as exactly environment; refuses, naming it,
    a key or a value that no environment can hold."""
    try:
        checked = inputs.check_environment(environment, name)
    except inputs.InputError as error:
        raise AnsibleFilterError(str(error)) from None
    return ['%s="%s"' % (key, _SYSTEMD_QUOTED_ESCAPES.sub(r'\\\1', value)) for key, value in sorted(checked.items())]


class FilterModule:
    def filters(self):
        return {"release_input_errors": release_input_errors, "env_file_lines": env_file_lines}
