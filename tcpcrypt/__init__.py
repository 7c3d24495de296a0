"""tcpcrypt: TCP-ENO negotiation (RFC 8547) and the tcpcrypt protocol (RFC 8548), sans-IO.

The protocol modules here never open sockets, read clocks or draw global randomness: time and
random bytes are passed in by the caller, so that every run can be replayed. Only the daemon
(`tcpcrypt.daemon`) does I/O.
"""
