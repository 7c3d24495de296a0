"""IPv4 and TCP headers over raw bytes, shared by tcpcryptd and the middlebox models.

One header per module (`ipv4`, `tcp`), TCP options in `tcp_options`, the Internet checksum in
`checksum`. Parsing is strict: a malformed packet raises `MalformedPacket` with a reason, never
an IndexError. Fixing checksums is an explicit step (`tcp.fix_checksums`).
"""
