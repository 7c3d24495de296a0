"""line: a client, a chain of middlebox nodes, a server."""

from __future__ import annotations

from mininet.topo import Topo

from topologies.validation import TopologyConfigError, checked_cores, checked_path


class LineTopo(Topo):  # type: ignore[misc]
    """client - mb1 - ... - mbN - server; each middlebox node carries its chain."""

    def build(self, paths: tuple[str, ...] = (), server_cores: int = 1) -> None:
        if len(paths) > 8:
            raise TopologyConfigError("at most 8 middlebox nodes on a line")
        client = self.addHost("client")
        server = self.addHost("server", cores=str(checked_cores(server_cores)))
        previous = client
        for index, path in enumerate(paths, start=1):
            node = self.addHost(f"mb{index}", role="middlebox", path=checked_path(path))
            self.addLink(previous, node)
            previous = node
        self.addLink(previous, server)
