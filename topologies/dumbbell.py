"""dumbbell: N clients, one server, a shared bottleneck between two middlebox nodes."""

from __future__ import annotations

from mininet.topo import Topo

from topologies.validation import TopologyConfigError, checked_cores, checked_path


class DumbbellTopo(Topo):  # type: ignore[misc]
    def build(self, clients: int = 2, bottleneck: str = "passthrough",
              server_cores: int = 1) -> None:
        if not 1 <= clients <= 64:
            raise TopologyConfigError(f"clients must be 1..64, got {clients}")
        left = self.addHost("left", role="middlebox", path="passthrough")
        right = self.addHost("right", role="middlebox", path=checked_path(bottleneck))
        for index in range(1, clients + 1):
            self.addLink(self.addHost(f"c{index}"), left)
        self.addLink(left, right)
        self.addLink(right, self.addHost("server", cores=str(checked_cores(server_cores))))
