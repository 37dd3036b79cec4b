#!/usr/bin/env python3
"""A local fleet of Podman containers standing in for VMs: systemd as PID 1, real sshd, host keys checked.

    lab.py up   --name lab --subnet 10.231.0.0/24 --blue 5 --green 5 --lb 1 --publish 8080 --inventory inventories/lab
    lab.py up   --name mol-default --spec platforms.json --inventory .lab/mol-default/inventory
    lab.py down --name lab
    lab.py image

Everything a lab makes carries the label fleet-lab=NAME and lives under .lab/NAME/, so `down` (and the next
`up`, which first clears what a killed run left behind) removes exactly what it made and nothing else.
The base image is kept: it is the cache, tagged with a hash of its recipe.
With --publish PORT, the i-th LB's port 80 is published on 127.0.0.1:PORT+i-1. A lab with an LB and app hosts also
gets a monitoring host, mon1 in group `monitoring` (unless --spec names a host of that group: then that one), which
runs Prometheus scraping every app host's /metrics each second (its URL is in lab.json and in the inventory as
analysis_prometheus_url). Not on an LB: Prometheus keeps its scrape connections open, and a drain tells them from
users' connections only by their address (nginx_lb_drain_ignore_addresses, set in group_vars/all.yml).
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
import urllib.request
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
HOST_MEMORY = "512m"
# The monitoring host runs Prometheus alone, at the default CPU weight (an app host's), never the LBs'.
MONITORING_GROUP = "monitoring"
MONITORING_MEMORY = "256m"
PROMETHEUS_PORT = 9090
PROMETHEUS_WAIT_SECONDS = 60
# Every second, so that an analysis over a canary step of a few seconds has points to compare; a short retention
# keeps it small on a monitoring host of 256 MB.
PROMETHEUS_GLOBAL = {"scrape_interval": "1s", "scrape_timeout": "800ms", "evaluation_interval": "1s"}
PROMETHEUS_ARGS = f"--web.listen-address=:{PROMETHEUS_PORT} --storage.tsdb.retention.time=1h"


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


def lbs(hosts):
    return [host for host, groups in hosts if "lb" in groups]


def published_ports(hosts, publish):
    """{lb host: port}: the i-th LB (in order) on PUBLISH+i-1."""
    return {host: publish + i for i, host in enumerate(lbs(hosts))} if publish else {}


def is_app(groups):
    """An app host is every host in neither lb nor monitoring."""
    return "lb" not in groups and MONITORING_GROUP not in groups


def monitoring(hosts):
    return [host for host, groups in hosts if MONITORING_GROUP in groups]


def with_monitoring(hosts):
    """HOSTS, plus a monitoring host (mon1) when there are an LB and an app host and no host of that group yet."""
    if monitoring(hosts) or not lbs(hosts) or not any(is_app(groups) for _, groups in hosts):
        return hosts
    names = {host for host, _ in hosts}
    name = next(f"mon{i}" for i in range(1, len(hosts) + 2) if f"mon{i}" not in names)
    return [*hosts, (name, [MONITORING_GROUP])]


def prometheus_host(hosts):
    """The first monitoring host, if there is an app host for it to scrape."""
    return monitoring(hosts)[0] if monitoring(hosts) and any(is_app(groups) for _, groups in hosts) else None


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
            "--network", network_name(name), "--ip", str(address), "--systemd=always",
            "--memory", MONITORING_MEMORY if MONITORING_GROUP in groups else HOST_MEMORY, "--cap-add", "SYS_ADMIN"]
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
    """The record of lab NAME when it already runs exactly these hosts, ports and Prometheus, else None."""
    try:
        record = json.loads((STATE_ROOT / name / "lab.json").read_text())
    except (OSError, ValueError):
        return None
    prometheus = prometheus_host(hosts)
    if ([(h["name"], h["groups"]) for h in record["hosts"]] != hosts or record["publish"] != publish
            or record.get("published") != published_ports(hosts, publish)
            or record.get("prometheus") != (prometheus_url(record["hosts"], prometheus) if prometheus else None)):
        return None  # a lab from before `published`, `prometheus` or its monitoring host existed is made again
    if record.get("prometheus") and not prometheus_ready(record["prometheus"]):
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
    hosts = with_monitoring(hosts)
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

    fleet = [{"name": host, "address": str(address), "groups": groups}
             for address, (host, groups) in zip(addresses, hosts)]
    ports = published_ports(hosts, publish)
    prometheus = prometheus_host(hosts)
    # The Prometheus host first: its first scrape comes ~5 s after it starts (Prometheus applies new targets on
    # a fixed 5 s tick), time in which the other hosts boot. (An added mon1 has the lab's last address.)
    order = sorted(fleet, key=lambda host: host["name"] != prometheus)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        known_hosts = list(pool.map(
            lambda host: start_host(name, host["name"], host["groups"], host["address"], image, state,
                                    ports.get(host["name"])),
            order))
    (state / "known_hosts").write_text("".join(known_hosts))
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda host: boot(name, host, state, fleet, prometheus), order))
    url = prometheus_url(fleet, prometheus) if prometheus else None
    if url:
        wait_for_scrapes(url, scrape_targets(fleet)[1])

    record = {"name": name, "subnet": subnet, "hosts": fleet, "publish": publish, "published": ports, "prometheus": url,
              "ssh_key": str(state / "id_ed25519"), "known_hosts": str(state / "known_hosts"),
              "inventory": str(Path(inventory).resolve()) if inventory else None}
    (state / "lab.json").write_text(json.dumps(record, indent=2) + "\n")
    if inventory:
        write_inventory(Path(inventory), record)
    return record


def boot(name, host, state, fleet, prometheus):
    """Waits until HOST answers SSH; then starts Prometheus on it if it is the PROMETHEUS host."""
    wait_for_ssh(host["address"], state)
    if host["name"] == prometheus:
        start_prometheus(f"{name}-{prometheus}", state, fleet)


def scrape_targets(fleet):
    """(job name, targets): every app host's service (not the LBs', not the monitoring host's), as
    lab/group_vars/all.yml defines it."""
    import yaml  # from the project's .venv; only needed here and for the inventory

    settings = yaml.safe_load((LAB_DIR / "group_vars" / "all.yml").read_text())
    # The instance label is then the app host's backend address, as the LB's upstream and access log write it.
    return settings["app_name"], [f"{host['address']}:{settings['app_port']}"
                                  for host in fleet if is_app(host["groups"])]


def start_prometheus(container, state, fleet):
    """Writes Prometheus' settings into CONTAINER and starts it there (it is in the image, disabled)."""
    import yaml

    job, targets = scrape_targets(fleet)
    config = {"global": PROMETHEUS_GLOBAL,
              "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets}]}]}
    files = state / "prometheus"
    files.mkdir()
    (files / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    (files / "default").write_text(f'ARGS="{PROMETHEUS_ARGS}"\n')
    run("podman", "cp", str(files / "prometheus.yml"), f"{container}:/etc/prometheus/prometheus.yml")
    run("podman", "cp", str(files / "default"), f"{container}:/etc/default/prometheus")
    run("podman", "exec", container, "systemctl", "enable", "--now", "--quiet", "prometheus")


def prometheus_url(fleet, on):
    return f"http://{next(host['address'] for host in fleet if host['name'] == on)}:{PROMETHEUS_PORT}"


def prometheus_get(url, path):
    with urllib.request.urlopen(url + path, timeout=2) as response:
        return response.read()


def prometheus_ready(url):
    try:
        prometheus_get(url, "/-/ready")
        return True
    except OSError:
        return False


def wait_for_scrapes(url, targets):
    """Until Prometheus has scraped every target once (up or down: no app is deployed yet)."""
    deadline = time.monotonic() + PROMETHEUS_WAIT_SECONDS
    scraped = set()
    while True:
        try:
            active = json.loads(prometheus_get(url, "/api/v1/targets?state=active"))["data"]["activeTargets"]
            scraped = {target["labels"]["instance"] for target in active if target["health"] != "unknown"}
        except OSError:
            pass  # not listening yet
        if scraped >= set(targets):
            return
        if time.monotonic() > deadline:
            raise LabError(f"{url}: Prometheus has not scraped {sorted(set(targets) - scraped)} "
                           f"after {PROMETHEUS_WAIT_SECONDS}s")
        time.sleep(0.2)


def write_inventory(directory, record):
    """The groups every strategy uses: app (children blue, green) and lb; and monitoring (Prometheus' host)."""
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
            **({"analysis_prometheus_url": record["prometheus"]} if record.get("prometheus") else {}),
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
    # mon1 (group monitoring, running Prometheus) comes on its own with an LB and an app host.
    for group, default in (("blue", 5), ("green", 5), ("lb", 1)):
        start.add_argument(f"--{group}", type=int, default=default, metavar="N", help=f"{group} hosts")
    start.add_argument("--spec", help="JSON list of {name, groups} (Molecule's platforms) instead of counts")
    start.add_argument("--publish", type=int, metavar="PORT",
                       help="publish the i-th lb host's port 80 on 127.0.0.1:PORT+i-1 (lb1 on PORT, lb2 on PORT+1...)")
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
                  + "".join(f", {host} on 127.0.0.1:{port}" for host, port in record["published"].items())
                  + (f", Prometheus on {record['prometheus']}" if record["prometheus"] else "")
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
