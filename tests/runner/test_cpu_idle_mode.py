"""The emulation's idle-CPU mode: polling unless asked otherwise, an unknown mode refused,
and a device that cannot be opened leaves the machine's own idle behaviour, said so."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.emulation.cpu_idle import idle_cpus_polling, requested_mode


def test_polling_is_the_default_and_default_can_be_asked_for(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TESTBED_CPU_IDLE", raising=False)
    assert requested_mode() == "poll"
    monkeypatch.setenv("TESTBED_CPU_IDLE", "default")
    with idle_cpus_polling(Path("/nonexistent/device")) as mode:
        assert mode == "default (TESTBED_CPU_IDLE=default)"


def test_an_unknown_mode_is_refused_with_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTBED_CPU_IDLE", "c6")
    with pytest.raises(ValueError, match="poll, default"):
        requested_mode()


def test_a_device_that_cannot_be_opened_says_why(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.delenv("TESTBED_CPU_IDLE", raising=False)
    with idle_cpus_polling(tmp_path / "missing") as mode:
        assert mode.startswith("default (") and "not writable" in mode
