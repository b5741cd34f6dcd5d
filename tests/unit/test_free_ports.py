"""Ports for the servers tests and the benchmark start (deploy/procs.py)."""

from __future__ import annotations

from pathlib import Path

from deploy.procs import free_ports
from deploy.stack.runner import port_taken


def test_free_ports_are_distinct_bindable_in_a_run_and_below_the_ephemeral_range():
    ephemeral_start = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(20):
        ports = free_ports(7, consecutive=2)
        assert len(set(ports)) == 7
        assert ports[1] == ports[0] + 1
        assert all(1024 <= port < ephemeral_start for port in ports)
        assert not any(port_taken("127.0.0.1", port) for port in ports)
