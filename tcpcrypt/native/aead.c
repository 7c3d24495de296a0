/* AEAD ciphers for frames: the same calls as cryptography's AESGCM / ChaCha20Poly1305
 * (encrypt, encrypt_into, decrypt, decrypt_into; a failed tag raises
 * cryptography.exceptions.InvalidTag), on libcrypto's EVP with each algorithm fetched once
 * per process and the key set up once per object: a connection makes two of these (one per
 * direction), where `cryptography` fetched the algorithm and copied a context per object and
 * per call. 16-byte tags; nonces of 12 bytes (every frame's), or for AES-GCM 8 to 128 bytes
 * as `cryptography` allows (the drafts' frames use 8). */
#include "fastpath.h"

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


/* aead_cipher(kind, key): kind 0 AES-GCM (16- or 32-byte key), 1 ChaCha20-Poly1305. */
PyObject *aead_cipher(PyObject *module, PyObject *args) {
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

EVP_CIPHER_CTX *aead_keyed(AeadObject *self, int encrypting) {
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
    EVP_CIPHER_CTX *context = aead_keyed(self, encrypting);
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

PyTypeObject AeadType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tcpcrypt.native._fastpath.Aead",
    .tp_basicsize = sizeof(AeadObject),
    .tp_dealloc = (destructor)aead_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A keyed AEAD (AES-GCM or ChaCha20-Poly1305) on libcrypto's EVP",
    .tp_methods = aead_methods,
};
