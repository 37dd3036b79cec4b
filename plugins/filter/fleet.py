# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
# Documentation: live_hosts.yml, serving.yml, server_entries.yml, failed_step.yml, smoke_outcome.yml,
# open_connections_filter.yml, input_errors.yml and host_values.yml next to this file.

"""Jinja filters over the fleet: which hosts the LBs list, and what a failed task said, on one line."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.deployer.plugins.module_utils import inputs
from ansible_collections.fleet.deployer.plugins.plugin_utils import fleet


def live_hosts(names, hostvars, lb_hosts, address_var="app_backend_address"):
    """The names whose backend address any of lb_hosts lists in nginx_lb_live_servers, drained or not."""
    hosts = [fleet.Host(name=name, address=inputs.address_key(hostvars[name].get(address_var, ""))) for name in names]
    servers = {lb: hostvars[lb].get("nginx_lb_live_servers") for lb in lb_hosts}
    return [host.name for host in fleet.live_hosts(hosts, servers)]


def serving(servers, answers, hostvars, app_hosts, address_var="app_backend_address"):
    """fleet.serving with each backend address named by its inventory host."""
    host_of = {inputs.address_key(hostvars[name].get(address_var, "")): name for name in app_hosts}
    return fleet.serving(servers, list(answers), host_of)


def server_entries(addresses, options):
    """The servers option of nginx_upstream: one entry per address, each with the same options."""
    return [dict(options, address=address) for address in addresses]


def open_connections_filter(port, ignored_addresses=()):
    """fleet.open_connections_filter, its refusal as a filter error."""
    try:
        return fleet.open_connections_filter(port, ignored_addresses)
    except fleet.Refusal as refusal:
        raise AnsibleFilterError(str(refusal)) from None


def input_errors(checks):
    """inputs.input_errors: one message per value that must not reach a file, naming it; [] when all are good."""
    try:
        return inputs.input_errors(checks)
    except KeyError as error:
        raise AnsibleFilterError("input_errors: %s" % error.args[0]) from None


def host_values(names, hostvars, var):
    """{"VAR of HOST": value} for each host of names that has var - what input_errors takes."""
    return {f"{var} of {name}": hostvars[name][var] for name in names if var in hostvars[name]}


def failed_step(result, task_name):
    """'task: why' for a failed result; for a loop, each failed item with its message (or a command's answers)."""
    def why(one):
        if "cmd" in one and one.get("stdout_lines") is not None:
            return "answered " + ", ".join(dict.fromkeys(one["stdout_lines"]))
        return str(one.get("msg") or "failed")
    failed = [item for item in result.get("results", []) if item.get("failed")]
    text = "; ".join(f"{item.get('item', '')}: {why(item)}" for item in failed) if failed else why(result)
    return f"{task_name}: {' '.join(text.split())}"


def smoke_outcome(answer, version, status, asker):
    """fleet.smoke_outcome: a smoke test judged from a fleet.deployer.backend_probe answer."""
    return fleet.smoke_outcome(answer, version, int(status), asker)


class FilterModule:
    def filters(self):
        return {"live_hosts": live_hosts, "failed_step": failed_step, "server_entries": server_entries,
                "serving": serving, "smoke_outcome": smoke_outcome,
                "open_connections_filter": open_connections_filter, "input_errors": input_errors,
                "host_values": host_values}
