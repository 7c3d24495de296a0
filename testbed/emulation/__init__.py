"""The emulation runtime: Mininet networks without Open vSwitch, torn down in full every time.

`network.emulated_network(topo)` builds and starts a network (hosts linked directly, no
controller, no switches), records what it created in a state file, and removes everything in a
`finally`; `cleanup.clean_leftovers()` (behind `testbed clean`) removes what a killed run left.
"""
