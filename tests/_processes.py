"""Process helpers for the tests that signal or kill a real ``surf-dist train``: start it, wait for its
progress, find its descendants in /proc, and tell whether they are gone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def train_command(out: Path, *args: str) -> list[str]:
    """``python -m surf_dist train --preset smoke --out OUT --quiet ARGS`` (the console script's module)."""
    return [sys.executable, "-m", "surf_dist", "train", "--preset", "smoke", "--out", str(out), "--quiet", *args]


def clean_env() -> dict[str, str]:
    """This environment, one thread per process, and nothing that makes a child look like a torchrun rank."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "RAY_ADDRESS"):
        env.pop(name, None)
    return env


def metrics_steps(out: Path) -> list[int]:
    path = out / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line)["step"] for line in path.read_text().splitlines() if line.strip()]


def start(cmd: list[str]) -> subprocess.Popen:
    """In a session of its own, so that the test can signal its whole process group as a terminal would."""
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(), start_new_session=True
    )


def wait_for_checkpoint(proc: subprocess.Popen, out: Path, min_rows: int, timeout_s: float) -> None:
    """Until ``out`` holds a checkpoint and ``min_rows`` metrics rows; fails if the run ended first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the run ended before the test could interrupt it:\n{proc.communicate()[1]}"
        if (out / "checkpoint.pt").exists() and len(metrics_steps(out)) >= min_rows:
            return
        time.sleep(0.1)
    raise AssertionError(f"no checkpoint and {min_rows} metrics rows in {out} within {timeout_s} s")


def wait_for_file(proc: subprocess.Popen, path: Path, timeout_s: float) -> None:
    """Until ``path`` exists (e.g. a fault's marker: the fault has fired); fails if the run ended first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the run ended before {path.name} appeared:\n{proc.communicate()[1]}"
        if path.exists():
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} did not appear within {timeout_s} s")


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped by its parent, is not)."""
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (ProcessLookupError, FileNotFoundError, PermissionError):
        return False
    return state not in ("Z", "X")


def interrupt(proc: subprocess.Popen, signum: int, *, whole_group: bool, timeout_s: float = 60.0) -> tuple[str, float]:
    """Send ``signum`` to the run (or to its process group, as Ctrl-C at a terminal does); its stderr and the
    seconds until it and every process it had started were gone."""
    workers = descendants(proc.pid)
    t0 = time.monotonic()
    if whole_group:
        os.killpg(os.getpgid(proc.pid), signum)
    else:
        os.kill(proc.pid, signum)
    _, err = proc.communicate(timeout=timeout_s)
    while any(alive(p) for p in workers) and time.monotonic() - t0 < timeout_s:
        time.sleep(0.05)
    left = [p for p in workers if alive(p)]
    for p in left:  # leave nothing behind even when the test fails
        os.kill(p, signal.SIGKILL)
    assert not left, f"processes still running {timeout_s} s after the signal: {left}"
    return err, time.monotonic() - t0


def listeners(pids: set[int]) -> set[tuple[str, int, int]]:
    """Every TCP socket in LISTEN state that one of ``pids`` holds, as (address, port, pid), from /proc (no
    psutil or ss needed): the sockets of /proc/net/tcp{,6} matched with the processes' file descriptors."""
    import ipaddress

    listening: dict[int, tuple[str, int]] = {}  # socket inode -> (address, port)
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != "0A":  # TCP_LISTEN
                continue
            hex_addr, hex_port = fields[1].split(":")
            raw = bytes.fromhex(hex_addr)
            # the kernel prints each 32-bit word in host (little-endian) order
            packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            ip = ipaddress.ip_address(packed) if width == 8 else ipaddress.IPv6Address(packed)
            listening[int(fields[9])] = (str(ip), int(hex_port, 16))
    found = set()
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue  # gone meanwhile
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inode = int(target[8:-1])
                if inode in listening:
                    found.add((*listening[inode], pid))
    return found


def is_loopback(address: str) -> bool:
    """127.0.0.0/8, ::1, or an IPv4-mapped loopback address (``::ffff:127.0.0.1``, Ray's dual-stack sockets)."""
    import ipaddress

    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)
