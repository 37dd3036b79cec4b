"""What a fresh machine installs is what was tested: the locks agree with requirements*.txt and with each other,
the virtualenv holds exactly the test lock, and the service builds with the locked Go into the same bytes."""

import importlib.metadata
import os
import re
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]


LOCK_ENTRY = re.compile(r'^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s*\\\n\s+--hash=sha256:[0-9a-f]{64})*)',
                        re.MULTILINE)
PIN = re.compile(r'^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$')


def lock(name):
    """{package: (version, [hashes])} of a pip-compile lock."""
    entries = {canonicalize_name(found[1]): (found[2], re.findall(r'sha256:([0-9a-f]{64})', found[3]))
               for found in LOCK_ENTRY.finditer((REPO / name).read_text())}
    assert entries, f'{name} holds no package'
    return entries


def pins(name):
    """{package: version} pinned by a requirements file, with the files it includes (-r)."""
    pinned = {}
    for line in (REPO / name).read_text().splitlines():
        line = line.split('#')[0].strip()
        if line.startswith('-r '):
            pinned.update(pins(line[3:].strip()))
        elif line:
            match = PIN.match(line)
            assert match, f'{name}: {line!r} is not pinned with =='
            pinned[canonicalize_name(Requirement(line).name)] = match[2]
    return pinned


@pytest.mark.parametrize('requirements, locked', [('requirements.txt', 'requirements.lock'),
                                                  ('requirements-test.txt', 'requirements-test.lock')])
def test_every_pin_is_locked_at_its_version(requirements, locked):
    entries = lock(locked)
    assert {name: version for name, version in pins(requirements).items() if entries.get(name, ('',))[0] != version} \
        == {}, f'{requirements} and {locked} disagree: run make lock'


def test_every_locked_package_has_a_hash():
    for name in ('requirements.lock', 'requirements-test.lock'):
        assert [package for package, (_, hashes) in lock(name).items() if not hashes] == [], name


def test_the_controller_lock_is_the_test_lock_narrowed():
    controller, test = lock('requirements.lock'), lock('requirements-test.lock')
    assert {name: entry for name, entry in controller.items() if test.get(name) != entry} == {}


def test_the_virtualenv_holds_exactly_the_test_lock():
    installed = {canonicalize_name(dist.metadata['Name']): dist.version for dist in importlib.metadata.distributions()}
    installed.pop('fleet-cli')  # the repository's own, editable
    assert installed == {name: version for name, (version, _) in lock('requirements-test.lock').items()}


def debian_lock():
    lines = (REPO / 'app/user-api/debian-packages.lock').read_text().splitlines()
    return dict(line.split('=', 1) for line in lines if line and not line.startswith('#'))


def test_the_go_toolchain_is_the_locked_one():
    locked = debian_lock()
    installed = subprocess.run(['dpkg-query', '-W', '-f=${Package}=${Version}\n', *locked], capture_output=True,
                               text=True, check=True).stdout.split()
    assert dict(line.split('=', 1) for line in installed) == locked
    upstream = locked['golang-1.19-go'].split('-')[0]
    for version in ('1.0.0', '1.1.0'):
        built = subprocess.run(['go', 'version', REPO / f'build/user-api-{version}-linux-amd64'], capture_output=True,
                               text=True, check=True).stdout
        assert built.split(': ')[1].strip() == f'go{upstream}', built


def test_the_build_is_reproducible(tmp_path):
    """Built again elsewhere, with a cold Go cache, the binary has the same bytes as build/'s."""
    env = dict(os.environ, GOCACHE=str(tmp_path / 'gocache'))
    target = tmp_path / 'out' / 'user-api-1.0.0-linux-amd64'
    subprocess.run(['make', '--no-print-directory', f'BUILD_DIR={target.parent}', str(target)], cwd=REPO, env=env,
                   capture_output=True, check=True)
    assert target.read_bytes() == (REPO / 'build/user-api-1.0.0-linux-amd64').read_bytes()
    assert (target.parent / f'{target.name}.sha256').read_text() == \
        (REPO / f'build/{target.name}.sha256').read_text()
