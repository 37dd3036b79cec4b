# -*- coding: utf-8 -*-
# MIT License (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
name: analysis_settings
author: Fleet deployer team (!UNKNOWN)
version_added: 1.2.0
short_description: The traffic analysis settings every strategy shares, from the analysis_* variables, checked
description:
  - Returns one dictionary of the settings the traffic analysis (M(fleet.deployer.traffic_analysis)) takes, read
    from the play's C(analysis_*) variables, with the defaults below for the ones not set. Every strategy judges a
    new version with the same settings - a canary step, the rolling bake after each batch, the blue-green bake
    after the switch.
  - A bad value fails the lookup with a message that names it, so a strategy that reads its settings first
    refuses before anything changes.
  - The canary's older names (C(canary_max_error_rate), C(canary_max_latency_ratio), C(canary_latency_floor_ms),
    C(canary_min_requests), C(canary_interval_seconds)) still work in this release, with a deprecation warning;
    an C(analysis_*) variable wins over them.
  - "The variables: C(analysis_provider) (V(lb_log) the LBs' access logs, or V(prometheus)), C(analysis_mode)
    (V(enforce), or V(dry_run): judge and report what would happen, change nothing because of it),
    C(analysis_prometheus_url), C(analysis_interval_seconds) (1), C(analysis_baseline_seconds) (60: the old
    version's traffic a baseline takes), C(analysis_max_error_rate) (0.001), C(analysis_max_latency_ratio) (1.5),
    C(analysis_latency_floor_ms) (50), C(analysis_min_requests) (200)."
options: {}
"""

EXAMPLES = r"""
- name: Check the analysis settings before anything changes
  ansible.builtin.set_fact:
    rolling_analysis: "{{ lookup('fleet.deployer.analysis_settings') }}"
"""

RETURN = r"""
_raw:
  description: The settings, without their analysis_ prefix.
  type: list
  elements: dict
  sample: [{"provider": "lb_log", "mode": "enforce", "prometheus_url": "", "interval_seconds": 1.0,
            "baseline_seconds": 60, "max_error_rate": 0.001, "max_latency_ratio": 1.5, "latency_floor_ms": 50.0,
            "min_requests": 200}]
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

from ansible_collections.fleet.deployer.plugins.plugin_utils import analysis

display = Display()


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        names = [f"analysis_{name}" for name in analysis.SETTINGS] + list(analysis.ALIASES)
        given = {name: self._templar.template(variables[name]) for name in names if name in (variables or {})}
        try:
            settings, deprecated = analysis.settings_from(given)
        except ValueError as error:
            raise AnsibleLookupError(f"{error}. Nothing was changed.") from error
        for message in deprecated:
            display.deprecated(message, version="2.0.0", collection_name="fleet.deployer")
        return [settings]
