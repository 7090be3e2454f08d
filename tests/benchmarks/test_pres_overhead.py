"""benchmarks/pres_overhead.py: the allocator setting keeps freed memory (fewer page faults),
and the script end to end on the synthetic stream."""

import inspect
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "pres_overhead.py"
GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# Allocate 16 blocks of 2 MiB, touch them, free them all, 20 times: with glibc's defaults the
# freed heap top (32 MiB) is above the trim threshold and goes back to the kernel every time.
# The script's helpers run in a fresh process that imports nothing else (not torch).
CHURN = """
import ctypes, ctypes.util, resource
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
{helpers}
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
tuned = keep_freed_memory({mb}) if {mb} else False
def churn():
    blocks = [libc.malloc(2 << 20) for _ in range(16)]
    for b in blocks:
        ctypes.memset(b, 1, 2 << 20)
    for b in reversed(blocks):
        libc.free(b)
churn()
f0 = minor_faults()
for _ in range(20):
    churn()
print(tuned, minor_faults() - f0)
"""


@pytest.fixture(scope="module")
def overhead(import_script):
    return import_script("pres_overhead")


def _churn_faults(overhead, mb: int) -> tuple[bool, int]:
    helpers = inspect.getsource(overhead.keep_freed_memory) + "\n" + \
        inspect.getsource(overhead.minor_faults)
    code = CHURN.format(helpers=helpers, mb=mb)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(not GLIBC, reason="--malloc-pad-mb calls glibc's mallopt; other C libraries "
                    "are left untuned (the next test checks that)")
def test_keep_freed_memory_avoids_page_faults(overhead):
    tuned_default, default = _churn_faults(overhead, 0)
    tuned, kept = _churn_faults(overhead, 64)
    assert not tuned_default and tuned
    # 20 rounds of 32 MiB are ~160,000 pages when they go back to the kernel each time
    assert default > 50_000
    assert kept < default / 10


def test_script_quick(tmp_path):
    out = tmp_path / "overhead.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(SCRIPT), "--quick", "--rounds", "2", "--warmup", "0",
                    "--malloc-pad-mb", "16", "--json", str(out)], check=True, env=env,
                   capture_output=True, timeout=300)
    report = json.loads(out.read_text())
    assert report["config"]["malloc_tuned"] == GLIBC
    rows = report["rows"]
    names = {(r["system"], r["dataset"], r["metric"]) for r in rows}
    assert names == {(s, f"temporal-sbm/bs{b}", m) for s in ("tgn", "tgn+pres")
                     for b in (200, 800) for m in ("cpu_seconds", "seconds")}
    for r in rows:
        assert r["runs"] == 2 and r["mean"] > 0 and r["minor_faults"] >= 0
        assert r["statistic"] == "median" and r["mean"] == statistics.median(r["per_run"])
        if r["system"] == "tgn":
            assert r["pres_overhead"] == 0.0
        if r["system"] == "tgn" and r["dataset"].endswith("bs200"):
            assert r["vs_first_plain"] == 1.0


# each failed only inside the run (a torch or library error after loading, training or the
# earlier grid points), or ran with it: a NaN weight or rate passed the range checks
@pytest.mark.parametrize("flags, message", [
    (["--gamma", "inf"],
     "argument --gamma: must be a finite number, got inf"),
    (["--batch-sizes", "0"],
     "argument --batch-sizes: must be >= 1, got 0"),
    (["--dataset", "nope"],
     "argument --dataset: unknown dataset 'nope'"),
])
def test_bad_values_fail_when_the_arguments_are_parsed(usage_error, flags, message):
    assert message in usage_error("pres_overhead", flags)
