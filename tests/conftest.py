"""Make the plugins' own code importable by the tests, the way Ansible finds it through ansible.cfg."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

for plugin_dir in ('plugins/module_utils', 'plugins/filter'):
    if str(REPO / plugin_dir) not in sys.path:
        sys.path.insert(0, str(REPO / plugin_dir))
