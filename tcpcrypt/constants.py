"""Wire constants of TCP-ENO (RFC 8547) and tcpcrypt (RFC 8548).

The RFC text could not be read from this project's machines; each value that was in question
was settled on the evidence of public implementations, recorded in docs/protocol.md ("Settled
on evidence"), and lives here in one named constant.
"""

from __future__ import annotations

from typing import Final

# --- TCP-ENO -------------------------------------------------------------------------------
ENO_OPTION_KIND: Final = 69
# The drafts' experimental form: option 253 with ExID 0x454E (accepted on receipt only).
EXPERIMENTAL_OPTION_KIND: Final = 253
ENO_EXID: Final = 0x454E

# TEP identifiers (7 bits; the high bit of a suboption byte is the v flag).
TEP_EXPERIMENTAL: Final = 0x20
TEP_TCPCRYPT_ECDHE_P256: Final = 0x21
TEP_TCPCRYPT_ECDHE_P521: Final = 0x22
TEP_TCPCRYPT_ECDHE_CURVE25519: Final = 0x23
TEP_TCPCRYPT_ECDHE_CURVE448: Final = 0x24
# The 2010 design's RSA-exp3-2048 suite is not a registered TEP: it takes the one identifier
# TCP-ENO sets aside for experiments (0x30 was unassigned, and TCP-Use-TLS drafts used it).
TEP_TCPCRYPT_RSA_EXP3_2048: Final = TEP_EXPERIMENTAL

# --- tcpcrypt key exchange -----------------------------------------------------------------
INIT1_MAGIC: Final = 0x15101A0E
INIT2_MAGIC: Final = 0x097105E0
NONCE_LENGTH: Final = 32
# AEAD identifiers are one byte each in Init1 and Init2 (settled on evidence, docs/protocol.md).
AEAD_ID_LENGTH: Final = 1

AEAD_AES_128_GCM: Final = 0x01
AEAD_AES_256_GCM: Final = 0x02
AEAD_CHACHA20_POLY1305: Final = 0x10

# CPRF constants (the single info byte of HKDF-Expand).
CONST_NEXTK: Final = 0x01
CONST_SESSID: Final = 0x02
CONST_REKEY: Final = 0x03
CONST_KEY_A: Final = 0x04
CONST_KEY_B: Final = 0x05
CONST_RESUME: Final = 0x06

RESUME_MATERIAL_LENGTH: Final = 18
RESUMPTION_ID_LENGTH: Final = 9
# K_LEN of every tcpcrypt suite: the length of ss[i], mk[j] and the session ID after its TEP byte.
SECRET_LENGTH: Final = 32

# --- frames --------------------------------------------------------------------------------
FRAME_NONCE_MAGIC: Final = 0x44415441
FRAME_LENGTH_FIELD: Final = 2
AEAD_TAG_LENGTH: Final = 16
CONTROL_REKEY: Final = 0x01
# The 2-byte length field bounds a frame's ciphertext (control byte + data + tag).
MAX_FRAME_CIPHERTEXT: Final = 0xFFFF
