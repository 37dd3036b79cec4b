"""`fleet` with a planted bug in its progress: it raises at the start of every task. Run it as `python
tests/planted_observer.py <fleet's arguments>`; the tests prove the playbook still runs to its own end."""

import sys

from fleet_cli import cli, events


def planted(self, data, when):
    raise RuntimeError("planted in the progress")


events.Collector._runner_on_start = planted
sys.exit(cli.main(sys.argv[1:]))
