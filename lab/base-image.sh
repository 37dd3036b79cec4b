#!/usr/bin/env bash
# Builds the lab's base image: Debian bookworm booting systemd, with sshd and python3 for Ansible, nginx-light for
# LB hosts and prometheus for the monitoring host. No registry is reachable, so it is debootstrapped and piped
# into `podman import`.
# lab.py tags the image with a hash of this file, so editing the recipe triggers a rebuild.
# Usage: base-image.sh IMAGE_TAG
set -euo pipefail
tag=${1:?usage: base-image.sh IMAGE_TAG}
mirror=${LAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=systemd-sysv,dbus,libpam-systemd,openssh-server,python3,python3-apt,nginx-light,prometheus,iproute2,procps,curl
# debootstrap follows Depends only, never Recommends: prometheus comes without its node exporter.

rootfs=$(mktemp -d /var/tmp/fleet-lab-rootfs.XXXXXX)
trap 'rm -rf "$rootfs" "$rootfs.log"' EXIT

debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "$mirror" > "$rootfs.log" || {
  tail -n 30 "$rootfs.log" >&2; exit 1; }

# Each container gets its own host keys and machine id at start; nothing host-specific is baked in.
rm -f "$rootfs"/etc/ssh/ssh_host_*
: > "$rootfs/etc/machine-id"
# nginx starts only where the nginx_lb role enables it, prometheus only where lab.py does (the monitoring host).
rm -f "$rootfs"/etc/systemd/system/multi-user.target.wants/{nginx,prometheus}.service
# Lingering root keeps user@0 alive, else every SSH logout makes the next login stall ~2 min.
mkdir -p "$rootfs/var/lib/systemd/linger"
touch "$rootfs/var/lib/systemd/linger/root"
# Units that have nothing to do in a container and only slow the boot.
for unit in getty@tty1.service console-getty.service systemd-udevd.service systemd-udev-trigger.service \
            e2scrub_reap.service apt-daily.timer apt-daily-upgrade.timer; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
printf 'UseDNS no\nGSSAPIAuthentication no\n' > "$rootfs/etc/ssh/sshd_config.d/lab.conf"
# Prometheus' UI loads one file of moment-timezone; its per-zone data (212 MB) would nearly double the image.
rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/usr/share/javascript/moment-timezone/data

tar -C "$rootfs" -c . | podman import \
  --change 'CMD=["/sbin/init"]' --change 'STOPSIGNAL=SIGRTMIN+3' \
  --quiet --message "fleet lab base image" - "$tag" > /dev/null
