#!/usr/bin/env bash
# Installs everything the project needs on Debian 12, as root: the Debian packages (the Go toolchain at the
# versions of app/user-api/debian-packages.lock), then the virtualenv .venv from requirements-test.lock, every
# package at its locked version and hash. Idempotent: a second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(podman runc containernetworking-plugins iptables uidmap debootstrap nginx-light
          openssh-client curl git make python3-venv)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
mapfile -t locked < <(grep -Ev '^(#|$)' app/user-api/debian-packages.lock)
for pinned in "${locked[@]}"; do
  [[ "$(dpkg-query -W -f='${Status} ${Version}' "${pinned%%=*}" 2>/dev/null)" == "install ok installed ${pinned#*=}" ]] ||
    missing+=("$pinned")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --allow-downgrades \
    "${missing[@]}" >/dev/null
  # The host's nginx binary is only for tests in temporary prefixes: no system-wide nginx on port 80.
  if [[ " ${missing[*]} " == *" nginx-light "* && -d /run/systemd/system ]]; then
    systemctl disable --now nginx
  fi
fi

# A new .venv whenever the lock changes, so it holds exactly the locked packages and nothing left from before.
wanted=$(sha256sum requirements-test.lock | cut -d' ' -f1)
if [[ "$(cat .venv/.requirements 2>/dev/null)" != "$wanted" ]]; then
  echo "setup: installing the locked Python packages into a new .venv"
  rm -rf .venv
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements-test.lock
  # The fleet command (tools/fleet_cli), editable: its code is read from the repository. setuptools says
  # "Editable installation." with a page of advice every time; that one notice is not printed.
  PYTHONWARNINGS="ignore:Editable installation.:UserWarning" .venv/bin/pip install -q --disable-pip-version-check \
    --no-deps --no-build-isolation -e tools/fleet_cli
  echo "$wanted" > .venv/.requirements
fi

# The repository is the collection fleet.deployer; ansible.cfg's collections_path finds it through this link.
mkdir -p .collections/ansible_collections/fleet
ln -sfn ../../.. .collections/ansible_collections/fleet/deployer
