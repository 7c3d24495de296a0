"""Wire constants of TCP-ENO (RFC 8547) and tcpcrypt (RFC 8548).

Values marked "believed RFC behaviour" could not be checked against the RFC text from this
project's machines; each lives here, in one named constant, and docs/protocol.md lists them.
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
# Project choice from the experimental space for the 2010 design's RSA-exp3-2048 suite.
TEP_TCPCRYPT_RSA_EXP3_2048: Final = 0x30

# --- tcpcrypt key exchange -----------------------------------------------------------------
INIT1_MAGIC: Final = 0x15101A0E
INIT2_MAGIC: Final = 0x097105E0
NONCE_LENGTH: Final = 32
# Believed RFC behaviour: AEAD identifiers are 2 bytes each in Init1/Init2.
AEAD_ID_LENGTH: Final = 2

AEAD_AES_128_GCM: Final = 0x0001
AEAD_AES_256_GCM: Final = 0x0002
AEAD_CHACHA20_POLY1305: Final = 0x0010

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
