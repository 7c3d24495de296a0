"""The key log is created safely and holds only what decrypts its own session (issue 10)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tcpcrypt.aead import aead_by_name
from tcpcrypt.daemon.keylog import KeyLog, KeyLogError, keylog_line
from tcpcrypt.key_schedule import KeyChain
from tcpcrypt.pair import connect_pair
from tcpcrypt.randomness import seeded_random


def test_new_key_log_is_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        KeyLog(tmp_path / "keys").close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o600


def test_symlinked_key_log_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("precious\n")
    target.chmod(0o600)
    (tmp_path / "keys").symlink_to(target)
    with pytest.raises(KeyLogError, match="symbolic link"):
        KeyLog(tmp_path / "keys")
    assert target.read_text() == "precious\n"


def test_existing_key_log_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("")
    path.chmod(0o644)
    with pytest.raises(KeyLogError, match="0644"):
        KeyLog(path)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_existing_key_log_of_another_owner_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("")
    path.chmod(0o600)
    os.chown(path, 65534, 65534)
    with pytest.raises(KeyLogError, match="owned by uid 65534"):
        KeyLog(path)


def test_key_log_line_holds_the_sessions_master_key_not_its_secret() -> None:
    first = connect_pair(random_a=seeded_random(1), random_b=seeded_random(2))
    connection = first.a.connection
    assert connection.secret is not None and connection.aead is not None
    label, session_id, master_key, aead_id = keylog_line(connection).split()
    assert label == "TCPCRYPT_MK0"
    assert session_id == (connection.session_id or b"").hex()
    assert bytes.fromhex(master_key) == connection.secret.first_master_key()
    assert int(aead_id, 16) == aead_by_name(connection.aead).wire_id
    assert connection.secret.value.hex() not in keylog_line(connection)
    # what the line gives: every traffic key of this session, rekeyed ones included; not ss,
    # from which every later resumed session's keys follow
    chain = KeyChain(bytes.fromhex(master_key), aead_by_name(connection.aead).key_length)
    assert chain.key_ab(3) == connection.secret.key_chain(chain.key_length).key_ab(3)
