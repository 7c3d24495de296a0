"""The drafts' wire profile: tcpcrypt as draft-ietf-tcpinc-tcpcrypt-02 and TCP-ENO as
draft-ietf-tcpinc-tcpeno-03 put it on the wire, the profile the reference C daemon speaks.

Additive to the RFC core (nothing here changes `tcpcrypt/`'s RFC profile); it reuses the core's
public primitives (`suites` for ECDHE, `aead` for AES-GCM, `key_schedule.extract`/`cprf`).

* `eno03`: the ENO option as kind 253 with ExID 0x454E, and the drafts' transcript;
* `handshake`: the P-256/P-521 key format, Init1/Init2, and the key schedule;
* `records`: the drafts' frames (3-byte header, flags byte, 8-byte offset nonce);
* `connection`: one sans-IO endpoint (A or B) over a stream, full key exchange only;
* `endpoint`: that endpoint on a real TCP socket, ENO carried by the kernel program.

docs/protocol.md lists every difference from the RFCs and the evidence for it.
"""
