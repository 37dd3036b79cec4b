"""Make the collection's code importable the way Ansible imports it: ansible_collections.fleet.deployer.plugins..."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COLLECTIONS = REPO / '.collections'

assert (COLLECTIONS / 'ansible_collections' / 'fleet' / 'deployer').resolve() == REPO, (
    'run tools/setup.sh first: it links this repository in as the collection fleet.deployer')
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
