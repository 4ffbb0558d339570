"""Ends a local Ray instance whose driver was killed (``kill -9`` leaves no chance to clean up).

Ray's own clean-up runs at ``ray.shutdown()``; when the driver dies without it, the raylet goes
but its agents (dashboard agent, runtime-env agent) linger. This watchdog, started by the driver
next to the instance, keeps a list of the driver's descendants while the driver lives and, once
it is gone, terminates the ones still running (each known by pid and start time, so a reused pid
is never touched). Linux only: it reads /proc.

Run as ``python -m zsbench.runner.backends.reaper DRIVER_PID``.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

POLL_SECONDS = 0.5
GRACE_SECONDS = 3.0


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of a live process, or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[1]), fields[19]) if fields[0] != "Z" else None


def descendants(root: int) -> dict[int, str]:
    """pid -> start time of every live descendant of ``root``."""
    procs = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            procs[int(entry)] = stat
    out, frontier = {}, {root}
    while frontier:
        frontier = {p for p, (parent, _) in procs.items() if parent in frontier and p not in out}
        out.update({p: procs[p][1] for p in frontier})
    return out


def _still(known: dict[int, str]) -> list[int]:
    return [p for p, start in known.items() if (stat := _stat(p)) is not None and stat[1] == start]


def watch(driver: int) -> None:
    me = os.getpid()
    driver_start = (_stat(driver) or (0, ""))[1]
    known: dict[int, str] = {}
    while (stat := _stat(driver)) is not None and stat[1] == driver_start:
        known.update({p: s for p, s in descendants(driver).items() if p != me})
        time.sleep(POLL_SECONDS)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _still(known):
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + GRACE_SECONDS
        while _still(known) and time.monotonic() < deadline:
            time.sleep(0.1)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the driver; it cleans up itself
    watch(int(sys.argv[1]))
