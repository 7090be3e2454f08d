"""Process measurements shared by the peer workers (``graphlets_worker.py``,
``fastrp_peer_worker.py``): standard library only, so any interpreter can import it.

Not a benchmark: a helper module the workers import from their own folder.
"""

from __future__ import annotations

import os
import resource


def rss_mb() -> float:
    """Resident set size of this process now, MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    """Peak RSS of this process image (VmHWM; ru_maxrss would include the forking parent's)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM not found in /proc/self/status")


def cpu_seconds() -> float:
    """User plus system CPU time of this process, all threads."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
