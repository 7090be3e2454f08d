"""benchmarks/README.md is where a reader finds each script's command and latest result."""

import re
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_every_script_is_named_in_the_readme():
    text = (BENCHMARKS / "README.md").read_text()
    scripts = sorted(p.relative_to(BENCHMARKS).as_posix()
                     for p in [*BENCHMARKS.glob("*.py"), *BENCHMARKS.glob("*/*.py"),
                               *BENCHMARKS.glob("*.sh")])
    assert scripts, "no benchmark scripts found"
    missing = [s for s in scripts if f"`{s}`" not in text and f"benchmarks/{s}" not in text]
    assert not missing, f"benchmarks/README.md does not name {missing}"


def test_the_script_table_is_sorted_by_name():
    rows = re.findall(r"^\| `([^`]+)` \|", (BENCHMARKS / "README.md").read_text(), flags=re.M)
    assert len(rows) >= 20 and rows == sorted(rows)
