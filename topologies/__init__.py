"""Mininet topologies as pure data (Topo subclasses overriding `build`), testable without root.

No Open vSwitch on this machine: hosts are linked directly; a middlebox is a node on the path
(params {"role": "middlebox", "path": "<chain syntax>"}) that the emulation runtime will host
a model in. Server nodes may ask for cores; a request the machine cannot honour is refused.

Interface order convention, which the emulation runtime relies on: a middlebox node's links
are added client side first and its server-side link last, so its last interface faces the
server and every other one faces clients (line: one each; dumbbell's `left`: the N clients,
then `right`; access-paths' `mbK`: `cK`, then the server).
"""
