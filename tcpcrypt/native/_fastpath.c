/* The tcpcrypt key schedule's per-connection derivations (RFC 8548) in one call each.
 *
 * Every CPRF the protocol uses outputs at most 32 bytes, so each is one HMAC-SHA256 of the
 * one-byte constant followed by 0x01 (HKDF-Expand's first block). HMAC is built here on
 * libcrypto's SHA-256 block functions: the pads of a key are hashed once and the two
 * states reused for every CPRF under that key (ss[i] keys three of them, mk[0] two).
 *
 * session_keys(ss, tep, key_length, with_next) derives, from ss[i]:
 *   session ID = tep | CPRF(ss, SESSID, 32), mk[0] = CPRF(ss, REKEY, 32),
 *   k_ab[0] = CPRF(mk[0], KEY_A, L), k_ba[0] = CPRF(mk[0], KEY_B, L),
 *   and when with_next: ss[i+1] = CPRF(ss, NEXTK, 32) and its resumption identifiers
 *   (CPRF(ss[i+1], RESUME, 18): A's the first 9 bytes, B's the last 9).
 * extract(salt, ikm) is HKDF-Extract (HMAC-SHA256 keyed by the salt).
 * b_init1_x25519(buffer, our_aead_ids, random, transcript) is host B's X25519 key exchange
 * from a whole, well-formed Init1 at the front of `buffer`: the AEAD chosen (the first of
 * `our_aead_ids` that A offered), B's private key and N_B drawn by calling random(32) twice
 * (in that order, as the Python path does), PK_B and ES from `cryptography`'s X25519 key
 * objects (see x25519_respond for why not libcrypto's EVP), Init2, and
 * ss[0] = Extract(N_A, transcript | Init1 | Init2 | ES). It returns
 * (bytes used, AEAD id, Init2, ss[0]), or None for anything else (incomplete, malformed, no
 * common AEAD, a public key the library refuses, an all-zero ES): the caller then runs the
 * Python path on the same bytes, which says what is wrong. It never decides an error.
 * bpf_lookup(map_fd, key, value_size) and bpf_update(map_fd, key, value, flags) are the two
 * bpf(2) map calls a connection makes (its negotiation record, A's opt-in, B's resumption
 * entry) without ctypes' per-call buffers; tcpcrypt/kernel/bpf_syscall.py is the reference.
 * The pure-Python module tcpcrypt/key_schedule.py is the reference; the tests compare both.
 */
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

#define HASH_LENGTH 32
#define BLOCK_LENGTH 64
#define CONST_NEXTK 0x01
#define CONST_SESSID 0x02
#define CONST_REKEY 0x03
#define CONST_KEY_A 0x04
#define CONST_KEY_B 0x05
#define CONST_RESUME 0x06
#define RESUME_MATERIAL_LENGTH 18
#define RESUMPTION_ID_LENGTH 9

typedef struct {
    SHA256_CTX inner; /* state after the key XOR ipad block */
    SHA256_CTX outer; /* state after the key XOR opad block */
} hmac_key;

static void hmac_key_init(hmac_key *key, const unsigned char *secret, size_t length) {
    unsigned char block[BLOCK_LENGTH];
    unsigned char hashed[HASH_LENGTH];
    memset(block, 0, sizeof block);
    if (length > BLOCK_LENGTH) {
        SHA256(secret, length, hashed);
        memcpy(block, hashed, HASH_LENGTH);
    } else if (length > 0) {
        memcpy(block, secret, length);
    }
    for (size_t i = 0; i < BLOCK_LENGTH; i++) block[i] ^= 0x36;
    SHA256_Init(&key->inner);
    SHA256_Update(&key->inner, block, BLOCK_LENGTH);
    for (size_t i = 0; i < BLOCK_LENGTH; i++) block[i] ^= 0x36 ^ 0x5c;
    SHA256_Init(&key->outer);
    SHA256_Update(&key->outer, block, BLOCK_LENGTH);
    OPENSSL_cleanse(block, sizeof block);
    OPENSSL_cleanse(hashed, sizeof hashed);
}

static void hmac_message(const hmac_key *key, const unsigned char *message, size_t length,
                         unsigned char out[HASH_LENGTH]) {
    SHA256_CTX context = key->inner;
    unsigned char inner[HASH_LENGTH];
    SHA256_Update(&context, message, length);
    SHA256_Final(inner, &context);
    context = key->outer;
    SHA256_Update(&context, inner, HASH_LENGTH);
    SHA256_Final(out, &context);
    OPENSSL_cleanse(inner, sizeof inner);
    OPENSSL_cleanse(&context, sizeof context);
}

/* CPRF(key, constant, <= 32): T(1) of HKDF-Expand with the one-byte info `constant`. */
static void cprf_block(const hmac_key *key, unsigned char constant,
                       unsigned char out[HASH_LENGTH]) {
    unsigned char info[2] = {constant, 0x01};
    hmac_message(key, info, sizeof info, out);
}

static PyObject *session_keys(PyObject *self, PyObject *args) {
    Py_buffer secret;
    int tep, key_length, with_next;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*iip:session_keys", &secret, &tep, &key_length, &with_next))
        return NULL;
    if (secret.len != HASH_LENGTH || tep < 0 || tep > 0x7f || key_length <= 0 ||
        key_length > HASH_LENGTH) {
        PyBuffer_Release(&secret);
        PyErr_SetString(PyExc_ValueError,
                        "session_keys: a 32-byte secret, a 7-bit TEP and a key of 1..32 bytes");
        return NULL;
    }
    hmac_key ss, mk;
    unsigned char session_id[1 + HASH_LENGTH], master[HASH_LENGTH];
    unsigned char key_ab[HASH_LENGTH], key_ba[HASH_LENGTH];
    unsigned char next[HASH_LENGTH], resume[HASH_LENGTH];
    hmac_key_init(&ss, secret.buf, (size_t)secret.len);
    PyBuffer_Release(&secret);
    session_id[0] = (unsigned char)tep;
    cprf_block(&ss, CONST_SESSID, session_id + 1);
    cprf_block(&ss, CONST_REKEY, master);
    hmac_key_init(&mk, master, HASH_LENGTH);
    cprf_block(&mk, CONST_KEY_A, key_ab);
    cprf_block(&mk, CONST_KEY_B, key_ba);
    PyObject *result;
    if (with_next) {
        hmac_key nk;
        cprf_block(&ss, CONST_NEXTK, next);
        hmac_key_init(&nk, next, HASH_LENGTH);
        cprf_block(&nk, CONST_RESUME, resume);
        OPENSSL_cleanse(&nk, sizeof nk);
        result = Py_BuildValue(
            "(y#y#y#y#y#y#y#)", session_id, (Py_ssize_t)sizeof session_id, master,
            (Py_ssize_t)HASH_LENGTH, key_ab, (Py_ssize_t)key_length, key_ba,
            (Py_ssize_t)key_length, next, (Py_ssize_t)HASH_LENGTH, resume,
            (Py_ssize_t)RESUMPTION_ID_LENGTH,
            resume + RESUME_MATERIAL_LENGTH - RESUMPTION_ID_LENGTH,
            (Py_ssize_t)RESUMPTION_ID_LENGTH);
    } else {
        result = Py_BuildValue("(y#y#y#y#OOO)", session_id, (Py_ssize_t)sizeof session_id,
                               master, (Py_ssize_t)HASH_LENGTH, key_ab, (Py_ssize_t)key_length,
                               key_ba, (Py_ssize_t)key_length, Py_None, Py_None, Py_None);
    }
    OPENSSL_cleanse(&ss, sizeof ss);
    OPENSSL_cleanse(&mk, sizeof mk);
    OPENSSL_cleanse(master, sizeof master);
    OPENSSL_cleanse(key_ab, sizeof key_ab);
    OPENSSL_cleanse(key_ba, sizeof key_ba);
    OPENSSL_cleanse(next, sizeof next);
    return result;
}

static PyObject *extract(PyObject *self, PyObject *args) {
    Py_buffer salt, ikm;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*:extract", &salt, &ikm)) return NULL;
    hmac_key key;
    unsigned char out[HASH_LENGTH];
    hmac_key_init(&key, salt.buf, (size_t)salt.len);
    hmac_message(&key, ikm.buf, (size_t)ikm.len, out);
    PyBuffer_Release(&salt);
    PyBuffer_Release(&ikm);
    OPENSSL_cleanse(&key, sizeof key);
    return PyBytes_FromStringAndSize((const char *)out, HASH_LENGTH);
}

#define INIT1_MAGIC 0x15101A0EUL
#define INIT2_MAGIC 0x097105E0UL
#define MAX_INIT_MESSAGE 2048
#define NONCE_LENGTH 32
#define X25519_LENGTH 32
#define INIT2_LENGTH (8 + 1 + NONCE_LENGTH + X25519_LENGTH)

static unsigned long read_be32(const unsigned char *bytes) {
    return ((unsigned long)bytes[0] << 24) | ((unsigned long)bytes[1] << 16) |
           ((unsigned long)bytes[2] << 8) | (unsigned long)bytes[3];
}

static void write_be32(unsigned char *bytes, unsigned long value) {
    bytes[0] = (unsigned char)(value >> 24);
    bytes[1] = (unsigned char)(value >> 16);
    bytes[2] = (unsigned char)(value >> 8);
    bytes[3] = (unsigned char)value;
}

/* random(32) as exactly 32 bytes into `out`; -1 with a Python exception otherwise. */
static int draw(PyObject *random, unsigned char out[32]) {
    PyObject *drawn = PyObject_CallFunction(random, "i", 32);
    if (drawn == NULL) return -1;
    if (!PyBytes_Check(drawn) || PyBytes_GET_SIZE(drawn) != 32) {
        Py_DECREF(drawn);
        PyErr_SetString(PyExc_ValueError, "b_init1_x25519: random(32) must return 32 bytes");
        return -1;
    }
    memcpy(out, PyBytes_AS_STRING(drawn), 32);
    Py_DECREF(drawn);
    return 0;
}

/* X25519 goes through `cryptography`'s key objects (the library the pure-Python path uses):
 * through the system libcrypto's EVP (OpenSSL 3.0), each connection made three EVP_PKEY_CTX
 * objects, and each of those walks OpenSSL 3.0's whole name map (its legacy-type lookup):
 * measured at 30-60 us per connection in a server, where the map is out of the caches, next
 * to about 100 us for the curve arithmetic itself. The key objects' constructors are looked
 * up once. */
static PyObject *x25519_private_from_bytes = NULL, *x25519_public_from_bytes = NULL;

static int x25519_load(void) {
    if (x25519_private_from_bytes != NULL) return 0;
    PyObject *module = PyImport_ImportModule("cryptography.hazmat.primitives.asymmetric.x25519");
    if (module == NULL) return -1;
    PyObject *private_type = PyObject_GetAttrString(module, "X25519PrivateKey");
    PyObject *public_type = PyObject_GetAttrString(module, "X25519PublicKey");
    Py_DECREF(module);
    if (private_type != NULL && public_type != NULL) {
        x25519_private_from_bytes = PyObject_GetAttrString(private_type, "from_private_bytes");
        x25519_public_from_bytes = PyObject_GetAttrString(public_type, "from_public_bytes");
    }
    Py_XDECREF(private_type);
    Py_XDECREF(public_type);
    if (x25519_private_from_bytes == NULL || x25519_public_from_bytes == NULL) {
        Py_CLEAR(x25519_private_from_bytes);
        Py_CLEAR(x25519_public_from_bytes);
        return -1;
    }
    return 0;
}

/* Copies a 32-byte bytes object into `out`; -1 when it is anything else. */
static int take_32(PyObject *value, unsigned char out[32]) {
    if (value == NULL || !PyBytes_Check(value) || PyBytes_GET_SIZE(value) != 32) return -1;
    memcpy(out, PyBytes_AS_STRING(value), 32);
    return 0;
}

/* PK_B and ES from B's private key and PK_A: 0 on success; 1 when the library refuses (a
 * low-order point: the Python path then says so), with no exception left; -1 with a Python
 * exception for anything else (out of memory, `cryptography` missing). */
static int x25519_respond(const unsigned char private_key[32], const unsigned char *peer,
                          unsigned char public_key[32], unsigned char shared[32]) {
    if (x25519_load() < 0) return -1;
    int ok = -1;
    PyObject *own = NULL, *own_public = NULL, *raw = NULL, *theirs = NULL, *secret = NULL;
    own = PyObject_CallFunction(x25519_private_from_bytes, "y#", (const char *)private_key,
                                (Py_ssize_t)32);
    if (own == NULL) goto done;
    own_public = PyObject_CallMethod(own, "public_key", NULL);
    if (own_public == NULL) goto done;
    raw = PyObject_CallMethod(own_public, "public_bytes_raw", NULL);
    if (raw == NULL) goto done;
    if (take_32(raw, public_key) < 0) {
        PyErr_SetString(PyExc_ValueError, "b_init1_x25519: PK_B is not 32 bytes");
        goto done;
    }
    theirs = PyObject_CallFunction(x25519_public_from_bytes, "y#", (const char *)peer,
                                   (Py_ssize_t)32);
    if (theirs == NULL) goto done;
    secret = PyObject_CallMethod(own, "exchange", "O", theirs);
    if (secret == NULL) {
        if (PyErr_ExceptionMatches(PyExc_ValueError)) {  /* refused: the Python path decides */
            PyErr_Clear();
            ok = 1;
        }
        goto done;
    }
    if (take_32(secret, shared) < 0) {
        PyErr_SetString(PyExc_ValueError, "b_init1_x25519: ES is not 32 bytes");
        goto done;
    }
    ok = 0;
done:
    Py_XDECREF(secret);
    Py_XDECREF(theirs);
    Py_XDECREF(raw);
    Py_XDECREF(own_public);
    Py_XDECREF(own);
    return ok;
}

static PyObject *b_init1_x25519(PyObject *self, PyObject *args) {
    Py_buffer buffer, ours, transcript;
    PyObject *random, *result = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*Oy*:b_init1_x25519", &buffer, &ours, &random, &transcript))
        return NULL;
    const unsigned char *in = buffer.buf;
    size_t available = (size_t)buffer.len, length = 0, count = 0, minimum = 0;
    int chosen = -1;
    if (available >= 9 && read_be32(in) == INIT1_MAGIC) {
        length = read_be32(in + 4);
        count = in[8];
        minimum = 8 + 1 + count + NONCE_LENGTH + X25519_LENGTH;
    }
    if (count > 0 && length <= MAX_INIT_MESSAGE && length >= minimum && available >= length) {
        const unsigned char *preferred = ours.buf;
        for (Py_ssize_t i = 0; i < ours.len && chosen < 0; i++)
            for (size_t j = 0; j < count; j++)
                if (in[9 + j] == preferred[i]) {
                    chosen = preferred[i];
                    break;
                }
    }
    if (chosen < 0) {
        result = Py_None;
        Py_INCREF(result);
        goto done;
    }
    const unsigned char *nonce_a = in + 9 + count, *pk_a = nonce_a + NONCE_LENGTH;
    unsigned char private_key[32], init2[INIT2_LENGTH], shared[32], secret[HASH_LENGTH];
    if (draw(random, private_key) < 0) goto done;
    write_be32(init2, INIT2_MAGIC);
    write_be32(init2 + 4, INIT2_LENGTH);
    init2[8] = (unsigned char)chosen;
    if (draw(random, init2 + 9) < 0) goto cleanse;
    unsigned char zero = 0;
    int exchanged = x25519_respond(private_key, pk_a, init2 + 9 + NONCE_LENGTH, shared);
    if (exchanged < 0) goto cleanse;  /* a Python exception, raised as the Python path would */
    if (exchanged == 0) {
        for (size_t i = 0; i < sizeof shared; i++) zero |= shared[i];
    }
    if (zero == 0) {  /* refused, or an all-zero ES: the Python path says which */
        result = Py_None;
        Py_INCREF(result);
        goto cleanse;
    }
    hmac_key key;
    SHA256_CTX context;
    unsigned char inner[HASH_LENGTH];
    hmac_key_init(&key, nonce_a, NONCE_LENGTH);
    context = key.inner;
    SHA256_Update(&context, transcript.buf, (size_t)transcript.len);
    SHA256_Update(&context, in, length);
    SHA256_Update(&context, init2, INIT2_LENGTH);
    SHA256_Update(&context, shared, sizeof shared);
    SHA256_Final(inner, &context);
    context = key.outer;
    SHA256_Update(&context, inner, HASH_LENGTH);
    SHA256_Final(secret, &context);
    result = Py_BuildValue("(niy#y#)", (Py_ssize_t)length, chosen, init2,
                           (Py_ssize_t)INIT2_LENGTH, secret, (Py_ssize_t)HASH_LENGTH);
    OPENSSL_cleanse(&key, sizeof key);
    OPENSSL_cleanse(&context, sizeof context);
    OPENSSL_cleanse(inner, sizeof inner);
    OPENSSL_cleanse(secret, sizeof secret);
cleanse:
    OPENSSL_cleanse(private_key, sizeof private_key);
    OPENSSL_cleanse(shared, sizeof shared);
done:
    PyBuffer_Release(&buffer);
    PyBuffer_Release(&ours);
    PyBuffer_Release(&transcript);
    return result;
}

static long bpf_map_call(int command, int map_fd, const void *key, void *value,
                         unsigned long long flags) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_fd = (unsigned int)map_fd;
    attr.key = (unsigned long long)(uintptr_t)key;
    attr.value = (unsigned long long)(uintptr_t)value;
    attr.flags = flags;
    return syscall(__NR_bpf, command, &attr, sizeof attr);
}

static PyObject *bpf_lookup(PyObject *self, PyObject *args) {
    int map_fd;
    Py_buffer key;
    Py_ssize_t value_size;
    (void)self;
    if (!PyArg_ParseTuple(args, "iy*n:bpf_lookup", &map_fd, &key, &value_size)) return NULL;
    if (value_size <= 0 || value_size > 65536) {
        PyBuffer_Release(&key);
        PyErr_SetString(PyExc_ValueError, "bpf_lookup: value size out of range 1..65536");
        return NULL;
    }
    PyObject *value = PyBytes_FromStringAndSize(NULL, value_size);
    if (value == NULL) {
        PyBuffer_Release(&key);
        return NULL;
    }
    long result = bpf_map_call(BPF_MAP_LOOKUP_ELEM, map_fd, key.buf, PyBytes_AS_STRING(value), 0);
    int code = errno;
    PyBuffer_Release(&key);
    if (result < 0) {
        Py_DECREF(value);
        if (code == ENOENT) Py_RETURN_NONE;
        errno = code;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return value;
}

static PyObject *bpf_update(PyObject *self, PyObject *args) {
    int map_fd;
    Py_buffer key, value;
    unsigned long long flags;
    (void)self;
    if (!PyArg_ParseTuple(args, "iy*y*K:bpf_update", &map_fd, &key, &value, &flags)) return NULL;
    long result = bpf_map_call(BPF_MAP_UPDATE_ELEM, map_fd, key.buf, value.buf, flags);
    int code = errno;
    PyBuffer_Release(&key);
    PyBuffer_Release(&value);
    if (result < 0) {
        errno = code;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}

/* ---- AEAD ciphers for frames: the same calls as cryptography's AESGCM / ChaCha20Poly1305
 * (encrypt, encrypt_into, decrypt, decrypt_into; a failed tag raises
 * cryptography.exceptions.InvalidTag), on libcrypto's EVP with each algorithm fetched once
 * per process and the key set up once per object: a connection makes two of these (one per
 * direction), where `cryptography` fetched the algorithm and copied a context per object and
 * per call. 16-byte tags; nonces of 12 bytes (every frame's), or for AES-GCM 8 to 128 bytes
 * as `cryptography` allows (the drafts' frames use 8). */
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

static EVP_CIPHER *fetched_ciphers[3] = {NULL, NULL, NULL};
static const char *const cipher_names[3] = {"AES-128-GCM", "AES-256-GCM", "ChaCha20-Poly1305"};
static PyObject *invalid_tag = NULL;

static const EVP_CIPHER *cipher_for(int index) {
    if (fetched_ciphers[index] == NULL)
        fetched_ciphers[index] = EVP_CIPHER_fetch(NULL, cipher_names[index], NULL);
    return fetched_ciphers[index];
}

static void aead_dealloc(AeadObject *self) {
    EVP_CIPHER_CTX_free(self->seal);
    EVP_CIPHER_CTX_free(self->open);
    OPENSSL_cleanse(self->key, sizeof self->key);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject AeadType;

/* aead_cipher(kind, key): kind 0 AES-GCM (16- or 32-byte key), 1 ChaCha20-Poly1305. */
static PyObject *aead_cipher(PyObject *module, PyObject *args) {
    int kind;
    Py_buffer key;
    (void)module;
    if (!PyArg_ParseTuple(args, "iy*:aead_cipher", &kind, &key)) return NULL;
    int index = -1;
    if (kind == 0 && key.len == 16) index = 0;
    else if (kind == 0 && key.len == 32) index = 1;
    else if (kind == 1 && key.len == 32) index = 2;
    if (index < 0) {
        PyBuffer_Release(&key);
        PyErr_SetString(PyExc_ValueError, "aead_cipher: AES-GCM takes a 16- or 32-byte key, "
                        "ChaCha20-Poly1305 a 32-byte key");
        return NULL;
    }
    const EVP_CIPHER *cipher = cipher_for(index);
    if (cipher == NULL) {
        PyBuffer_Release(&key);
        PyErr_Format(PyExc_RuntimeError, "libcrypto has no %s", cipher_names[index]);
        return NULL;
    }
    AeadObject *self = PyObject_New(AeadObject, &AeadType);
    if (self == NULL) {
        PyBuffer_Release(&key);
        return NULL;
    }
    self->seal = self->open = NULL;
    self->cipher = cipher;
    self->gcm = kind == 0;
    self->nonce_lengths[0] = self->nonce_lengths[1] = AEAD_NONCE_LENGTH;
    self->key_length = (int)key.len;
    memset(self->key, 0, sizeof self->key);
    memcpy(self->key, key.buf, (size_t)key.len);
    PyBuffer_Release(&key);
    return (PyObject *)self;
}

static EVP_CIPHER_CTX *keyed(AeadObject *self, int encrypting) {
    EVP_CIPHER_CTX **slot = encrypting ? &self->seal : &self->open;
    if (*slot != NULL) return *slot;
    EVP_CIPHER_CTX *context = EVP_CIPHER_CTX_new();
    if (context == NULL || EVP_CipherInit_ex2(context, self->cipher, self->key, NULL,
                                              encrypting, NULL) != 1) {
        EVP_CIPHER_CTX_free(context);
        ERR_clear_error();
        PyErr_SetString(PyExc_RuntimeError, "libcrypto refused the AEAD key");
        return NULL;
    }
    *slot = context;
    return context;
}

/* One AEAD operation into `out` (len(data) + 16 bytes when sealing, len(data) - 16 when
 * opening). 0 on success, 1 for a tag that does not match, -1 with an exception. */
static int aead_run(AeadObject *self, int encrypting, const Py_buffer *nonce,
                    const Py_buffer *data, const Py_buffer *ad, unsigned char *out) {
    if (nonce->len != AEAD_NONCE_LENGTH &&
        (!self->gcm || nonce->len < 8 || nonce->len > 128)) {
        PyErr_SetString(PyExc_ValueError, self->gcm ? "nonce must be 8 to 128 bytes"
                                                    : "nonce must be 12 bytes");
        return -1;
    }
    if (data->len > INT_MAX - AEAD_TAG_LENGTH || ad->len > INT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "data too long");
        return -1;
    }
    EVP_CIPHER_CTX *context = keyed(self, encrypting);
    if (context == NULL) return -1;
    const unsigned char *in = data->buf;
    int length = (int)data->len, done = 0, last = 0;
    if (!encrypting) length -= AEAD_TAG_LENGTH;
    if (nonce->len != self->nonce_lengths[encrypting]) {
        if (EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_IVLEN, (int)nonce->len, NULL) != 1)
            goto refused;
        self->nonce_lengths[encrypting] = (int)nonce->len;
    }
    if (EVP_CipherInit_ex2(context, NULL, NULL, nonce->buf, -1, NULL) != 1) goto refused;
    if (ad->len > 0 && EVP_CipherUpdate(context, NULL, &done, ad->buf, (int)ad->len) != 1)
        goto refused;
    if (!encrypting &&
        EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, AEAD_TAG_LENGTH,
                            (void *)(in + length)) != 1)
        goto refused;
    done = 0;
    if (length > 0 && EVP_CipherUpdate(context, out, &done, in, length) != 1) goto refused;
    if (EVP_CipherFinal_ex(context, out + done, &last) != 1) {
        ERR_clear_error();
        if (encrypting) goto refused;
        OPENSSL_cleanse(out, (size_t)length);  /* nothing of a forged frame stays readable */
        return 1;
    }
    if (encrypting &&
        EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, AEAD_TAG_LENGTH, out + length) != 1)
        goto refused;
    return 0;
refused:
    ERR_clear_error();
    PyErr_SetString(PyExc_RuntimeError, "libcrypto failed an AEAD operation");
    return -1;
}

static PyObject *raise_invalid_tag(void) {
    if (invalid_tag == NULL) {
        PyObject *module = PyImport_ImportModule("cryptography.exceptions");
        if (module == NULL) return NULL;
        invalid_tag = PyObject_GetAttrString(module, "InvalidTag");
        Py_DECREF(module);
        if (invalid_tag == NULL) return NULL;
    }
    PyErr_SetNone(invalid_tag);
    return NULL;
}

/* encrypt/decrypt (return bytes) and their _into forms (write into a writable buffer of
 * exactly the result's length, return that length). `ad` may be None. */
static PyObject *aead_call(AeadObject *self, PyObject *args, int encrypting, int into) {
    Py_buffer nonce, data, ad, target;
    PyObject *ad_object, *result = NULL;
    memset(&ad, 0, sizeof ad);
    memset(&target, 0, sizeof target);
    if (into) {
        if (!PyArg_ParseTuple(args, "y*y*Ow*", &nonce, &data, &ad_object, &target)) return NULL;
    } else if (!PyArg_ParseTuple(args, "y*y*O", &nonce, &data, &ad_object)) {
        return NULL;
    }
    int have_ad = 0;
    if (ad_object != Py_None) {
        if (PyObject_GetBuffer(ad_object, &ad, PyBUF_SIMPLE) < 0) goto done;
        have_ad = 1;
    }
    if (!encrypting && data.len < AEAD_TAG_LENGTH) {
        raise_invalid_tag();
        goto done;
    }
    Py_ssize_t size = encrypting ? data.len + AEAD_TAG_LENGTH : data.len - AEAD_TAG_LENGTH;
    unsigned char *out;
    if (into) {
        if (target.len != size) {
            PyErr_Format(PyExc_ValueError, "buffer must be %zd bytes", size);
            goto done;
        }
        out = target.buf;
    } else {
        result = PyBytes_FromStringAndSize(NULL, size);
        if (result == NULL) goto done;
        out = (unsigned char *)PyBytes_AS_STRING(result);
    }
    int outcome = aead_run(self, encrypting, &nonce, &data, &ad, out);
    if (outcome != 0) {
        Py_CLEAR(result);
        if (outcome == 1) raise_invalid_tag();
        goto done;
    }
    if (into) result = PyLong_FromSsize_t(size);
done:
    PyBuffer_Release(&nonce);
    PyBuffer_Release(&data);
    if (have_ad) PyBuffer_Release(&ad);
    if (into) PyBuffer_Release(&target);
    return result;
}

static PyObject *aead_encrypt(AeadObject *self, PyObject *args) {
    return aead_call(self, args, 1, 0);
}
static PyObject *aead_encrypt_into(AeadObject *self, PyObject *args) {
    return aead_call(self, args, 1, 1);
}
static PyObject *aead_decrypt(AeadObject *self, PyObject *args) {
    return aead_call(self, args, 0, 0);
}
static PyObject *aead_decrypt_into(AeadObject *self, PyObject *args) {
    return aead_call(self, args, 0, 1);
}

static PyMethodDef aead_methods[] = {
    {"encrypt", (PyCFunction)aead_encrypt, METH_VARARGS,
     "encrypt(nonce, data, associated_data) -> ciphertext | tag"},
    {"encrypt_into", (PyCFunction)aead_encrypt_into, METH_VARARGS,
     "encrypt_into(nonce, data, associated_data, buffer) -> bytes written"},
    {"decrypt", (PyCFunction)aead_decrypt, METH_VARARGS,
     "decrypt(nonce, data, associated_data) -> plaintext; InvalidTag"},
    {"decrypt_into", (PyCFunction)aead_decrypt_into, METH_VARARGS,
     "decrypt_into(nonce, data, associated_data, buffer) -> bytes written; InvalidTag"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject AeadType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tcpcrypt.native._fastpath.Aead",
    .tp_basicsize = sizeof(AeadObject),
    .tp_dealloc = (destructor)aead_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A keyed AEAD (AES-GCM or ChaCha20-Poly1305) on libcrypto's EVP",
    .tp_methods = aead_methods,
};

/* ---- Frames (RFC 8548): FrameSealer and FrameOpener of tcpcrypt/frames.py with each call in C.
 * tcpcrypt/frames.py's pure-Python classes are the reference and document the format:
 *   frame = length (2, big-endian) | AEAD(control byte | data) | tag (16), AD = the length
 *   field, nonce = FRAME_NONCE_MAGIC (4) | offset (8), the offset counting whole frames.
 * Every check, its order, the reason strings and the state left behind by an error are those
 * of the Python classes (tests/protocol/test_native_frames.py compares both). Keys of the next
 * generation come from the same Python calls, keys(j) and then aead.new(key), which must give
 * an `Aead` of this module. The errors are tcpcrypt.errors' classes, imported on first use. */
#define FRAME_NONCE_MAGIC 0x44415441UL
#define FRAME_LENGTH_FIELD 2
#define CONTROL_REKEY 0x01
#define MIN_FRAME_CIPHERTEXT (1 + AEAD_TAG_LENGTH)
#define MAX_FRAME_CIPHERTEXT 0xFFFF
#define FRAME_OVERHEAD (FRAME_LENGTH_FIELD + MIN_FRAME_CIPHERTEXT)
#define MAX_FRAME_PLAINTEXT (MAX_FRAME_CIPHERTEXT - MIN_FRAME_CIPHERTEXT)
#define DEFAULT_MAX_FRAME_PLAINTEXT 16384

enum { PEER_ERROR, DECODE_ERROR, AUTHENTICATION_ERROR, USAGE_ERROR, ERROR_CLASSES };
static PyObject *error_classes[ERROR_CLASSES];

static int load_errors(void) {
    static const char *const names[ERROR_CLASSES] = {
        "PeerError", "DecodeError", "AuthenticationError", "UsageError"};
    if (error_classes[USAGE_ERROR] != NULL) return 0;
    PyObject *module = PyImport_ImportModule("tcpcrypt.errors");
    if (module == NULL) return -1;
    for (int i = 0; i < ERROR_CLASSES; i++) {
        error_classes[i] = PyObject_GetAttrString(module, names[i]);
        if (error_classes[i] == NULL) {
            for (int j = 0; j < i; j++) Py_CLEAR(error_classes[j]);
            Py_DECREF(module);
            return -1;
        }
    }
    Py_DECREF(module);
    return 0;
}

/* Raises class `which` (a PeerError) as PeerError(reason, detail). -1 always. */
static int peer_error(int which, const char *reason, const char *detail) {
    if (load_errors() < 0) return -1;
    PyObject *error = PyObject_CallFunction(error_classes[which], "ss", reason, detail);
    if (error != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(error), error);
        Py_DECREF(error);
    }
    return -1;
}

/* Raises UsageError(message), the message formatted as PyUnicode_FromFormat does. NULL. */
static PyObject *usage_error(const char *format, ...) {
    if (load_errors() < 0) return NULL;
    va_list arguments;
    va_start(arguments, format);
    PyObject *message = PyUnicode_FromFormatV(format, arguments);
    va_end(arguments);
    if (message != NULL) {
        PyErr_SetObject(error_classes[USAGE_ERROR], message);
        Py_DECREF(message);
    }
    return NULL;
}

static void frame_nonce(unsigned char nonce[AEAD_NONCE_LENGTH], unsigned long long offset) {
    write_be32(nonce, FRAME_NONCE_MAGIC);
    for (int i = 0; i < 8; i++) nonce[4 + i] = (unsigned char)(offset >> (56 - 8 * i));
}

/* The cipher's context of one direction, keyed and set to this frame's nonce. */
static EVP_CIPHER_CTX *frame_context(AeadObject *cipher, int encrypting,
                                     unsigned long long offset) {
    unsigned char nonce[AEAD_NONCE_LENGTH];
    EVP_CIPHER_CTX *context = keyed(cipher, encrypting);
    if (context == NULL) return NULL;
    if (cipher->nonce_lengths[encrypting] != AEAD_NONCE_LENGTH) {
        if (EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_IVLEN, AEAD_NONCE_LENGTH, NULL) != 1)
            goto refused;
        cipher->nonce_lengths[encrypting] = AEAD_NONCE_LENGTH;
    }
    frame_nonce(nonce, offset);
    if (EVP_CipherInit_ex2(context, NULL, NULL, nonce, -1, NULL) != 1) goto refused;
    return context;
refused:
    ERR_clear_error();
    PyErr_SetString(PyExc_RuntimeError, "libcrypto failed an AEAD operation");
    return NULL;
}

/* EVP_CipherUpdate that must turn `length` bytes in into as many out (both AEADs are stream
 * ciphers to EVP: no byte is held back). */
static int update_exactly(EVP_CIPHER_CTX *context, unsigned char *out, const unsigned char *in,
                          size_t length) {
    int done = 0;
    if (length == 0) return 0;
    if (EVP_CipherUpdate(context, out, &done, in, (int)length) != 1 || done != (int)length)
        return -1;
    return 0;
}

/* Writes the whole frame (length field, control byte and data sealed, tag) of `size` data
 * bytes at `frame`. 0, or -1 with an exception. */
static int seal_frame(AeadObject *cipher, unsigned long long offset, unsigned char control,
                      const unsigned char *data, size_t size, unsigned char *frame) {
    size_t length = size + MIN_FRAME_CIPHERTEXT;
    int done = 0;
    frame[0] = (unsigned char)(length >> 8);
    frame[1] = (unsigned char)length;
    EVP_CIPHER_CTX *context = frame_context(cipher, 1, offset);
    if (context == NULL) return -1;
    unsigned char *out = frame + FRAME_LENGTH_FIELD;
    if (EVP_CipherUpdate(context, NULL, &done, frame, FRAME_LENGTH_FIELD) != 1 ||
        update_exactly(context, out, &control, 1) < 0 ||
        update_exactly(context, out + 1, data, size) < 0 ||
        EVP_CipherFinal_ex(context, out + 1 + size, &done) != 1 || done != 0 ||
        EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, AEAD_TAG_LENGTH,
                            out + 1 + size) != 1) {
        ERR_clear_error();
        PyErr_SetString(PyExc_RuntimeError, "libcrypto failed an AEAD operation");
        return -1;
    }
    return 0;
}

/* Opens the frame at `frame` (its length field says `length`): the control byte into
 * `control`, the data (length - 17 bytes) into `data`. 0; 1 for a tag that does not match
 * (the data wiped); -1 with an exception. */
static int open_frame(AeadObject *cipher, unsigned long long offset, const unsigned char *frame,
                      size_t length, unsigned char *control, unsigned char *data) {
    size_t size = length - MIN_FRAME_CIPHERTEXT;
    const unsigned char *in = frame + FRAME_LENGTH_FIELD;
    int done = 0;
    EVP_CIPHER_CTX *context = frame_context(cipher, 0, offset);
    if (context == NULL) return -1;
    if (EVP_CipherUpdate(context, NULL, &done, frame, FRAME_LENGTH_FIELD) != 1 ||
        EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, AEAD_TAG_LENGTH,
                            (void *)(in + 1 + size)) != 1 ||
        update_exactly(context, control, in, 1) < 0 ||
        update_exactly(context, data, in + 1, size) < 0) {
        ERR_clear_error();
        PyErr_SetString(PyExc_RuntimeError, "libcrypto failed an AEAD operation");
        return -1;
    }
    if (EVP_CipherFinal_ex(context, data + size, &done) != 1) {
        ERR_clear_error();
        *control = 0;
        if (size > 0) OPENSSL_cleanse(data, size);
        return 1;
    }
    return 0;
}

/* The state both directions keep. `offset` is the number of frame bytes so far when
 * `offset_carry` is 0, and 2^64 more when it is 1 (the nonce space is then used up). */
typedef struct {
    PyObject_HEAD
    PyObject *aead;       /* the AeadSpec: aead.new(key) */
    PyObject *keys;       /* keys(j): the key of generation j */
    AeadObject *cipher;   /* the current generation's */
    unsigned long long offset;
    int offset_carry;
    long long generation;
    long long limit;      /* sealer: data bytes per frame; opener: the longest length field */
} FrameState;

typedef struct {
    FrameState state;
} FrameSealerObject;

typedef struct {
    FrameState state;
    AeadObject *next_cipher;  /* generation + 1's, made when a tag first fails */
    unsigned char *pending;   /* an incomplete frame's bytes */
    Py_ssize_t pending_length, pending_capacity;
    int dead;
    int feeding;  /* inside feed: a keys() callback may not feed or re-initialise it */
} FrameOpenerObject;

static void advance(FrameState *state, size_t bytes) {
    unsigned long long before = state->offset;
    state->offset += bytes;
    if (state->offset < before) state->offset_carry = 1;
}

/* aead.new(keys(generation)), which must be an Aead of this module. */
static AeadObject *cipher_of(FrameState *state, long long generation) {
    static PyObject *new_name = NULL;
    if (new_name == NULL && (new_name = PyUnicode_InternFromString("new")) == NULL) return NULL;
    PyObject *number = PyLong_FromLongLong(generation);
    if (number == NULL) return NULL;
    PyObject *key = PyObject_CallOneArg(state->keys, number);
    Py_DECREF(number);
    if (key == NULL) return NULL;
    PyObject *cipher = PyObject_CallMethodOneArg(state->aead, new_name, key);
    Py_DECREF(key);
    if (cipher == NULL) return NULL;
    if (!Py_IS_TYPE(cipher, &AeadType)) {
        PyErr_Format(PyExc_TypeError, "the C frames need the C AEAD objects "
                     "(tcpcrypt.native.aead_cipher); the AEAD's new() gave %.100s",
                     Py_TYPE(cipher)->tp_name);
        Py_DECREF(cipher);
        return NULL;
    }
    return (AeadObject *)cipher;
}

/* __init__'s shared part: the limit checked first (`name` out of range minimum..maximum, the
 * Python classes' messages), then keys(0) and its cipher. */
static int frame_state_init(FrameState *state, PyObject *args, PyObject *kwargs,
                            const char *format, char **keywords, long long fallback,
                            long long minimum, int sealer) {
    PyObject *aead, *keys, *limit_object = NULL;
    Py_ssize_t count = PyTuple_GET_SIZE(args);
    if ((kwargs == NULL || PyDict_GET_SIZE(kwargs) == 0) && (count == 2 || count == 3)) {
        aead = PyTuple_GET_ITEM(args, 0);  /* the usual call, without the parser's cost */
        keys = PyTuple_GET_ITEM(args, 1);
        if (count == 3) limit_object = PyTuple_GET_ITEM(args, 2);
    } else if (!PyArg_ParseTupleAndKeywords(args, kwargs, format, keywords, &aead, &keys,
                                            &limit_object)) {
        return -1;
    }
    long long limit = fallback;
    if (limit_object != NULL) {
        int overflow = 0;
        limit = PyLong_AsLongLongAndOverflow(limit_object, &overflow);
        if (limit == -1 && PyErr_Occurred()) return -1;
        if (overflow || limit < minimum || limit > (sealer ? MAX_FRAME_PLAINTEXT
                                                            : MAX_FRAME_CIPHERTEXT)) {
            if (sealer)
                usage_error("max_frame_plaintext %S out of range 1..%d", limit_object,
                            MAX_FRAME_PLAINTEXT);
            else
                usage_error("max_ciphertext_length %S out of range", limit_object);
            return -1;
        }
    }
    Py_INCREF(aead);
    Py_XSETREF(state->aead, aead);
    Py_INCREF(keys);
    Py_XSETREF(state->keys, keys);
    state->limit = limit;
    state->generation = 0;
    state->offset = 0;
    state->offset_carry = 0;
    AeadObject *cipher = cipher_of(state, 0);
    if (cipher == NULL) return -1;
    Py_XSETREF(state->cipher, cipher);
    return 0;
}

static int frame_state_traverse(FrameState *state, visitproc visit, void *arg) {
    Py_VISIT(state->aead);
    Py_VISIT(state->keys);
    Py_VISIT(state->cipher);
    return 0;
}

static int frame_state_clear(FrameState *state) {
    Py_CLEAR(state->aead);
    Py_CLEAR(state->keys);
    Py_CLEAR(state->cipher);
    return 0;
}

static PyObject *get_offset(FrameState *state, void *closure) {
    (void)closure;
    PyObject *low = PyLong_FromUnsignedLongLong(state->offset);
    if (low == NULL || !state->offset_carry) return low;
    PyObject *one = PyLong_FromLong(1), *shift = PyLong_FromLong(64), *high = NULL, *sum = NULL;
    if (one != NULL && shift != NULL) high = PyNumber_Lshift(one, shift);
    if (high != NULL) sum = PyNumber_Add(low, high);
    Py_XDECREF(one);
    Py_XDECREF(shift);
    Py_XDECREF(high);
    Py_DECREF(low);
    return sum;
}

/* `_offset = n` (0 <= n < 2^65): where the next frame starts, as the Python classes'
 * attribute; for tests of the nonce-space limit. */
static int set_offset(FrameState *state, PyObject *value, void *closure) {
    (void)closure;
    if (value == NULL || !PyLong_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "_offset must be an int");
        return -1;
    }
    PyObject *shift = PyLong_FromLong(64), *high = PyNumber_Rshift(value, shift);
    Py_DECREF(shift);
    if (high == NULL) return -1;
    int overflow = 0;
    long long carry = PyLong_AsLongLongAndOverflow(high, &overflow);
    Py_DECREF(high);
    if (carry == -1 && PyErr_Occurred()) return -1;
    if (overflow || carry < 0 || carry > 1) {
        PyErr_SetString(PyExc_ValueError, "_offset out of range 0..2**65-1");
        return -1;
    }
    unsigned long long low = PyLong_AsUnsignedLongLongMask(value);
    if (low == (unsigned long long)-1 && PyErr_Occurred()) return -1;
    state->offset = low;
    state->offset_carry = (int)carry;
    return 0;
}

static PyObject *get_generation(FrameState *state, void *closure) {
    (void)closure;
    return PyLong_FromLongLong(state->generation);
}

/* ---- the sealer */

static PyObject *frame_sealer_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    (void)args;
    (void)kwargs;
    FrameSealerObject *self = (FrameSealerObject *)type->tp_alloc(type, 0);
    return (PyObject *)self;  /* every field zero: __init__ sets them */
}

static int frame_sealer_init(FrameSealerObject *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"aead", "keys", "max_frame_plaintext", NULL};
    return frame_state_init(&self->state, args, kwargs, "OO|O:FrameSealer", keywords,
                            DEFAULT_MAX_FRAME_PLAINTEXT, 1, 1);
}

static int frame_sealer_traverse(FrameSealerObject *self, visitproc visit, void *arg) {
    return frame_state_traverse(&self->state, visit, arg);
}

static int frame_sealer_clear(FrameSealerObject *self) {
    return frame_state_clear(&self->state);
}

static void frame_sealer_dealloc(FrameSealerObject *self) {
    PyObject_GC_UnTrack(self);
    frame_state_clear(&self->state);
    Py_TYPE(self)->tp_free((PyObject *)self);  /* a subclass's type: its own dealloc */
}

static int sealer_ready(FrameState *state) {
    if (state->cipher == NULL) {
        usage_error("the frame sealer was not initialised");
        return -1;
    }
    return 0;
}

/* The frame at `frame` for `size` bytes of `data`: the nonce-space check, the next key when
 * `rekey` (the generation counted first, as in Python), the frame, the offset moved. */
static int seal_one(FrameState *state, const unsigned char *data, size_t size, int rekey,
                    unsigned char *frame) {
    unsigned char control = 0;
    if (state->offset_carry) {
        usage_error("this direction's nonce space is exhausted");
        return -1;
    }
    if (rekey) {
        state->generation += 1;
        AeadObject *next = cipher_of(state, state->generation);
        if (next == NULL) return -1;
        Py_SETREF(state->cipher, next);
        control = CONTROL_REKEY;
    }
    if (seal_frame(state->cipher, state->offset, control, data, size, frame) < 0) return -1;
    advance(state, size + FRAME_OVERHEAD);
    return 0;
}

/* (data, rekey=False) of seal and seal_stream, positional or by keyword. */
static int data_and_rekey(const char *name, PyObject *const *args, Py_ssize_t count,
                          PyObject *keywords, PyObject **data, int *rekey) {
    PyObject *flag = NULL;
    *data = NULL;
    if (count > 2) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most 2 arguments (%zd given)", name, count);
        return -1;
    }
    if (count >= 1) *data = args[0];
    if (count == 2) flag = args[1];
    Py_ssize_t named = keywords == NULL ? 0 : PyTuple_GET_SIZE(keywords);
    for (Py_ssize_t i = 0; i < named; i++) {
        PyObject *keyword = PyTuple_GET_ITEM(keywords, i);
        if (flag == NULL && PyUnicode_CompareWithASCIIString(keyword, "rekey") == 0) {
            flag = args[count + i];
        } else if (*data == NULL && PyUnicode_CompareWithASCIIString(keyword, "data") == 0) {
            *data = args[count + i];
        } else {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", name,
                         keyword);
            return -1;
        }
    }
    if (*data == NULL) {
        PyErr_Format(PyExc_TypeError, "%s() missing required argument 'data'", name);
        return -1;
    }
    *rekey = flag == NULL ? 0 : PyObject_IsTrue(flag);
    return *rekey < 0 ? -1 : 0;
}

static PyObject *frame_sealer_seal(FrameSealerObject *self, PyObject *const *args,
                                   Py_ssize_t count, PyObject *keywords) {
    PyObject *data, *result = NULL;
    int rekey;
    Py_buffer view;
    if (data_and_rekey("seal", args, count, keywords, &data, &rekey) < 0) return NULL;
    if (sealer_ready(&self->state) < 0) return NULL;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) return NULL;
    if (view.len > self->state.limit) {
        usage_error("%zd bytes exceed the frame limit of %lld", view.len, self->state.limit);
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, view.len + FRAME_OVERHEAD);
    if (result == NULL) goto done;
    if (seal_one(&self->state, view.buf, (size_t)view.len, rekey,
                 (unsigned char *)PyBytes_AS_STRING(result)) < 0)
        Py_CLEAR(result);
done:
    PyBuffer_Release(&view);
    return result;
}

static PyObject *frame_sealer_seal_stream(FrameSealerObject *self, PyObject *const *args,
                                          Py_ssize_t count, PyObject *keywords) {
    PyObject *data, *result = NULL;
    int rekey;
    Py_buffer view;
    if (data_and_rekey("seal_stream", args, count, keywords, &data, &rekey) < 0) return NULL;
    if (sealer_ready(&self->state) < 0) return NULL;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) return NULL;
    Py_ssize_t size = view.len, limit = (Py_ssize_t)self->state.limit;
    Py_ssize_t frames = size > 0 ? (size - 1) / limit + 1 : (rekey ? 1 : 0);
    result = PyByteArray_FromStringAndSize(NULL, size + frames * FRAME_OVERHEAD);
    if (result == NULL) goto done;
    unsigned char *out = (unsigned char *)PyByteArray_AS_STRING(result);
    const unsigned char *in = view.buf;
    for (Py_ssize_t index = 0; index < frames; index++) {
        Py_ssize_t chunk = size - index * limit < limit ? size - index * limit : limit;
        if (seal_one(&self->state, in + index * limit, (size_t)chunk, rekey && index == 0,
                     out) < 0) {
            Py_CLEAR(result);
            break;
        }
        out += chunk + FRAME_OVERHEAD;
    }
done:
    PyBuffer_Release(&view);
    return result;
}

static PyObject *frame_sealer_max(FrameSealerObject *self, void *closure) {
    (void)closure;
    return PyLong_FromLongLong(self->state.limit);
}

static PyMethodDef frame_sealer_methods[] = {
    {"seal", (PyCFunction)(void (*)(void))frame_sealer_seal, METH_FASTCALL | METH_KEYWORDS,
     "seal(data, rekey=False) -> exactly one frame holding data; with rekey, the first frame "
     "under the next key"},
    {"seal_stream", (PyCFunction)(void (*)(void))frame_sealer_seal_stream,
     METH_FASTCALL | METH_KEYWORDS,
     "seal_stream(data, rekey=False) -> bytearray of the frames for data of any length (no "
     "data: no frame, unless rekey asks for one)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef frame_sealer_getset[] = {
    {"max_frame_plaintext", (getter)frame_sealer_max, NULL, "The most data bytes per frame",
     NULL},
    {"generation", (getter)get_generation, NULL, "The key generation of the last frame", NULL},
    {"offset", (getter)get_offset, NULL, "Bytes of frames sealed so far: the next nonce", NULL},
    {"_offset", (getter)get_offset, (setter)set_offset, "offset, settable (tests)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject FrameSealerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tcpcrypt.native._fastpath.FrameSealer",
    .tp_basicsize = sizeof(FrameSealerObject),
    .tp_dealloc = (destructor)frame_sealer_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "FrameSealer(aead, keys, max_frame_plaintext=16384): tcpcrypt/frames.py's "
              "FrameSealer with each call in C",
    .tp_traverse = (traverseproc)frame_sealer_traverse,
    .tp_clear = (inquiry)frame_sealer_clear,
    .tp_methods = frame_sealer_methods,
    .tp_getset = frame_sealer_getset,
    .tp_init = (initproc)frame_sealer_init,
    .tp_new = frame_sealer_new,
};

/* ---- the opener */

static PyObject *frame_opener_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    (void)args;
    (void)kwargs;
    return type->tp_alloc(type, 0);
}

static int frame_opener_init(FrameOpenerObject *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"aead", "keys", "max_ciphertext_length", NULL};
    if (self->feeding) {
        usage_error("the frame opener cannot be re-initialised from inside feed");
        return -1;
    }
    Py_CLEAR(self->next_cipher);
    self->pending_length = 0;
    self->dead = 0;
    return frame_state_init(&self->state, args, kwargs, "OO|O:FrameOpener", keywords,
                            MAX_FRAME_CIPHERTEXT, MIN_FRAME_CIPHERTEXT, 0);
}

static int frame_opener_traverse(FrameOpenerObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->next_cipher);
    return frame_state_traverse(&self->state, visit, arg);
}

static int frame_opener_clear(FrameOpenerObject *self) {
    Py_CLEAR(self->next_cipher);
    return frame_state_clear(&self->state);
}

static void frame_opener_dealloc(FrameOpenerObject *self) {
    PyObject_GC_UnTrack(self);
    frame_opener_clear(self);
    if (self->pending != NULL) {
        OPENSSL_cleanse(self->pending, (size_t)self->pending_capacity);
        PyMem_Free(self->pending);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);  /* a subclass's type: its own dealloc */
}

/* A control byte the frame's key does not allow: the Python classes' _bad_control. -1. */
static int bad_control(unsigned char control, int rekeyed) {
    char detail[32];
    if (control & (0xFF & ~CONTROL_REKEY)) {
        snprintf(detail, sizeof detail, "control byte 0x%02x", control);
        return peer_error(PEER_ERROR, "reserved-control-bits", detail);
    }
    return peer_error(PEER_ERROR, "bad-rekey",
                      rekeyed ? "a frame under the next key without the rekey flag"
                              : "a rekey flag on a frame under the current key");
}

/* frame-too-short / frame-too-long for a length field out of range, else 0. */
static int check_length(FrameOpenerObject *self, size_t length) {
    char detail[64];
    if (length < MIN_FRAME_CIPHERTEXT) {
        snprintf(detail, sizeof detail, "ciphertext length %zu", length);
        return peer_error(DECODE_ERROR, "frame-too-short", detail);
    }
    if ((long long)length > self->state.limit) {
        snprintf(detail, sizeof detail, "ciphertext length %zu > %lld", length,
                 self->state.limit);
        return peer_error(DECODE_ERROR, "frame-too-long", detail);
    }
    return 0;
}

/* Opens one whole frame and appends its data to `delivered`: under the current key, else
 * under the next one if it carries the rekey flag (the opener then moves to that key). */
static int open_one(FrameOpenerObject *self, const unsigned char *frame, size_t length,
                    PyObject *delivered) {
    FrameState *state = &self->state;
    char detail[64];
    unsigned char control = 0;
    if (state->offset_carry) {
        return peer_error(PEER_ERROR, "nonce-space-exhausted",
                          "a frame past the 64-bit offset");
    }
    PyObject *plaintext = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)length -
                                                                  MIN_FRAME_CIPHERTEXT);
    if (plaintext == NULL) return -1;
    unsigned char *data = (unsigned char *)PyByteArray_AS_STRING(plaintext);
    int outcome = open_frame(state->cipher, state->offset, frame, length, &control, data);
    if (outcome < 0) goto failed;
    if (outcome == 1) {
        if (self->next_cipher == NULL) {
            self->next_cipher = cipher_of(state, state->generation + 1);
            if (self->next_cipher == NULL) goto failed;
        }
        outcome = open_frame(self->next_cipher, state->offset, frame, length, &control, data);
        if (outcome < 0) goto failed;
        if (outcome == 1) {
            snprintf(detail, sizeof detail, "frame at offset %llu", state->offset);
            peer_error(AUTHENTICATION_ERROR, "bad-tag", detail);
            goto failed;
        }
        if (control != CONTROL_REKEY) {
            bad_control(control, 1);
            goto failed;
        }
        Py_SETREF(state->cipher, self->next_cipher);
        self->next_cipher = NULL;
        state->generation += 1;
    } else if (control != 0) {
        bad_control(control, 0);
        goto failed;
    }
    advance(state, FRAME_LENGTH_FIELD + length);
    outcome = PyList_Append(delivered, plaintext);
    Py_DECREF(plaintext);
    return outcome;
failed:
    Py_DECREF(plaintext);
    return -1;
}

static int keep_pending(FrameOpenerObject *self, const unsigned char *bytes, Py_ssize_t count) {
    Py_ssize_t needed = self->pending_length + count;
    if (needed > self->pending_capacity) {
        Py_ssize_t capacity = needed < 64 ? 64 : needed;
        unsigned char *grown = PyMem_Malloc((size_t)capacity);
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        if (self->pending != NULL) {
            memcpy(grown, self->pending, (size_t)self->pending_length);
            OPENSSL_cleanse(self->pending, (size_t)self->pending_capacity);
            PyMem_Free(self->pending);
        }
        self->pending = grown;
        self->pending_capacity = capacity;
    }
    memcpy(self->pending + self->pending_length, bytes, (size_t)count);
    self->pending_length = needed;
    return 0;
}

/* Phase one of feed: the incomplete frame kept from earlier calls, completed from `in` if it
 * can be. Returns the bytes of `in` used, or -1 with an exception. */
static Py_ssize_t complete_pending(FrameOpenerObject *self, const unsigned char *in,
                                   Py_ssize_t end, PyObject *delivered) {
    Py_ssize_t used = 0;
    if (self->pending_length < FRAME_LENGTH_FIELD) {
        used = FRAME_LENGTH_FIELD - self->pending_length;
        if (used > end) used = end;
        if (keep_pending(self, in, used) < 0) return -1;
        if (self->pending_length < FRAME_LENGTH_FIELD) return used;
    }
    size_t length = ((size_t)self->pending[0] << 8) | self->pending[1];
    if (check_length(self, length) < 0) return -1;
    Py_ssize_t missing = (Py_ssize_t)(FRAME_LENGTH_FIELD + length) - self->pending_length;
    Py_ssize_t take = missing < end - used ? missing : end - used;
    if (keep_pending(self, in + used, take) < 0) return -1;
    used += take;
    if (take == missing) {
        if (open_one(self, self->pending, length, delivered) < 0) return -1;
        self->pending_length = 0;
    }
    return used;
}

static PyObject *frame_opener_feed(FrameOpenerObject *self, PyObject *data) {
    Py_buffer view;
    if (self->dead)
        return usage_error("the frame opener failed earlier and accepts no more input");
    if (self->state.cipher == NULL) return usage_error("the frame opener was not initialised");
    if (self->feeding) return usage_error("feed called from inside feed (a keys() callback)");
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) return NULL;
    self->feeding = 1;
    const unsigned char *in = view.buf;
    Py_ssize_t end = view.len, position = 0;
    PyObject *delivered = PyList_New(0);
    if (delivered == NULL) goto failed;
    if (self->pending_length > 0) {
        position = complete_pending(self, in, end, delivered);
        if (position < 0) goto failed;
        if (self->pending_length > 0) goto done;  /* every byte went to the pending frame */
    }
    while (end - position >= FRAME_LENGTH_FIELD) {
        size_t length = ((size_t)in[position] << 8) | in[position + 1];
        if (check_length(self, length) < 0) goto failed;
        if ((size_t)(end - position) < FRAME_LENGTH_FIELD + length) break;
        if (open_one(self, in + position, length, delivered) < 0) goto failed;
        position += FRAME_LENGTH_FIELD + (Py_ssize_t)length;
    }
    if (position < end && keep_pending(self, in + position, end - position) < 0) goto failed;
done:
    self->feeding = 0;
    PyBuffer_Release(&view);
    return delivered;
failed:
    /* As in Python: the pending bytes are gone, and a PeerError leaves the opener dead. */
    self->feeding = 0;
    PyBuffer_Release(&view);
    Py_XDECREF(delivered);
    self->pending_length = 0;
    if (load_errors() == 0 && PyErr_ExceptionMatches(error_classes[PEER_ERROR])) self->dead = 1;
    return NULL;
}

static PyObject *frame_opener_buffered(FrameOpenerObject *self, void *closure) {
    (void)closure;
    return PyLong_FromSsize_t(self->pending_length);
}

static PyObject *frame_opener_get_max(FrameOpenerObject *self, void *closure) {
    (void)closure;
    return PyLong_FromLongLong(self->state.limit);
}

static int frame_opener_set_max(FrameOpenerObject *self, PyObject *value, void *closure) {
    (void)closure;
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "max_ciphertext_length cannot be deleted");
        return -1;
    }
    int overflow = 0;
    long long limit = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (limit == -1 && PyErr_Occurred()) return -1;
    self->state.limit = overflow > 0 ? LLONG_MAX : overflow < 0 ? LLONG_MIN : limit;
    return 0;
}

static PyMethodDef frame_opener_methods[] = {
    {"feed", (PyCFunction)frame_opener_feed, METH_O,
     "feed(data) -> list of bytearray: the data of every frame that data completes, in order"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef frame_opener_getset[] = {
    {"generation", (getter)get_generation, NULL, "The key generation of the last frame", NULL},
    {"offset", (getter)get_offset, NULL, "Bytes of frames opened so far", NULL},
    {"_offset", (getter)get_offset, (setter)set_offset, "offset, settable (tests)", NULL},
    {"buffered", (getter)frame_opener_buffered, NULL, "Bytes of an incomplete frame held",
     NULL},
    {"max_ciphertext_length", (getter)frame_opener_get_max, (setter)frame_opener_set_max,
     "The longest length field accepted", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject FrameOpenerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tcpcrypt.native._fastpath.FrameOpener",
    .tp_basicsize = sizeof(FrameOpenerObject),
    .tp_dealloc = (destructor)frame_opener_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "FrameOpener(aead, keys, max_ciphertext_length=65535): tcpcrypt/frames.py's "
              "FrameOpener with each call in C",
    .tp_traverse = (traverseproc)frame_opener_traverse,
    .tp_clear = (inquiry)frame_opener_clear,
    .tp_methods = frame_opener_methods,
    .tp_getset = frame_opener_getset,
    .tp_init = (initproc)frame_opener_init,
    .tp_new = frame_opener_new,
};

static PyMethodDef methods[] = {
    {"aead_cipher", aead_cipher, METH_VARARGS,
     "aead_cipher(kind, key) -> a keyed AEAD (kind 0 AES-GCM, 1 ChaCha20-Poly1305) with "
     "cryptography's encrypt/decrypt(_into) calls"},
    {"b_init1_x25519", b_init1_x25519, METH_VARARGS,
     "b_init1_x25519(buffer, our_aead_ids, random, transcript) -> (used, AEAD id, Init2, "
     "ss[0]) or None (the Python path then handles the same bytes)"},
    {"bpf_lookup", bpf_lookup, METH_VARARGS,
     "bpf_lookup(map_fd, key, value_size) -> the value, or None (ENOENT); OSError otherwise"},
    {"bpf_update", bpf_update, METH_VARARGS,
     "bpf_update(map_fd, key, value, flags) -> None; OSError when the kernel refuses"},
    {"session_keys", session_keys, METH_VARARGS,
     "session_keys(ss, tep, key_length, with_next) -> (session ID, mk[0], k_ab[0], k_ba[0], "
     "ss[i+1] or None, A's resumption id or None, B's resumption id or None)"},
    {"extract", extract, METH_VARARGS, "extract(salt, ikm) -> HKDF-Extract with SHA-256"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "tcpcrypt.native._fastpath",
    "The tcpcrypt key schedule's per-connection derivations in C (see tcpcrypt/native).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastpath(void) {
    if (PyType_Ready(&AeadType) < 0 || PyType_Ready(&FrameSealerType) < 0 ||
        PyType_Ready(&FrameOpenerType) < 0)
        return NULL;
    PyObject *created = PyModule_Create(&module);
    if (created == NULL) return NULL;
    Py_INCREF(&FrameSealerType);
    if (PyModule_AddObject(created, "FrameSealer", (PyObject *)&FrameSealerType) < 0) {
        Py_DECREF(&FrameSealerType);
        Py_DECREF(created);
        return NULL;
    }
    Py_INCREF(&FrameOpenerType);
    if (PyModule_AddObject(created, "FrameOpener", (PyObject *)&FrameOpenerType) < 0) {
        Py_DECREF(&FrameOpenerType);
        Py_DECREF(created);
        return NULL;
    }
    return created;
}
