#!/usr/bin/env python3
"""A local fleet of Podman containers standing in for VMs: systemd as PID 1, real sshd, host keys checked.

    lab.py up   --name lab --subnet 10.231.0.0/24 --blue 5 --green 5 --lb 1 --publish 8080 --inventory inventories/lab
    lab.py up   --name mol-default --spec platforms.json --inventory .lab/mol-default/inventory
    lab.py down --name lab
    lab.py image

Everything a lab makes carries the label fleet-lab=NAME and lives under .lab/NAME/, so `down` (and the next
`up`, which first clears what a killed run left behind) removes exactly what it made and nothing else.
The base image is kept: it is the cache, tagged with a hash of its recipe.
"""

import argparse
import concurrent.futures
import hashlib
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

LAB_DIR = Path(__file__).resolve().parent
PROJECT_DIR = LAB_DIR.parent
STATE_ROOT = PROJECT_DIR / ".lab"
IMAGE_REPO = "localhost/fleet-lab-base"
FIRST_HOST_OFFSET = 10  # .1 is the gateway
SSH_WAIT_SECONDS = 120
INOTIFY_INSTANCES = 1024  # every systemd takes several; the default 128 hangs boots beyond ~20 hosts
# A real LB has cores of its own; here it shares two with every app host. Its CPU weight (used only when the
# cores are busy) is that of a hundred app hosts, so a deploy's burst on the app hosts cannot starve it.
LB_CPU_SHARES = 102400
PODMAN_ENV = dict(os.environ, CONTAINERS_CONF=str(LAB_DIR / "containers.conf"))


class LabError(Exception):
    pass


def run(*args, check=True):
    result = subprocess.run(args, env=PODMAN_ENV, text=True, capture_output=True, check=False)
    if check and result.returncode != 0:
        raise LabError(f"`{' '.join(args)}` failed: {result.stderr.strip()}")
    return result


def network_name(name):
    return f"fleet-{name}"


def image_tag():
    recipe = (LAB_DIR / "base-image.sh").read_bytes()
    return f"{IMAGE_REPO}:{hashlib.sha256(recipe).hexdigest()[:12]}"


def ensure_image():
    tag = image_tag()
    if run("podman", "image", "exists", tag, check=False).returncode != 0:
        print(f"building base image {tag} (debootstrap, about a minute)", flush=True)
        subprocess.run([str(LAB_DIR / "base-image.sh"), tag], env=PODMAN_ENV, check=True)
        outdated = run("podman", "images", "--format", "{{.Repository}}:{{.Tag}}", IMAGE_REPO).stdout.split()
        for old in set(outdated) - {tag}:
            run("podman", "rmi", old, check=False)  # still in use by a running lab: kept, harmless
    return tag


def hosts_from_counts(counts):
    """[('blue1', ['blue']), ...] for --blue/--green/--lb counts."""
    return [(f"{group}{i}", [group]) for group, count in counts for i in range(1, count + 1)]


def hosts_from_spec(path):
    """Molecule's platforms: [{"name": ..., "groups": [...]}, ...]."""
    platforms = json.loads(Path(path).read_text())
    return [(p["name"], list(p.get("groups", []))) for p in platforms]


def pick_subnet(name):
    """A /24 under 10.231.0.0/16 that no other Podman network uses, the same one for a name on every run."""
    networks = json.loads(run("podman", "network", "ls", "--format", "json").stdout)
    used = [ipaddress.ip_network(subnet["subnet"]) for network in networks if network["name"] != network_name(name)
            for subnet in network.get("subnets") or []]
    start = zlib.crc32(name.encode()) % 250
    for offset in range(250):
        candidate = ipaddress.ip_network(f"10.231.{(start + offset) % 250}.0/24")
        if not any(candidate.overlaps(other) for other in used):
            return str(candidate)
    raise LabError("no free /24 left in 10.231.0.0/16; remove unused Podman networks")


def raise_inotify_limit():
    limit = Path("/proc/sys/fs/inotify/max_user_instances")
    if int(limit.read_text()) < INOTIFY_INSTANCES:
        limit.write_text(f"{INOTIFY_INSTANCES}\n")


def clear(name):
    """Removes every container and the network of lab NAME, and its state folder."""
    label = f"label=fleet-lab={name}"
    ids = run("podman", "ps", "-aq", "--filter", label).stdout.split()
    if ids:
        run("podman", "rm", "-f", "-t", "0", *ids)
    networks = run("podman", "network", "ls", "-q", "--filter", label).stdout.split()
    if networks:
        run("podman", "network", "rm", "-f", *networks)
    state = STATE_ROOT / name
    inventory = _recorded_inventory(state)
    if inventory and inventory.is_dir():
        shutil.rmtree(inventory)
    shutil.rmtree(state, ignore_errors=True)
    if STATE_ROOT.is_dir() and not any(STATE_ROOT.iterdir()):
        STATE_ROOT.rmdir()


def _recorded_inventory(state):
    try:
        return Path(json.loads((state / "lab.json").read_text())["inventory"])
    except (OSError, KeyError, TypeError, ValueError):
        return None


def keygen(path, comment):
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path))


def start_host(name, host, groups, address, image, state, publish):
    """Creates one container, gives it its own host key and the lab's login key, and boots it."""
    container = f"{name}-{host}"
    # SYS_ADMIN: systemd builds a unit's sandbox (ProtectSystem=, PrivateTmp=...) in a mount namespace, as on
    # a VM; without it, it starts the unit without the sandbox and says nothing.
    args = ["podman", "create", "--name", container, "--hostname", host, "--label", f"fleet-lab={name}",
            "--network", network_name(name), "--ip", str(address), "--systemd=always", "--memory", "512m",
            "--cap-add", "SYS_ADMIN"]
    if publish:
        args += ["--publish", f"127.0.0.1:{publish}:80"]
    if "lb" in groups:
        args += ["--cpu-shares", str(LB_CPU_SHARES)]
    run(*args, image, "/sbin/init")
    hostkey = state / "hostkeys" / host
    keygen(hostkey, f"{host}@{name}")
    run("podman", "cp", str(hostkey), f"{container}:/etc/ssh/ssh_host_ed25519_key")
    run("podman", "cp", f"{hostkey}.pub", f"{container}:/etc/ssh/ssh_host_ed25519_key.pub")
    run("podman", "cp", str(state / "id_ed25519.pub"), f"{container}:/root/.ssh/authorized_keys")
    run("podman", "start", container)
    key_type, key = Path(f"{hostkey}.pub").read_text().split()[:2]
    return f"{address} {key_type} {key}\n"


def wait_for_ssh(address, state):
    """Logs in for real (host key checked) until sshd inside the container answers."""
    deadline = time.monotonic() + SSH_WAIT_SECONDS
    while True:
        result = run("ssh", *ssh_options(state), f"root@{address}", "systemctl is-system-running --wait",
                     check=False)
        if result.returncode == 0 or result.stdout.strip() in ("running", "degraded"):
            return result.stdout.strip()
        if time.monotonic() > deadline:
            raise LabError(f"{address}: no SSH login after {SSH_WAIT_SECONDS}s: {result.stderr.strip()}")
        time.sleep(0.5)


def ssh_options(state):
    return ["-i", str(state / "id_ed25519"), "-o", f"UserKnownHostsFile={state / 'known_hosts'}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5"]


def running(name, hosts, publish):
    """The record of lab NAME when it already runs exactly these hosts, else None."""
    try:
        record = json.loads((STATE_ROOT / name / "lab.json").read_text())
    except (OSError, ValueError):
        return None
    if [(h["name"], h["groups"]) for h in record["hosts"]] != hosts or record["publish"] != publish:
        return None
    up_now = run("podman", "ps", "-q", "--filter", f"label=fleet-lab={name}", "--filter", "status=running")
    if len(up_now.stdout.split()) != len(hosts):
        return None
    state = STATE_ROOT / name
    for host in record["hosts"]:
        wait_for_ssh(host["address"], state)
    return record


def up(name, subnet, hosts, publish, inventory, reuse=False):
    if not hosts:
        raise LabError("no hosts asked for: give counts (--blue/--green/--lb) or --spec")
    record = running(name, hosts, publish) if reuse else None
    if record:
        if inventory:
            write_inventory(Path(inventory), record)
        return record
    subnet = subnet or pick_subnet(name)
    network = ipaddress.ip_network(subnet)
    addresses = list(network.hosts())[FIRST_HOST_OFFSET - 1:]
    if len(hosts) > len(addresses):
        raise LabError(f"subnet {subnet} has room for {len(addresses)} hosts, not {len(hosts)}")
    raise_inotify_limit()
    image = ensure_image()
    clear(name)
    state = STATE_ROOT / name
    (state / "hostkeys").mkdir(parents=True)
    keygen(state / "id_ed25519", f"ansible@{name}")
    run("podman", "network", "create", "--subnet", subnet, "--label", f"fleet-lab={name}", network_name(name))

    publish_on = next((host for host, groups in hosts if "lb" in groups), None) if publish else None
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        known_hosts = list(pool.map(
            lambda item: start_host(name, *item[1], item[0], image, state,
                                    publish if item[1][0] == publish_on else None),
            zip(addresses, hosts)))
    (state / "known_hosts").write_text("".join(known_hosts))
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda address: wait_for_ssh(address, state), addresses[:len(hosts)]))

    fleet = [{"name": host, "address": str(address), "groups": groups}
             for address, (host, groups) in zip(addresses, hosts)]
    record = {"name": name, "subnet": subnet, "hosts": fleet, "publish": publish,
              "ssh_key": str(state / "id_ed25519"), "known_hosts": str(state / "known_hosts"),
              "inventory": str(Path(inventory).resolve()) if inventory else None}
    (state / "lab.json").write_text(json.dumps(record, indent=2) + "\n")
    if inventory:
        write_inventory(Path(inventory), record)
    return record


def write_inventory(directory, record):
    """The groups every strategy uses: app (children blue, green) and lb."""
    import yaml  # from the project's .venv; only needed here

    groups = {}
    for host in record["hosts"]:
        for group in host["groups"]:
            groups.setdefault(group, {})[host["name"]] = {"ansible_host": host["address"]}
    colours = {colour: {"hosts": groups.pop(colour)} for colour in ("blue", "green") if colour in groups}
    app = {"hosts": groups.pop("app")} if "app" in groups else {}
    if colours:
        app["children"] = colours
    children = {"app": app, **{group: {"hosts": members} for group, members in groups.items()}}
    inventory = {"all": {
        "vars": {
            "ansible_user": "root",
            "ansible_ssh_private_key_file": record["ssh_key"],
            "ansible_ssh_common_args":
                f"-o UserKnownHostsFile={record['known_hosts']} -o StrictHostKeyChecking=yes",
        },
        "children": children,
    }}
    directory.mkdir(parents=True, exist_ok=True)
    group_vars = directory / "group_vars"
    if not group_vars.is_symlink():
        group_vars.symlink_to(os.path.relpath(LAB_DIR / "group_vars", directory))
    header = f"# Written by `lab/lab.py up --name {record['name']}`; removed by `lab.py down`.\n"
    (directory / "hosts.yml").write_text(header + yaml.safe_dump(inventory, sort_keys=False))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="(re)create the fleet")
    start.add_argument("--name", default="lab")
    start.add_argument("--subnet", help="the lab network's subnet (default: a free /24 of 10.231.0.0/16)")
    for group, default in (("blue", 5), ("green", 5), ("lb", 1)):
        start.add_argument(f"--{group}", type=int, default=default, metavar="N", help=f"{group} hosts")
    start.add_argument("--spec", help="JSON list of {name, groups} (Molecule's platforms) instead of counts")
    start.add_argument("--publish", type=int, help="publish the first lb host's port 80 on 127.0.0.1:PORT")
    start.add_argument("--inventory", help="write an Ansible inventory into this folder")
    start.add_argument("--reuse", action="store_true", help="keep the lab if it already runs these hosts")
    stop = commands.add_parser("down", help="remove every container, network and file of the lab")
    stop.add_argument("--name", default="lab")
    commands.add_parser("image", help="build the base image unless the cached one is current")
    args = parser.parse_args(argv)

    try:
        if args.command == "up":
            hosts = hosts_from_spec(args.spec) if args.spec else hosts_from_counts(
                (("blue", args.blue), ("green", args.green), ("lb", args.lb)))
            started = time.monotonic()
            record = up(args.name, args.subnet, hosts, args.publish, args.inventory, args.reuse)
            print(f"lab {args.name}: {len(record['hosts'])} hosts up in {time.monotonic() - started:.1f}s"
                  + (f", inventory in {args.inventory}" if args.inventory else ""))
        elif args.command == "down":
            clear(args.name)
            print(f"lab {args.name}: removed")
        else:
            print(ensure_image())
    except LabError as error:
        sys.exit(f"lab: {error}")


if __name__ == "__main__":
    main()
