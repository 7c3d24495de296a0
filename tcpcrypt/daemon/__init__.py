"""tcpcryptd: transparent tcpcrypt for unmodified applications (see docs/daemon.md)."""
