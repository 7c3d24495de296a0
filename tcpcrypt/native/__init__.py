"""The C fast path of a connection's set-up (`_fastpath.c`, `aead.c`, `frames.c`: one extension,
built by `make setup`): the key schedule's per-connection derivations, host B's X25519 key
exchange from Init1 to ss[0], the bpf(2) map lookup and update, one call each,
`aead_cipher(kind, key)`, a keyed AEAD for frames (kind 0 AES-GCM, 1 ChaCha20-Poly1305) with
`cryptography`'s encrypt/decrypt(_into) calls on libcrypto's EVP (`tcpcrypt.aead` uses it), and
`frame_sealer` / `frame_opener`, the frame layer's classes with `seal`, `seal_stream` and `feed`
one C call each (`tcpcrypt.frames` builds its FrameSealer/FrameOpener on them).

`session_keys`, `extract`, `b_init1_x25519`, `bpf_lookup`, `bpf_update`, `aead_cipher`,
`frame_sealer` and `frame_opener` are None when the extension is not built or when
TCPCRYPT_PURE_PYTHON is set (non-empty); callers then use the pure-Python reference
(`tcpcrypt.key_schedule`, `tcpcrypt.connection` with `tcpcrypt.init_messages` and
`tcpcrypt.suites`, `cryptography`'s AEAD classes, `tcpcrypt.frames`' Python classes, and the
ctypes calls of `tcpcrypt.kernel.bpf_syscall`), which give the same results (compared by
tests/protocol/test_native_key_schedule.py, tests/protocol/test_native_key_exchange.py,
tests/protocol/test_native_aead.py, tests/protocol/test_native_frames.py and
tests/kernel/test_native_and_pure_peers.py). A missing build is said once, as a
RuntimeWarning, at import.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

SessionKeys = tuple[bytes, bytes, bytes, bytes, bytes | None, bytes | None, bytes | None]

session_keys: Callable[[bytes, int, int, bool], SessionKeys] | None = None
extract: Callable[[bytes, bytes], bytes] | None = None
b_init1_x25519: Callable[[bytearray, bytes, Callable[[int], bytes], bytes],
                         tuple[int, int, bytes, bytes] | None] | None = None
bpf_lookup: Callable[[int, bytes, int], bytes | None] | None = None
bpf_update: Callable[[int, bytes, bytes, int], None] | None = None
aead_cipher: Callable[[int, bytes], Any] | None = None
frame_sealer: type[Any] | None = None
frame_opener: type[Any] | None = None
unavailable_reason: str | None = None

if os.environ.get("TCPCRYPT_PURE_PYTHON"):
    unavailable_reason = "TCPCRYPT_PURE_PYTHON is set"
else:
    try:
        from tcpcrypt.native import _fastpath
    except ImportError as error:
        unavailable_reason = f"not built ({error})"
        warnings.warn("tcpcrypt: the C fast path (tcpcrypt.native._fastpath) is not built; "
                      "using the pure-Python code (run `make setup` with gcc, python3-dev and "
                      "libssl-dev installed)", RuntimeWarning, stacklevel=2)
    else:
        session_keys = _fastpath.session_keys
        extract = _fastpath.extract
        b_init1_x25519 = _fastpath.b_init1_x25519
        bpf_lookup = _fastpath.bpf_lookup
        bpf_update = _fastpath.bpf_update
        aead_cipher = _fastpath.aead_cipher
        frame_sealer = _fastpath.FrameSealer
        frame_opener = _fastpath.FrameOpener
