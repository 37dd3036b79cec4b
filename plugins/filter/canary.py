# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
# Documentation: canary_ending.yml, canary_step_row.yml, canary_share.yml, canary_in_place_groups.yml next to this file.

"""Jinja filters over a canary: thin wrappers over plugin_utils/canary.py."""

from __future__ import annotations

from ansible_collections.fleet.deployer.plugins.plugin_utils import canary


class FilterModule:
    def filters(self):
        return {"canary_ending": canary.ending, "canary_step_row": canary.step_row,
                "canary_share": canary.current_share, "canary_in_place_groups": canary.in_place_groups}
