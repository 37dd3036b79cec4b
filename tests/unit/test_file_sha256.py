"""The fleet.deployer.file_sha256 lookup: the artifact's checksum on the controller without a module run."""

import subprocess

import pytest
from ansible.errors import AnsibleLookupError

from ansible_collections.fleet.deployer.plugins.lookup.file_sha256 import LookupModule


def test_the_sha256_of_each_file_as_sha256sum_prints_it_and_empty_for_a_missing_one(tmp_path):
    artifact = tmp_path / "user-api-1.1.0-linux-amd64"
    artifact.write_bytes(bytes(range(256)) * 4096)
    published = subprocess.run(["sha256sum", str(artifact)], capture_output=True, text=True, check=True).stdout.split()[0]
    assert LookupModule().run([str(artifact), str(tmp_path / "missing")]) == [published, ""]


def test_a_path_it_cannot_read_is_an_error_that_names_it(tmp_path):
    with pytest.raises(AnsibleLookupError, match=f"cannot read {tmp_path}: Is a directory"):
        LookupModule().run([str(tmp_path)])
