"""The reference tcpcrypt daemon (scslab/tcpcrypt, drafts tcpcrypt-02 / eno-03) for the
interoperability tests: found as an unchanged source tarball, built in a temporary folder,
started inside a test's network namespace. Nothing of it is copied into the project.

The tarball is looked for in $TCPCRYPT_PEERS_DIR, else in `shared/peers/` beside the
repository or one of its parents. Also a small pcap reader for the tests' captures.
"""

from __future__ import annotations

import os
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from netns_pair import NetnsPair

from packets.errors import MalformedPacket
from packets.tcp import TcpPacket, parse_packet

TARBALL_GLOB = "scslab-tcpcrypt-*.tar.gz"
REPO = Path(__file__).resolve().parents[2]
DIVERT_QUEUE = "666"
DAEMON_USER = "nobody"


def find_tarball() -> Path | None:
    places = []
    if os.environ.get("TCPCRYPT_PEERS_DIR"):
        places.append(Path(os.environ["TCPCRYPT_PEERS_DIR"]))
    places += [parent / "shared" / "peers" for parent in REPO.parents]
    for place in places:
        found = sorted(place.glob(TARBALL_GLOB)) if place.is_dir() else []
        if found:
            return found[-1]
    return None


@dataclass(frozen=True)
class ReferenceBuild:
    source: Path

    @property
    def daemon(self) -> Path:
        return self.source / "src" / "tcpcryptd"

    @property
    def netstat(self) -> Path:
        return self.source / "util" / "tcnetstat"

    @property
    def rules_script(self) -> Path:
        return self.source / "src" / "iptables.sh"


def build(tarball: Path, folder: Path) -> ReferenceBuild:
    """Unpack and build; AssertionError with the failing step's output tail on failure."""
    subprocess.run(["tar", "-xzf", str(tarball), "-C", str(folder)], check=True, timeout=120)
    (source,) = [path for path in folder.iterdir() if path.is_dir()]
    for step in (["./bootstrap.sh"], ["./configure"], ["make", "-j2"]):
        result = subprocess.run(step, cwd=source, capture_output=True, text=True, timeout=600,
                                check=False)
        if result.returncode != 0:
            raise AssertionError(f"building the reference failed at {' '.join(step)}:\n"
                                 f"{(result.stdout + result.stderr)[-3000:]}")
    built = ReferenceBuild(source)
    assert built.daemon.exists() and built.netstat.exists(), "the build made no tcpcryptd"
    return built


def start_daemon(pair: NetnsPair, host: str, built: ReferenceBuild, port: int,
                 folder: Path) -> Path:
    """The reference daemon in `host`, covering `port` in its redirect mode (its own iptables
    rules, in that namespace only). Returns its control socket's path."""
    jail = folder / f"jail-{host}"
    jail.mkdir(mode=0o755)
    control = folder / f"control-{host}"
    environment = {**os.environ, "ONLY_PORTS": str(port), "DAEMON_USER": DAEMON_USER,
                   "DIVERT_PORT": DIVERT_QUEUE}
    result = subprocess.run(pair.argv(host, ["sh", str(built.rules_script), "start"]),
                            env=environment, capture_output=True, text=True, timeout=30,
                            check=False)
    assert result.returncode == 0, f"the reference's iptables rules: {result.stderr}"
    pair.popen(host, [str(built.daemon), "-U", DAEMON_USER, "-J", str(jail), "-p",
                      DIVERT_QUEUE, "-e", "-f", "-u", str(control)])
    deadline = time.monotonic() + 15
    while not control.exists():
        assert time.monotonic() < deadline, "the reference daemon did not open its control socket"
        time.sleep(0.05)
    time.sleep(0.3)
    return control


def session_ids(pair: NetnsPair, host: str, built: ReferenceBuild, control: Path,
                port: int) -> list[str]:
    """The session IDs the reference daemon in `host` lists for connections on `port`."""
    result = pair.run(host, [str(built.netstat), "-u", str(control)], timeout=20)
    found = []
    for line in result.stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) == 3 and any(field.endswith(f":{port}") for field in fields[:2]):
            found.append(fields[2].lower())
    return found


def read_pcap(path: Path) -> Iterator[TcpPacket]:
    """The IPv4 TCP packets of an Ethernet pcap file."""
    data = path.read_bytes()
    magic = struct.unpack_from("<I", data)[0]
    order = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    position = 24
    while position + 16 <= len(data):
        _, _, captured, _ = struct.unpack_from(order + "IIII", data, position)
        frame = data[position + 16: position + 16 + captured]
        position += 16 + captured
        if len(frame) > 14 and frame[12:14] == b"\x08\x00":
            try:
                yield parse_packet(frame[14:])
            except MalformedPacket:
                continue


def stream(packets: list[TcpPacket], src_port: int) -> bytes:
    """The bytes one side sent (by source port), in sequence order, retransmissions once."""
    segments: dict[int, bytes] = {}
    for packet in packets:
        if packet.src_port == src_port and packet.payload:
            segments.setdefault(packet.seq, bytes(packet.payload))
    if not segments:
        return b""
    start = min(segments)
    out = bytearray()
    for seq in sorted(segments):
        offset = (seq - start) % 2**32
        if offset > len(out):
            raise AssertionError(f"the capture misses {offset - len(out)} bytes of the stream")
        out[offset: offset + len(segments[seq])] = segments[seq]
    return bytes(out)
