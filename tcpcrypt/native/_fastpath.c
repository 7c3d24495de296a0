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
 * bpf_lookup(map_fd, key, value_size) and bpf_update(map_fd, key, value, flags) are the two
 * bpf(2) map calls a connection makes (its negotiation record, A's opt-in, B's resumption
 * entry) without ctypes' per-call buffers; tcpcrypt/kernel/bpf_syscall.py is the reference.
 * The pure-Python module tcpcrypt/key_schedule.py is the reference; the tests compare both.
 */
#define PY_SSIZE_T_CLEAN
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init & co: no per-call algorithm fetch */
#include <Python.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <errno.h>
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

PyMODINIT_FUNC PyInit__fastpath(void) { return PyModule_Create(&module); }
