/* What the parts of tcpcrypt.native._fastpath share: _fastpath.c (the module, the key
 * schedule, B's X25519 exchange, the bpf(2) calls), aead.c (the keyed AEAD type) and
 * frames.c (FrameSealer and FrameOpener on it). One extension, built from the three. */
#ifndef TCPCRYPT_FASTPATH_H
#define TCPCRYPT_FASTPATH_H
#define PY_SSIZE_T_CLEAN
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init & co: no per-call algorithm fetch */
#include <Python.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <limits.h>
#include <linux/bpf.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define AEAD_NONCE_LENGTH 12
#define AEAD_TAG_LENGTH 16

typedef struct {
    PyObject_HEAD
    EVP_CIPHER_CTX *seal; /* keyed for encryption on first use */
    EVP_CIPHER_CTX *open; /* keyed for decryption on first use */
    const EVP_CIPHER *cipher;
    int gcm;                /* AES-GCM: other nonce lengths allowed */
    int nonce_lengths[2];   /* the open and seal contexts' current nonce lengths */
    unsigned char key[32];
    int key_length;
} AeadObject;

/* Big-endian 32-bit fields (Init messages, frame nonces) */
static inline unsigned long read_be32(const unsigned char *bytes) {
    return ((unsigned long)bytes[0] << 24) | ((unsigned long)bytes[1] << 16) |
           ((unsigned long)bytes[2] << 8) | (unsigned long)bytes[3];
}

static inline void write_be32(unsigned char *bytes, unsigned long value) {
    bytes[0] = (unsigned char)(value >> 24);
    bytes[1] = (unsigned char)(value >> 16);
    bytes[2] = (unsigned char)(value >> 8);
    bytes[3] = (unsigned char)value;
}

extern PyTypeObject AeadType, FrameSealerType, FrameOpenerType;

/* aead_cipher(kind, key): a keyed AEAD object (aead.c) */
PyObject *aead_cipher(PyObject *module, PyObject *args);
/* The object's context of one direction, keyed on first use; NULL with an exception. */
EVP_CIPHER_CTX *aead_keyed(AeadObject *self, int encrypting);

#endif
