"""tcpcrypt: TCP-ENO negotiation (RFC 8547) and the tcpcrypt protocol (RFC 8548), sans-IO.

The protocol modules here never open sockets, read clocks or draw global randomness: time and
random bytes are passed in by the caller, so that every run can be replayed. I/O lives at the
edges: the daemon (`tcpcrypt.daemon`), the control client (`tcpcrypt.control`), the in-band
socket shim (`tcpcrypt.inband`) and the authentication library over connected sockets
(`tcpcrypt.auth`).
"""
