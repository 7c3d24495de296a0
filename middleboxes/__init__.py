"""Middlebox models: one class each, one hook (packet, direction, now) -> actions, no I/O.

The same model runs in the emulation engines (real packets in a Mininet node) and in the
simulator. `registry.parse_chain("strip-options(on=syn),link(delay_ms=10)")` builds models
from the command-line syntax; see docs/middleboxes.md.
"""
