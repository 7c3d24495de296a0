"""The few bpf(2) commands userspace needs, through ctypes: open a pinned map, look up, update
and delete an element. No libbpf binding: map keys and values are plain bytes here, laid out by
`tcpcrypt.kernel.records`. Lookups and updates (what each connection makes) go through the C
fast path (`tcpcrypt.native`) when it is built, with the same results and errors."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import platform
import struct
import sys
from collections.abc import Callable
from typing import Final

from tcpcrypt.native import bpf_lookup as _native_lookup
from tcpcrypt.native import bpf_update as _native_update

# bpf(2) command numbers (include/uapi/linux/bpf.h).
BPF_MAP_LOOKUP_ELEM: Final = 1
BPF_MAP_UPDATE_ELEM: Final = 2
BPF_MAP_DELETE_ELEM: Final = 3
BPF_MAP_GET_NEXT_KEY: Final = 4
BPF_OBJ_GET: Final = 7
BPF_ANY: Final = 0
BPF_NOEXIST: Final = 1

_SYSCALL_NUMBERS: Final = {"x86_64": 321, "aarch64": 280, "armv7l": 386, "riscv64": 280}
_ATTR_SIZE: Final = 128  # larger than every command's part of union bpf_attr used here


class BpfError(OSError):
    """A bpf(2) call failed; errno and a one-line message say which call."""


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.syscall.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint]


_NUMBER = _SYSCALL_NUMBERS.get(platform.machine())
_ELEMENT = struct.Struct("=I4xQQQ")  # map_fd, key pointer, value pointer, flags


def native_lookup() -> Callable[[int, bytes, int], bytes | None] | None:
    """The C fast path's lookup (map fd, key, value size -> value or None; OSError when the
    kernel refuses, see `refused`), when it is built and bpf(2) is known here: a caller that
    calls it directly needs no lock (it shares no buffers) and no Python frame."""
    return _native_lookup if _NUMBER is not None else None


def refused(error: OSError, what: str) -> BpfError:
    """`_refused` for callers of `native_lookup`."""
    return _refused(error, what)


def _refused(error: OSError, what: str) -> BpfError:
    """The C fast path's OSError as the BpfError the ctypes path raises."""
    code = error.errno or errno.EIO
    return BpfError(code, f"{what}: {os.strerror(code)}")


def _bpf(command: int, attr: ctypes.Array[ctypes.c_char], what: str) -> int:
    if _NUMBER is None:
        raise BpfError(errno.ENOSYS, f"bpf(2): unknown syscall number on {platform.machine()}")
    result = int(_libc.syscall(_NUMBER, command, attr, _ATTR_SIZE))
    if result < 0:
        code = ctypes.get_errno()
        raise BpfError(code, f"{what}: {os.strerror(code)}")
    return result


def _attr(*fields: tuple[int, int, int]) -> ctypes.Array[ctypes.c_char]:
    """A zeroed bpf_attr with (offset, size, value) fields in native byte order."""
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    for offset, size, value in fields:
        ctypes.memmove(ctypes.addressof(attr) + offset, value.to_bytes(size, sys.byteorder), size)
    return attr


def obj_get(path: str) -> int:
    """The fd of a pinned BPF object (BPF_OBJ_GET); the caller closes it."""
    name = ctypes.create_string_buffer(os.fsencode(path))
    attr = _attr((0, 8, ctypes.addressof(name)))
    return _bpf(BPF_OBJ_GET, attr, f"open pinned {path}")


def _key_value(map_fd: int, key: bytes, value: ctypes.Array[ctypes.c_char] | None,
               flags: int) -> tuple[ctypes.Array[ctypes.c_char], ctypes.Array[ctypes.c_char]]:
    key_buffer = ctypes.create_string_buffer(key, len(key))
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    _ELEMENT.pack_into(attr, 0, map_fd, ctypes.addressof(key_buffer),
                       ctypes.addressof(value) if value is not None else 0, flags)
    return attr, key_buffer


def lookup(map_fd: int, key: bytes, value_size: int) -> bytes | None:
    """The value under `key`, or None when there is none (ENOENT)."""
    if _native_lookup is not None:
        try:
            return _native_lookup(map_fd, key, value_size)
        except OSError as error:
            raise _refused(error, "map lookup") from None
    value = ctypes.create_string_buffer(value_size)
    attr, _keep = _key_value(map_fd, key, value, 0)
    try:
        _bpf(BPF_MAP_LOOKUP_ELEM, attr, "map lookup")
    except BpfError as error:
        if error.errno == errno.ENOENT:
            return None
        raise
    return value.raw


class Lookup:
    """Repeated lookups in one map with keys of one size: the buffers and the bpf_attr are
    built once and reused (one bpf(2) call and no allocation but the result per lookup).
    Not thread-safe on its own: the caller serialises calls."""

    def __init__(self, map_fd: int, key_size: int, value_size: int) -> None:
        self._key = ctypes.create_string_buffer(key_size)
        self._value = ctypes.create_string_buffer(value_size)
        self._attr = ctypes.create_string_buffer(_ATTR_SIZE)
        _ELEMENT.pack_into(self._attr, 0, map_fd, ctypes.addressof(self._key),
                           ctypes.addressof(self._value), 0)
        self._key_size = key_size
        self._value_size = value_size
        self._map_fd = map_fd
        self._syscall = _libc.syscall

    def __call__(self, key: bytes) -> bytes | None:
        """The value under `key` (exactly the key size), or None when there is none."""
        if len(key) != self._key_size or _NUMBER is None:
            raise BpfError(errno.EINVAL, f"map lookup: a {self._key_size}-byte key is needed")
        if _native_lookup is not None:
            try:
                return _native_lookup(self._map_fd, key, self._value_size)
            except OSError as error:
                raise _refused(error, "map lookup") from None
        self._key.raw = key
        if self._syscall(_NUMBER, BPF_MAP_LOOKUP_ELEM, self._attr, _ATTR_SIZE) < 0:
            code = ctypes.get_errno()
            if code == errno.ENOENT:
                return None
            raise BpfError(code, f"map lookup: {os.strerror(code)}")
        return self._value.raw


def update(map_fd: int, key: bytes, value: bytes, flags: int = BPF_ANY) -> None:
    """Write `value` under `key` (BPF_ANY: create or replace; BPF_NOEXIST: create only)."""
    if _native_update is not None:
        try:
            return _native_update(map_fd, key, value, flags)
        except OSError as error:
            raise _refused(error, "map update") from None
    buffer = ctypes.create_string_buffer(value, len(value))
    attr, _keep = _key_value(map_fd, key, buffer, flags)
    _bpf(BPF_MAP_UPDATE_ELEM, attr, "map update")


def delete(map_fd: int, key: bytes) -> bool:
    """Remove the element under `key`; False when there was none."""
    attr, _keep = _key_value(map_fd, key, None, 0)
    try:
        _bpf(BPF_MAP_DELETE_ELEM, attr, "map delete")
    except BpfError as error:
        if error.errno == errno.ENOENT:
            return False
        raise
    return True


def keys(map_fd: int, key_size: int) -> list[bytes]:
    """Every key of a hash or array map (BPF_MAP_GET_NEXT_KEY from the start)."""
    found: list[bytes] = []
    current: bytes | None = None
    while True:
        next_key = ctypes.create_string_buffer(key_size)
        fields = [(0, 4, map_fd), (16, 8, ctypes.addressof(next_key))]
        key_buffer = None
        if current is not None:
            key_buffer = ctypes.create_string_buffer(current, key_size)
            fields.append((8, 8, ctypes.addressof(key_buffer)))
        try:
            _bpf(BPF_MAP_GET_NEXT_KEY, _attr(*fields), "map key walk")
        except BpfError as error:
            if error.errno == errno.ENOENT:
                return found
            raise
        current = next_key.raw
        found.append(current)


def possible_cpus() -> int:
    """How many values a per-CPU map holds per key (the kernel's possible CPUs)."""
    with open("/sys/devices/system/cpu/possible") as listing:
        text = listing.read().strip()
    total = 0
    for part in text.split(","):
        low, _, high = part.partition("-")
        total += (int(high) if high else int(low)) - int(low) + 1
    return total
