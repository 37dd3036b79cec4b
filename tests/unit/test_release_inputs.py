"""The release role's input check (plugin_utils/release.py): one sentence per bad input, naming its value."""

from datetime import date

import pytest

from ansible_collections.fleet.deployer.plugins.plugin_utils.release import input_errors


@pytest.mark.parametrize("version, port, keep, errors", [
    ("1.1.0", 8000, 3, []),
    ("1.1.0-rc.1+build_7", "8000", "2", []),  # extra-vars arrive as strings
    (1.1, 65535, 2, []),
    ("-1.1.0", 8000, 3, ['release_version="-1.1.0" is not a version (letters, digits, . _ + -).']),
    ("1.1.0; rm -rf /", 8000, 3, ['release_version="1.1.0; rm -rf /" is not a version (letters, digits, . _ + -).']),
    ("", 8000, 3, ['release_version="" is not a version (letters, digits, . _ + -).']),
    ("1.1.0\n", 8000, 3, ['release_version="1.1.0\\n" is not a version (letters, digits, . _ + -).']),
    ("1.1.0", date(2026, 11, 27), 3, ['release_port="2026-11-27" is not a TCP port (1-65535).']),  # YAML reads dates
    ("1.1.0", 0, 3, ["release_port=0 is not a TCP port (1-65535)."]),
    ("1.1.0", 65536, 3, ["release_port=65536 is not a TCP port (1-65535)."]),
    ("1.1.0", "http", 3, ['release_port="http" is not a TCP port (1-65535).']),
    ("1.1.0", True, 3, ["release_port=true is not a TCP port (1-65535)."]),
    ("1.1.0", 8000, 1, ["release_keep=1 must be 2 or more (the current and the previous release)."]),
    ("1.1.0", 8000, "all", ['release_keep="all" must be 2 or more (the current and the previous release).']),
    ("x y", None, None, ['release_version="x y" is not a version (letters, digits, . _ + -).',
                         "release_port=null is not a TCP port (1-65535).",
                         "release_keep=null must be 2 or more (the current and the previous release)."]),
])
def test_input_errors(version, port, keep, errors):
    assert input_errors(version, port, keep) == errors
