"""The per-deploy report: Markdown, a self-contained HTML file (the picture embedded) and the picture itself -
the share of requests per version and the error rate over the run, from the LB log, steps marked."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import jinja2
import matplotlib
from markdown_it import MarkdownIt

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

PICTURE = "traffic.png"
COLOURS = ["#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2em .5em;vertical-align:top}}
img{{max-width:100%}}pre{{background:#f6f6f6;padding:1em;overflow-x:auto}}</style></head>
<body>
{body}</body></html>
"""


def _cell(text):
    """Table cells stay on one line, and a | in them stays text."""
    return str(text).replace("|", "\\|").replace("\n", " ")


_TEMPLATES = jinja2.Environment(loader=jinja2.PackageLoader("fleet_cli"), trim_blocks=True, lstrip_blocks=True,
                                keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
_TEMPLATES.filters["cell"] = _cell


def _side(figures):
    """One side of a judgement in a table cell: requests, error rate, p95."""
    rate = "-" if figures.get("error_rate") is None else f"{100 * figures['error_rate']:.2f}%"
    p95 = "-" if figures.get("p95") is None else f"{1000 * figures['p95']:.0f} ms"
    return f"{figures.get('requests', 0)}, {rate}, {p95}"


_TEMPLATES.filters["side"] = _side


def picture(series, marks, target, title, path):
    """Two panels over seconds since the window's start: the share of requests answered by each version
    (stacked), and the error rate; a dashed line at each mark ({name, t})."""
    seconds = [slot["t"] for slot in series]
    versions = sorted({v for slot in series for v in slot["versions"]}, key=lambda v: (v != target, v))[::-1]
    shares = [[100 * slot["versions"].get(v, 0) / slot["requests"] if slot["requests"] else 0 for slot in series]
              for v in versions]
    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(11, 6), height_ratios=[3, 1],
                                         layout="constrained")
    colours = ["#bbbbbb" if v == "none" else COLOURS[i % len(COLOURS)] for i, v in enumerate(versions)]
    top.stackplot(seconds, shares, labels=versions, colors=colours, alpha=0.85, step="post")
    top.set_ylim(0, 100)
    top.set_ylabel("share of requests (%)")
    top.legend(loc="upper left", title="answered by")
    top.set_title(title, fontsize=11)
    errors = [100 * slot["errors"] / slot["requests"] if slot["requests"] else 0 for slot in series]
    retried = [100 * slot["failed_upstream"] / slot["requests"] if slot["requests"] else 0 for slot in series]
    bottom.step(seconds, errors, where="post", color="#d62728", label="answered 5xx")
    bottom.step(seconds, retried, where="post", color="#ff9896", linestyle=":", label="a backend failed, Nginx retried")
    bottom.set_ylim(bottom=0, top=max(1.0, *errors, *retried) * 1.1)
    bottom.set_ylabel("error rate (%)")
    bottom.set_xlabel("seconds since the start of the run")
    bottom.legend(loc="upper left", fontsize=8)
    for mark in marks:
        if "until" in mark:  # a window judged on users' traffic: shaded, red when it failed
            colour = "#d62728" if mark["decision"] == "fail" else "#7f7f7f"
            for axis in (top, bottom):
                axis.axvspan(mark["t"], mark["until"], color=colour, alpha=0.12, linewidth=0)
            top.annotate(f"{mark['name']}: {mark['decision']}", (mark["until"], 2), rotation=90, va="bottom",
                         ha="right", fontsize=7)
            continue
        for axis in (top, bottom):
            axis.axvline(mark["t"], color="black", linestyle="--", linewidth=0.8)
        top.annotate(mark["name"], (mark["t"], 98), rotation=90, va="top", ha="right", fontsize=8)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write(directory, summary, table, report_text):
    """report.md and report.html in directory (the picture, when there is one, is already there)."""
    directory = Path(directory)
    template = _TEMPLATES.get_template("report.md.j2")
    values = {"s": summary, "table": table, "report_text": report_text or "(no report)"}
    markdown = template.render(image=PICTURE, **values)
    (directory / "report.md").write_text(markdown)
    image = directory / PICTURE
    inline = f"data:image/png;base64,{base64.b64encode(image.read_bytes()).decode()}" if image.exists() else ""
    # Raw HTML off: what a backend or a host says (a version header, a note) is shown as text, never run as markup.
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(template.render(image=inline, **values))
    (directory / "report.html").write_text(HTML.format(title=html.escape(summary["command"]), body=body))
    return directory / "report.md", directory / "report.html"
