# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
# Documentation: release_input_errors.yml next to this file.

"""Jinja filters of the release role: its inputs checked in one task per host rather than one per input."""

from __future__ import annotations

from ansible_collections.fleet.deployer.plugins.plugin_utils import release


def release_input_errors(version, port, keep):
    """release.input_errors: one sentence per bad input, [] when all are good."""
    return release.input_errors(version, port, keep)


class FilterModule:
    def filters(self):
        return {"release_input_errors": release_input_errors}
