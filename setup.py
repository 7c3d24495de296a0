"""The one compiled part of the package: tcpcrypt.native._fastpath (the per-connection key
schedule, B's X25519 exchange, the frames' AEAD and the frames in C, linked against
libcrypto; three C files, one extension). Optional: when it cannot be built (no compiler, no
OpenSSL headers), the install goes on and the library uses the pure-Python key schedule,
saying so once (tcpcrypt/native/__init__.py). Everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "tcpcrypt.native._fastpath",
            sources=["tcpcrypt/native/_fastpath.c", "tcpcrypt/native/aead.c",
                     "tcpcrypt/native/frames.c"],
            depends=["tcpcrypt/native/fastpath.h"],
            libraries=["crypto"],
            extra_compile_args=["-O2", "-Wall"],
            optional=True,
        )
    ]
)
