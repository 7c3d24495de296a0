"""Building, loading, attaching and removing the kernel program (bpftool from Debian's package).

Where things live, each overridable by an environment variable (a test or an emulation run
uses its own so that it never touches another one's):

* TCPCRYPT_BPF_DIR: the pin directory on bpffs (default /run/tcpcrypt/bpf/tcpcrypt): `prog` and
  `maps/<name>` are pinned there;
* TCPCRYPT_BPF_CGROUP: the cgroup v2 directory the program is attached to (default: the root
  of the cgroup2 mount, so the whole host); sockets of processes in it (and below) are covered;
* TCPCRYPT_BPF_OBJECT: the built object (default build/bpf/eno.bpf.o in the source tree).

bpffs is mounted at /run/tcpcrypt/bpf when it is not (and left mounted). Not /sys/fs/bpf: Mininet
hosts (`mnexec -n`) and `ip netns exec` mount a fresh /sys, which hides anything pinned there,
while a mount under /run stays visible in the namespaces they create.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

SOURCE: Final = Path(__file__).with_name("eno.bpf.c")
BUILD_DIR: Final = Path(__file__).resolve().parents[2] / "build" / "bpf"
BPFFS: Final = Path("/run/tcpcrypt/bpf")
DEFAULT_PIN_DIR: Final = BPFFS / "tcpcrypt"
MAP_NAMES: Final = ("eno_sock", "eno_listeners", "eno_pending", "eno_resume", "eno_netns",
                    "eno_stats")


class KernelUnavailable(RuntimeError):
    """The kernel program cannot be built, loaded or found; the message is one line."""


def pin_dir() -> Path:
    return Path(os.environ.get("TCPCRYPT_BPF_DIR", str(DEFAULT_PIN_DIR)))


def object_path() -> Path:
    return Path(os.environ.get("TCPCRYPT_BPF_OBJECT", str(BUILD_DIR / "eno.bpf.o")))


def _mounts(fstype: str) -> list[Path]:
    found = []
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) > 2 and fields[2] == fstype:
                found.append(Path(fields[1]))
    return found


def cgroup2_root() -> Path:
    mounts = _mounts("cgroup2")
    if not mounts:
        raise KernelUnavailable("no cgroup2 hierarchy is mounted (mount -t cgroup2 none DIR)")
    return mounts[0]


def cgroup_dir() -> Path:
    configured = os.environ.get("TCPCRYPT_BPF_CGROUP")
    return Path(configured) if configured else cgroup2_root()


def _run(command: list[str], what: str) -> str:
    if shutil.which(command[0]) is None:
        raise KernelUnavailable(f"{command[0]} is not installed (Debian package: "
                                f"{'bpftool' if command[0] == 'bpftool' else command[0]})")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        reason = next((line for line in reversed(lines) if "Error" in line or "error" in line),
                      lines[-1] if lines else f"exit status {done.returncode}")
        raise KernelUnavailable(f"{what}: {reason.strip()}")
    return done.stdout


def check_kernel() -> None:
    """One-line errors for what this kernel or host lacks."""
    if os.geteuid() != 0:
        raise KernelUnavailable("loading the kernel program needs root")
    if not Path("/sys/kernel/btf/vmlinux").exists():
        raise KernelUnavailable("the kernel has no BTF (/sys/kernel/btf/vmlinux): "
                                "CONFIG_DEBUG_INFO_BTF is needed")
    if not Path("/proc/sys/kernel/unprivileged_bpf_disabled").exists():
        raise KernelUnavailable("the kernel has no BPF support (CONFIG_BPF_SYSCALL)")


def build(output: Path | None = None) -> Path:
    """Compile eno.bpf.c with clang against this kernel's BTF (vmlinux.h made by bpftool)."""
    output = output or object_path()
    output.parent.mkdir(parents=True, exist_ok=True)
    header = output.parent / "vmlinux.h"
    if not header.exists():
        if not Path("/sys/kernel/btf/vmlinux").exists():
            raise KernelUnavailable("the kernel has no BTF (/sys/kernel/btf/vmlinux)")
        text = _run(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"],
                    "generating vmlinux.h")
        header.write_text(text)
    _run(["clang", "-O2", "-g", "-target", "bpf", "-Wall", "-I", str(output.parent), "-c",
          str(SOURCE), "-o", str(output)], "compiling the kernel program")
    return output


def ensure_bpffs() -> None:
    """Mount bpffs at /run/tcpcrypt/bpf when the pin directory is there and nothing is."""
    directory = pin_dir()
    if BPFFS in directory.parents and BPFFS not in _mounts("bpf"):
        BPFFS.mkdir(parents=True, exist_ok=True)
        _run(["mount", "-t", "bpf", "bpf", str(BPFFS)], f"mounting bpffs at {BPFFS}")


def is_loaded(directory: Path | None = None) -> bool:
    return ((directory or pin_dir()) / "prog").exists()


def _prog_id(directory: Path) -> int | None:
    with contextlib.suppress(KernelUnavailable, ValueError, KeyError):
        shown = json.loads(_run(["bpftool", "-j", "prog", "show", "pinned",
                                 str(directory / "prog")], "reading the pinned program"))
        return int(shown["id"])
    return None


def _attached_ids(cgroup: Path) -> list[int]:
    with contextlib.suppress(KernelUnavailable, ValueError):
        shown: list[dict[str, Any]] = json.loads(
            _run(["bpftool", "-j", "cgroup", "show", str(cgroup)], "listing cgroup programs")
            or "[]")
        kinds = ("sock_ops", "cgroup_sock_ops")
        return [int(entry["id"]) for entry in shown if entry.get("attach_type") in kinds]
    return []


def load() -> str:
    """Load, pin and attach the program (a no-op when already loaded); says what it did."""
    check_kernel()
    directory, cgroup = pin_dir(), cgroup_dir()
    if not cgroup.is_dir():
        raise KernelUnavailable(f"cgroup {cgroup} does not exist")
    ensure_bpffs()
    if is_loaded(directory):
        return f"already loaded ({directory})"
    obj = object_path()
    if not obj.exists():
        build(obj)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        _run(["bpftool", "prog", "load", str(obj), str(directory / "prog"), "type", "sockops",
              "pinmaps", str(directory / "maps")], "loading the kernel program")
        _run(["bpftool", "cgroup", "attach", str(cgroup), "sock_ops", "pinned",
              str(directory / "prog"), "multi"], f"attaching to cgroup {cgroup}")
    except KernelUnavailable:
        remove_pins(directory)
        raise
    return f"loaded and attached to {cgroup} (pinned in {directory})"


def detach(directory: Path, cgroup: Path) -> bool:
    prog_id = _prog_id(directory)
    if prog_id is None or prog_id not in _attached_ids(cgroup):
        return False
    _run(["bpftool", "cgroup", "detach", str(cgroup), "sock_ops", "id", str(prog_id)],
         f"detaching from cgroup {cgroup}")
    return True


def remove_pins(directory: Path) -> None:
    maps = directory / "maps"
    for name in MAP_NAMES:
        with contextlib.suppress(FileNotFoundError):
            (maps / name).unlink()
    for path in (directory / "prog",):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    for path in (maps, directory):
        with contextlib.suppress(FileNotFoundError, OSError):
            path.rmdir()


def unload() -> str:
    """Detach and unpin; the kernel frees the program once no socket holds its maps."""
    directory, cgroup = pin_dir(), cgroup_dir()
    if not directory.exists():
        return "not loaded"
    detached = detach(directory, cgroup) if cgroup.is_dir() else False
    remove_pins(directory)
    return f"unloaded ({'detached from ' + str(cgroup) if detached else 'was not attached'})"


@dataclass(frozen=True)
class Status:
    loaded: bool
    pin_dir: Path
    cgroup: Path
    attached: bool
    prog_id: int | None

    def line(self) -> str:
        if not self.loaded:
            return f"not loaded (pin dir {self.pin_dir})"
        where = f"attached to {self.cgroup}" if self.attached else "NOT attached"
        return f"loaded: program id {self.prog_id}, {where}, pinned in {self.pin_dir}"


def status() -> Status:
    directory, cgroup = pin_dir(), cgroup_dir()
    loaded = is_loaded(directory)
    prog_id = _prog_id(directory) if loaded else None
    attached = prog_id is not None and cgroup.is_dir() and prog_id in _attached_ids(cgroup)
    return Status(loaded, directory, cgroup, attached, prog_id)


def _own_cgroup() -> Path:
    with open("/proc/self/cgroup") as lines:
        for line in lines:
            if line.startswith("0::"):
                return cgroup2_root() / line.strip()[3:].lstrip("/")
    return cgroup2_root()


def _move_self(cgroup: Path) -> None:
    (cgroup / "cgroup.procs").write_text(str(os.getpid()))


@contextlib.contextmanager
def private_program(tag: str) -> Iterator[Path]:
    """Load a private copy for one run or test: pin dir `tcpcrypt-<tag>` on bpffs, a new
    cgroup `tcpcrypt-<tag>` that this process (and every child started afterwards) joins.
    Sets TCPCRYPT_BPF_DIR and TCPCRYPT_BPF_CGROUP for the duration (children inherit them);
    on exit moves back, detaches, removes the cgroup and the pins. Yields the pin dir."""
    directory = BPFFS / f"tcpcrypt-{tag}"
    cgroup = cgroup2_root() / f"tcpcrypt-{tag}"
    saved = {name: os.environ.get(name) for name in ("TCPCRYPT_BPF_DIR", "TCPCRYPT_BPF_CGROUP")}
    home = _own_cgroup()
    cgroup.mkdir(exist_ok=True)
    os.environ["TCPCRYPT_BPF_DIR"], os.environ["TCPCRYPT_BPF_CGROUP"] = str(directory), str(cgroup)
    try:
        load()
        _move_self(cgroup)
        yield directory
    finally:
        with contextlib.suppress(OSError):
            _move_self(home)
        try:
            unload()
        finally:
            remove_cgroup(cgroup)
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def remove_private(tag: str) -> list[str]:
    """Remove what `private_program(tag)` left when its process was killed."""
    directory = BPFFS / f"tcpcrypt-{tag}"
    cgroup = cgroup2_root() / f"tcpcrypt-{tag}"
    removed: list[str] = []
    if directory.exists():
        if cgroup.is_dir() and detach(directory, cgroup):
            removed.append(f"detached the kernel program from {cgroup}")
        remove_pins(directory)
        removed.append(f"unpinned {directory}")
    if cgroup.is_dir() and remove_cgroup(cgroup):
        removed.append(f"removed cgroup {cgroup}")
    return removed


def remove_cgroup(cgroup: Path, wait_s: float = 3.0) -> bool:
    """rmdir the cgroup, waiting a little for exiting processes to leave it."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            cgroup.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
