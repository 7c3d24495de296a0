/* Frames (RFC 8548): FrameSealer and FrameOpener of tcpcrypt/frames.py with each call in C.
 * tcpcrypt/frames.py's pure-Python classes are the reference and document the format:
 *   frame = length (2, big-endian) | AEAD(control byte | data) | tag (16), AD = the length
 *   field, nonce = FRAME_NONCE_MAGIC (4) | offset (8), the offset counting whole frames.
 * Every check, its order, the reason strings and the state left behind by an error are those
 * of the Python classes (tests/protocol/test_native_frames.py compares both). Keys of the next
 * generation come from the same Python calls, keys(j) and then aead.new(key), which must give
 * an `Aead` of this module. The errors are tcpcrypt.errors' classes, imported on first use. */
#include "fastpath.h"

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
    EVP_CIPHER_CTX *context = aead_keyed(cipher, encrypting);
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

PyTypeObject FrameSealerType = {
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

PyTypeObject FrameOpenerType = {
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
