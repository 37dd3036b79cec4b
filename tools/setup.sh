#!/usr/bin/env bash
# Installs everything the project needs on Debian 12, as root: the Debian packages, then the Python
# virtualenv .venv from the pinned requirements. Idempotent: a second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(podman runc containernetworking-plugins iptables uidmap debootstrap golang-go nginx-light
          openssh-client curl git make python3-venv)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The host's nginx binary is only for tests in temporary prefixes: no system-wide nginx on port 80.
  if [[ " ${missing[*]} " == *" nginx-light "* && -d /run/systemd/system ]]; then
    systemctl disable --now nginx
  fi
fi

wanted=$(cat requirements.txt requirements-test.txt | sha256sum | cut -d' ' -f1)
if [[ "$(cat .venv/.requirements 2>/dev/null)" != "$wanted" ]]; then
  echo "setup: installing the Python packages into .venv"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-test.txt
  echo "$wanted" > .venv/.requirements
fi

# The repository is the collection fleet.deployer; ansible.cfg's collections_path finds it through this link.
mkdir -p .collections/ansible_collections/fleet
ln -sfn ../../.. .collections/ansible_collections/fleet/deployer

# The fleet command (tools/fleet_cli), editable: its code is read from the repository.
if [[ ! -x .venv/bin/fleet ]]; then
  .venv/bin/pip install -q --disable-pip-version-check --no-deps -e tools/fleet_cli
fi
