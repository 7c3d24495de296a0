"""A netfilter queue (NFQUEUE) over a raw netlink socket: receive queued packets, give verdicts.

Written against the kernel's nfnetlink_queue message formats, without libnetfilter_queue, so
that the socket can sit in an asyncio loop (`fileno`, non-blocking `receive`) and verdicts can
carry a rewritten packet. GSO is not requested: the kernel then resolves partial checksums and
segments before queueing, so a queued packet has a complete checksum that the daemon can
recompute after adding an option. The queue is configured fail-open: when it is full, the
kernel accepts packets instead of dropping them.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from dataclasses import dataclass
from typing import Final

NETLINK_NETFILTER: Final = 12
NFNL_SUBSYS_QUEUE: Final = 3
NFQNL_MSG_PACKET: Final = 0
NFQNL_MSG_VERDICT: Final = 1
NFQNL_MSG_CONFIG: Final = 2
NLMSG_ERROR: Final = 2
NLMSG_DONE: Final = 3
NLM_F_REQUEST: Final = 1
NLM_F_ACK: Final = 4

NFQA_CFG_CMD: Final = 1
NFQA_CFG_PARAMS: Final = 2
NFQA_CFG_QUEUE_MAXLEN: Final = 3
NFQA_CFG_MASK: Final = 4
NFQA_CFG_FLAGS: Final = 5
NFQA_CFG_F_FAIL_OPEN: Final = 1
NFQNL_CFG_CMD_BIND: Final = 1
NFQNL_CFG_CMD_UNBIND: Final = 2
NFQNL_COPY_PACKET: Final = 2

NFQA_PACKET_HDR: Final = 1
NFQA_VERDICT_HDR: Final = 2
NFQA_MARK: Final = 3
NFQA_PAYLOAD: Final = 10

NF_DROP: Final = 0
NF_ACCEPT: Final = 1

HOOK_PRE_ROUTING: Final = 0
HOOK_LOCAL_IN: Final = 1
HOOK_FORWARD: Final = 2
HOOK_LOCAL_OUT: Final = 3
HOOK_POST_ROUTING: Final = 4

_NLMSGHDR = struct.Struct("=IHHII")
_NFGENMSG = struct.Struct("!BBH")
_NLATTR = struct.Struct("=HH")
_ATTR_TYPE_MASK = 0x3FFF


class NfQueueError(OSError):
    """The queue could not be bound or configured (no permission, module missing, in use)."""


@dataclass(frozen=True, slots=True)
class QueuedPacket:
    """One packet the kernel holds until it gets a verdict."""

    packet_id: int
    hook: int
    payload: bytes


def _attribute(kind: int, value: bytes) -> bytes:
    length = _NLATTR.size + len(value)
    return _NLATTR.pack(length, kind) + value + b"\x00" * (-length % 4)


def _parse_attributes(data: bytes | memoryview) -> dict[int, memoryview]:
    view = memoryview(data)
    attributes: dict[int, memoryview] = {}
    position = 0
    while position + _NLATTR.size <= len(view):
        length, kind = _NLATTR.unpack_from(view, position)
        if length < _NLATTR.size or position + length > len(view):
            break
        attributes[kind & _ATTR_TYPE_MASK] = view[position + _NLATTR.size : position + length]
        position += (length + 3) & ~3
    return attributes


class NfQueue:
    """One bound queue number. Not thread-safe; owned by one event loop."""

    def __init__(self, queue_num: int, *, max_length: int = 4096, copy_range: int = 0xFFFF):
        if not 0 <= queue_num <= 0xFFFF:
            raise ValueError(f"queue number {queue_num} is not 0..65535")
        self.queue_num = queue_num
        self._sequence = 0
        self._socket = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self._socket.bind((0, 0))
            self._socket.settimeout(2.0)
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
            self._configure(_attribute(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, 0)))
            self._configure(
                _attribute(NFQA_CFG_PARAMS, struct.pack("!IB", copy_range, NFQNL_COPY_PACKET))
                + _attribute(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", max_length))
                + _attribute(NFQA_CFG_MASK, struct.pack("!I", NFQA_CFG_F_FAIL_OPEN))
                + _attribute(NFQA_CFG_FLAGS, struct.pack("!I", NFQA_CFG_F_FAIL_OPEN))
            )
        except OSError as error:
            self._socket.close()
            raise NfQueueError(error.errno, f"cannot bind NFQUEUE {queue_num}: {error}") from None
        self._socket.setblocking(False)

    def fileno(self) -> int:
        return self._socket.fileno()

    def _message(self, kind: int, flags: int, body: bytes) -> bytes:
        self._sequence += 1
        header = _NFGENMSG.pack(socket.AF_UNSPEC, 0, self.queue_num)
        length = _NLMSGHDR.size + len(header) + len(body)
        return _NLMSGHDR.pack(
            length, (NFNL_SUBSYS_QUEUE << 8) | kind, flags, self._sequence, 0
        ) + header + body

    def _configure(self, attributes: bytes) -> None:
        """Send a config message and wait for the kernel's acknowledgement."""
        self._socket.send(
            self._message(NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, attributes)
        )
        sequence = self._sequence
        while True:
            data = self._socket.recv(65536)
            for kind, seq, body in self._messages(data):
                if kind == NLMSG_ERROR and seq == sequence:
                    code = -struct.unpack_from("=i", body)[0]
                    if code:
                        raise OSError(code, os.strerror(code))
                    return

    @staticmethod
    def _messages(data: bytes) -> list[tuple[int, int, memoryview]]:
        view = memoryview(data)
        messages = []
        position = 0
        while position + _NLMSGHDR.size <= len(view):
            length, kind, _flags, seq, _pid = _NLMSGHDR.unpack_from(view, position)
            if length < _NLMSGHDR.size or position + length > len(view):
                break
            messages.append((kind, seq, view[position + _NLMSGHDR.size : position + length]))
            position += (length + 3) & ~3
        return messages

    def receive(self, limit: int = 256) -> list[QueuedPacket]:
        """Packets waiting now (up to `limit` netlink reads); [] when there are none."""
        packets: list[QueuedPacket] = []
        for _ in range(limit):
            try:
                data = self._socket.recv(262144)
            except BlockingIOError:
                break
            except OSError as error:
                if error.errno == errno.ENOBUFS:  # the kernel dropped messages: keep going
                    continue
                raise
            for kind, _seq, body in self._messages(data):
                if kind != (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                    continue
                attributes = _parse_attributes(body[_NFGENMSG.size :])
                header = attributes.get(NFQA_PACKET_HDR)
                payload = attributes.get(NFQA_PAYLOAD)
                if header is None or len(header) < 7:
                    continue
                packet_id, _protocol, hook = struct.unpack_from("!IHB", header)
                packets.append(
                    QueuedPacket(packet_id, hook, bytes(payload) if payload is not None else b"")
                )
        return packets

    def verdict(self, packet_id: int, accept: bool = True, payload: bytes | None = None) -> None:
        """Release (or drop) a packet, optionally replacing its bytes."""
        attributes = _attribute(
            NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT if accept else NF_DROP, packet_id)
        )
        if payload is not None:
            attributes += _attribute(NFQA_PAYLOAD, payload)
        message = self._message(NFQNL_MSG_VERDICT, NLM_F_REQUEST, attributes)
        while True:
            try:
                self._socket.send(message)
                return
            except BlockingIOError:
                continue

    def close(self) -> None:
        try:
            self._socket.setblocking(True)
            self._socket.settimeout(1.0)
            self._configure(
                _attribute(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_UNBIND, 0))
            )
        except OSError:
            pass
        finally:
            self._socket.close()
