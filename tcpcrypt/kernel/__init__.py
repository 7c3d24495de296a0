"""TCP-ENO in the kernel (a BPF sock_ops program) and userspace's API to it; see docs/kernel.md.

`loader` builds, loads, attaches and removes the program; `KernelEno` (in `api`) opts sockets
in and reads each socket's negotiation by fd; `records` holds the map layouts.
"""

from tcpcrypt.kernel.api import KernelEno, netns_cookie
from tcpcrypt.kernel.loader import KernelUnavailable
from tcpcrypt.kernel.records import Negotiation

__all__ = ["KernelEno", "KernelUnavailable", "Negotiation", "netns_cookie"]
