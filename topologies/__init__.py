"""Mininet topologies as pure data (Topo subclasses overriding `build`), testable without root.

No Open vSwitch on this machine: hosts are linked directly; a middlebox is a node on the path
(params {"role": "middlebox", "path": "<chain syntax>"}) that the emulation runtime will host
a model in. Server nodes may ask for cores; a request the machine cannot honour is refused.
"""
