"""Resident memory of processes, from /proc only (no psutil)."""

from __future__ import annotations

import os
from pathlib import Path


def _status_mb(pid: int | str, key: str) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def vm_hwm_mb(pid: int | str = "self") -> float | None:
    """Peak resident set size of a process in MiB."""
    return _status_mb(pid, "VmHWM")


def rss_mb(pid: int | str = "self") -> float | None:
    """Current resident set size of a process in MiB."""
    return _status_mb(pid, "VmRSS")


def descendants(root: int) -> list[tuple[int, str]]:
    """(pid, command name) of every live descendant of ``root``."""
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append((int(entry.name), comm))
    found, todo = [], [root]
    while todo:
        for pid, comm in children.get(todo.pop(), []):
            found.append((pid, comm))
            todo.append(pid)
    return found


def java_below(root: int) -> int | None:
    """The first JVM started below ``root`` (PyFlink's gateway, Spark's driver)."""
    return next((pid for pid, comm in descendants(root) if comm == "java"), None)


def jvm_hwm_mb(root: int | None = None) -> float | None:
    """Largest VmHWM of the JVMs below ``root`` (default: this process)."""
    root = os.getpid() if root is None else root
    peaks = [vm_hwm_mb(pid) for pid, comm in descendants(root) if comm == "java"]
    peaks = [p for p in peaks if p is not None]
    return max(peaks) if peaks else None
