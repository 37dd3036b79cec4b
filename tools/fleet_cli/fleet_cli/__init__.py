"""The `fleet` command: runs the fleet.deployer playbooks through ansible-runner for CI."""
