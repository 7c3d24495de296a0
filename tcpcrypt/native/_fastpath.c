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
#include "fastpath.h"
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
static PyObject *name_public_key = NULL, *name_public_bytes_raw = NULL, *name_exchange = NULL;

/* The key objects' constructors: the binding functions that the public classmethods
 * (X25519PrivateKey.from_private_bytes, X25519PublicKey.from_public_bytes) call after asking
 * the backend whether X25519 is supported, an import and a question per call; asked here once.
 * Where the binding module is not where this `cryptography` keeps it, the classmethods.
 * Looked up when the module is imported (under the import lock, before any thread can call
 * b_init1_x25519: a lookup on first use raced between a server's threads). */
static int x25519_constructors(void) {
    PyObject *backend_module = PyImport_ImportModule(
        "cryptography.hazmat.backends.openssl.backend");
    if (backend_module == NULL) return -1;
    PyObject *backend = PyObject_GetAttrString(backend_module, "backend");
    Py_DECREF(backend_module);
    if (backend == NULL) return -1;
    PyObject *supported = PyObject_CallMethod(backend, "x25519_supported", NULL);
    Py_DECREF(backend);
    if (supported == NULL) return -1;
    int yes = PyObject_IsTrue(supported);
    Py_DECREF(supported);
    if (yes < 0) return -1;
    if (yes) {  /* (unsupported: the classmethods below raise what the Python path raises) */
        /* _rust is an extension module whose submodules are attributes, not a package */
        PyObject *rust = PyImport_ImportModule("cryptography.hazmat.bindings._rust");
        PyObject *openssl = rust != NULL ? PyObject_GetAttrString(rust, "openssl") : NULL;
        PyObject *binding = openssl != NULL ? PyObject_GetAttrString(openssl, "x25519") : NULL;
        Py_XDECREF(openssl);
        Py_XDECREF(rust);
        if (binding != NULL) {
            x25519_private_from_bytes = PyObject_GetAttrString(binding, "from_private_bytes");
            x25519_public_from_bytes = PyObject_GetAttrString(binding, "from_public_bytes");
            Py_DECREF(binding);
        }
        if (x25519_private_from_bytes != NULL && x25519_public_from_bytes != NULL) return 0;
        PyErr_Clear();
        Py_CLEAR(x25519_private_from_bytes);
        Py_CLEAR(x25519_public_from_bytes);
    }
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
    return x25519_private_from_bytes != NULL && x25519_public_from_bytes != NULL ? 0 : -1;
}

/* 0 when loaded; -1 (no exception left) when X25519 cannot be called from here: then
 * b_init1_x25519 returns None and the Python path runs. */
static int x25519_load(void) {
    name_public_key = PyUnicode_InternFromString("public_key");
    name_public_bytes_raw = PyUnicode_InternFromString("public_bytes_raw");
    PyObject *exchange = PyUnicode_InternFromString("exchange");
    if (name_public_key != NULL && name_public_bytes_raw != NULL && exchange != NULL &&
        x25519_constructors() == 0) {
        name_exchange = exchange;
        return 0;
    }
    Py_CLEAR(x25519_private_from_bytes);
    Py_CLEAR(x25519_public_from_bytes);
    Py_CLEAR(name_public_key);
    Py_CLEAR(name_public_bytes_raw);
    Py_XDECREF(exchange);
    PyErr_Clear();
    return -1;
}

/* Copies a 32-byte bytes object into `out`; -1 when it is anything else. */
static int take_32(PyObject *value, unsigned char out[32]) {
    if (value == NULL || !PyBytes_Check(value) || PyBytes_GET_SIZE(value) != 32) return -1;
    memcpy(out, PyBytes_AS_STRING(value), 32);
    return 0;
}

/* PK_B and ES from B's private key and PK_A: 0 on success; 1 when the library refuses (a
 * low-order point: the Python path then says so) or when the key objects could not be
 * looked up at import (the Python path then runs), with no exception left; -1 with a Python
 * exception for anything else (out of memory). */
static int x25519_respond(const unsigned char private_key[32], const unsigned char *peer,
                          unsigned char public_key[32], unsigned char shared[32]) {
    if (name_exchange == NULL) return 1;  /* not loaded at import: the Python path */
    int ok = -1;
    PyObject *own = NULL, *own_public = NULL, *raw = NULL, *theirs = NULL, *secret = NULL;
    PyObject *peer_bytes = NULL;
    raw = PyBytes_FromStringAndSize((const char *)private_key, 32);
    if (raw == NULL) goto done;
    own = PyObject_CallOneArg(x25519_private_from_bytes, raw);
    if (Py_REFCNT(raw) == 1)  /* only ours: the private key is wiped before it is freed */
        OPENSSL_cleanse(PyBytes_AS_STRING(raw), 32);
    Py_CLEAR(raw);
    if (own == NULL) goto done;
    own_public = PyObject_CallMethodNoArgs(own, name_public_key);
    if (own_public == NULL) goto done;
    raw = PyObject_CallMethodNoArgs(own_public, name_public_bytes_raw);
    if (raw == NULL) goto done;
    if (take_32(raw, public_key) < 0) {
        PyErr_SetString(PyExc_ValueError, "b_init1_x25519: PK_B is not 32 bytes");
        goto done;
    }
    peer_bytes = PyBytes_FromStringAndSize((const char *)peer, 32);
    if (peer_bytes == NULL) goto done;
    theirs = PyObject_CallOneArg(x25519_public_from_bytes, peer_bytes);
    if (theirs == NULL) goto done;
    secret = PyObject_CallMethodOneArg(own, name_exchange, theirs);
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
    Py_XDECREF(peer_bytes);
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
    x25519_load();
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
