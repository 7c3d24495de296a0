"""What the connections of one configuration share, built once instead of per connection:
the AEAD specs and wire identifiers (`tables`), the key-agreement suites by TEP
(`suite_table`, which a caller opening many connections passes to each) and the plain TEP
offers (`plain_offers`)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from tcpcrypt.aead import AeadSpec, aead_by_name
from tcpcrypt.config import TcpcryptConfig
from tcpcrypt.eno_option import TepSuboption
from tcpcrypt.suites import KeyAgreementSuite, RsaKeyHolder, get_suite


@dataclass(frozen=True, slots=True)
class ConfigTables:
    """What every connection of one configuration looks up: its AEADs (preference order)
    and their wire identifiers."""

    aeads: tuple[AeadSpec, ...]
    aead_ids: tuple[int, ...]


@functools.lru_cache(maxsize=64)
def tables(config: TcpcryptConfig) -> ConfigTables:
    aeads = tuple(aead_by_name(name) for name in config.aeads)
    return ConfigTables(aeads, tuple(spec.wire_id for spec in aeads))


def suite_table(config: TcpcryptConfig,
                rsa_keys: RsaKeyHolder | None = None) -> dict[int, KeyAgreementSuite]:
    """The configuration's key-agreement suites by TEP, in preference order: what a caller
    that opens many connections builds once and passes to each (`suites=`)."""
    suites = (get_suite(name, rsa_keys=rsa_keys) for name in config.suites)
    return {suite.tep: suite for suite in suites}


@functools.lru_cache(maxsize=64)
def plain_offers(teps: tuple[int, ...]) -> tuple[TepSuboption, ...]:
    return tuple(TepSuboption(tep) for tep in teps)
