#!/usr/bin/env bash
# `make sanity`: build the collection tarball, install it into a scratch ansible_collections tree and run
# ansible-test sanity there, so the check covers exactly what users get (galaxy.yml's build_ignore applied).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
venv=$repo/.venv/bin
scratch=$repo/.cache
tree=$scratch/sanity/ansible_collections/fleet/deployer

# The repository's ansible.cfg also puts fleet.deployer on the collections path; the check must see only the copy.
unset ANSIBLE_CONFIG ANSIBLE_COLLECTIONS_PATH
# ansible-test --local looks up the --python version on PATH: the virtualenv's, which has ansible-core.
export PATH=$venv:$PATH

rm -rf "$scratch/collection" "$scratch/sanity"
"$venv/ansible-galaxy" collection build --output-path "$scratch/collection" .
ANSIBLE_COLLECTIONS_PATH=$scratch/sanity "$venv/ansible-galaxy" collection install \
  -p "$scratch/sanity" "$scratch"/collection/fleet-deployer-*.tar.gz

python_version=$("$venv/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
pip_version=$("$venv/python" -c 'import types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version="'"$python_version"'"))["pip"])')
# ansible-test reads this cache path before it tries to download get-pip; a real script there is left alone.
get_pip=$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py
if [[ ! -e $get_pip ]]; then
  mkdir -p "$(dirname "$get_pip")"
  cp tools/get_pip_standin.py "$get_pip"
fi

cd "$tree"
# ansible-test lists a collection's files with git when it sits in a work tree; in this repo's, .cache/ is ignored
# and it would find nothing to check. A repository of its own makes every installed file an untracked one it checks.
git init --quiet .
"$venv/ansible-test" sanity --local --python "$python_version" "$@"
