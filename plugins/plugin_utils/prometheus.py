# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""The traffic analysis's second source: each side's requests, errors and p95 latency from Prometheus (PromQL over
its HTTP API), by the `instance` label of the service's own metrics - `http_requests_total{handler,code}` and
`http_request_duration_seconds{handler}`, the health and metrics handlers left out. Every query is kept with its
value for the report. No answer, or no series, is no data: never a pass."""

from __future__ import annotations

import json
import math
import re
from urllib.parse import urlencode

from ansible.module_utils.urls import open_url

from ansible_collections.fleet.deployer.plugins.plugin_utils.analysis import Figures

TIMEOUT_SECONDS = 5
USERS = 'handler!~"healthz|metrics"'  # users' requests, not the LB's health checks or Prometheus' scrapes


def _pattern(instances):
    """A PromQL string for instance=~ that matches exactly these host:port values."""
    return "|".join(re.escape(instance) for instance in instances).replace("\\", "\\\\")


def queries(instances, seconds):
    """{name: PromQL} for one side over the last `seconds` (at the evaluation time)."""
    selector = f'instance=~"{_pattern(instances)}",{USERS}'
    span = f"[{max(1, round(seconds))}s]"
    return {
        "requests": f"sum(increase(http_requests_total{{{selector}}}{span}))",
        "errors": f'sum(increase(http_requests_total{{{selector},code=~"5.."}}{span}))',
        "p95": f"histogram_quantile(0.95, sum by (le) (increase(http_request_duration_seconds_bucket{{{selector}}}"
               f"{span})))",
    }


def value_of(answer):
    """The one number of an instant query's JSON answer; None for no series or NaN."""
    if answer.get("status") != "success":
        raise ValueError(f"Prometheus answered {answer.get('status')}: {answer.get('error', '')}")
    result = answer["data"]["result"]
    if not result:
        return None
    value = float(result[0]["value"][1])
    return value if math.isfinite(value) else None


class Source:
    """A Prometheus server; `queries` keeps every query asked and its value, `problem` the last failure."""

    def __init__(self, url):
        self.url = url.rstrip("/")
        self.queries = []
        self.problem = ""

    def ask(self, query, at):
        address = f"{self.url}/api/v1/query?{urlencode({'query': query, 'time': f'{at:.3f}'})}"
        try:
            with open_url(address, timeout=TIMEOUT_SECONDS) as response:
                value = value_of(json.loads(response.read()))
        except Exception as error:  # noqa: BLE001 - any failure to get a number is no data, said as such
            self.problem = f"no data from Prometheus at {self.url}: {error}"
            value = None
        self.queries.append({"query": query, "time": round(at, 3), "value": value})
        return value

    def figures(self, instances, start, end):
        """One side's Figures over [start, end); no requests when Prometheus has none (or does not answer)."""
        asked = {name: self.ask(query, end) for name, query in queries(instances, end - start).items()}
        requests = round(asked["requests"] or 0)
        return Figures(requests=requests, errors=round(asked["errors"] or 0), p95=asked["p95"],
                       latency_samples=requests if asked["p95"] is not None else 0)
