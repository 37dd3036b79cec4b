"""What a person (a progress bar on a terminal) or a CI log (time-stamped lines) sees while a playbook runs."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def stamp(epoch):
    """ISO 8601 in UTC to the second: the prefix of every progress line."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Lines:
    """One line per event, flushed at once, so a CI log shows it while the playbook runs; the same lines go to
    the log file (progress.log beside the report)."""

    def __init__(self, stream, log):
        self.stream = stream
        self.log = log
        self.started = time.time()

    def line(self, message):
        now = time.time()
        text = f"{stamp(now)} +{now - self.started:6.1f}s  {message}\n"
        self.log.write(text)
        self.log.flush()
        return text

    def say(self, message):
        self.stream.write(self.line(message))
        self.stream.flush()

    def update(self, done, total, where, share):
        """Lines mode prints only events; the counts are part of their messages."""

    def close(self):
        self.log.close()


class Bar(Lines):
    """A bar of hosts done on a terminal, with the event lines scrolling above it."""

    def __init__(self, stream, log):
        super().__init__(stream, log)
        self.console = Console(file=stream)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("hosts  {task.fields[share]}"), TimeElapsedColumn(),
                                 console=self.console, transient=True)
        self.task = self.progress.add_task("starting", total=None, share="")
        self.progress.start()

    def say(self, message):
        self.progress.console.print(self.line(message).rstrip("\n"), highlight=False, markup=False)

    def update(self, done, total, where, share):
        self.progress.update(self.task, completed=done, total=total or None, description=where, share=share)

    def close(self):
        self.progress.stop()
        super().close()


def for_stream(stream, log_path):
    log = open(log_path, "a", encoding="utf-8")
    return Bar(stream, log) if stream.isatty() else Lines(stream, log)
