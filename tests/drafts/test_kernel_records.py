"""The kernel program's records take the drafts' profile per socket: A by its SYN option's
kind (253 with the ExID), a listener by its draft flag."""

from __future__ import annotations

import pytest

from tcpcrypt.drafts import eno03
from tcpcrypt.errors import UsageError
from tcpcrypt.kernel import records


def test_active_record_takes_a_kind_253_option_with_its_exid() -> None:
    raw = records.encode_active(eno03.encode_option([0x21]))
    decoded = records.decode_sock(raw)
    assert decoded.syn_option == bytes.fromhex("fd05454e21")


@pytest.mark.parametrize("option", [bytes.fromhex("fd02"), bytes.fromhex("fd05454f21"),
                                    bytes.fromhex("fe05454e21")])
def test_active_record_refuses_kind_253_without_enos_exid(option: bytes) -> None:
    with pytest.raises(UsageError):
        records.encode_active(option)


def test_listener_record_carries_the_draft_flag() -> None:
    plain = records.SOCK_FORMAT.unpack(records.encode_listener([0x21]))
    draft = records.SOCK_FORMAT.unpack(records.encode_listener([0x21], draft=True))
    assert plain[7] == 0 and draft[7] == records.FLAG_DRAFT
