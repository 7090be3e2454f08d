"""The benchmark convention shared by every script in ``benchmarks/``.

Each script accepts ``--runs``, ``--seed``, ``--device``, ``--json PATH`` and ``--quick``, prints a
table and writes::

    {"script", "config", "rows": [{"system", "dataset", "metric", "mean", "std", "runs",
                                   "seconds", "peak_rss_mb", ...}], "paper": [...], "machine"}

A peer measured in the same run is a row of its own; accuracy-type metrics are fractions. A row's
``mean`` is the mean over its runs unless the row says ``"statistic": "median"`` (timing scripts
that report the median run, robust to load spikes from other processes).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphkit.data.io import atomic_write

if TYPE_CHECKING:
    import torch

__all__ = [
    "Row",
    "Measurement",
    "benchmark_parser",
    "check_recipe",
    "count",
    "dataset_name",
    "dataset_of",
    "figure_file",
    "real",
    "read_report",
    "report_file",
    "report_of",
    "default_data_root",
    "machine_info",
    "measure",
    "rss_mb",
    "summarize",
    "synchronize",
    "print_table",
    "links_only",
    "read_rows",
    "run_main",
    "save_figure",
    "write_report",
]


def default_data_root() -> str | None:
    """``$GRAPHKIT_DATA``, else ``../shared/data`` beside the repository when it exists."""
    env = os.environ.get("GRAPHKIT_DATA")
    if env:
        return env
    repo = Path(__file__).resolve().parents[1]
    shared = repo.parent / "shared" / "data"
    return str(shared) if shared.is_dir() else None


QUICK_TEMPORAL = "temporal-sbm"


def temporal_stream(name: str, root: str | None = None, quick: bool = False):
    """The event stream a temporal script runs on: dataset ``name``, or with ``--quick`` a small
    :data:`QUICK_TEMPORAL` stream (200 nodes, 4,000 events) so that a test runs in seconds."""
    from graphkit.data import load

    if quick:
        if name != QUICK_TEMPORAL:  # the rows name the stream that ran, and so does this line
            print(f"--quick: a 200-node {QUICK_TEMPORAL} stream stands in for {name}",
                  file=sys.stderr)
        return load(QUICK_TEMPORAL, root=root, num_nodes=200, num_events=4000)
    return load(name, root=root)


def _checked(check: Callable[[str], object], text: str) -> str:
    """``text`` after ``check(text)``, whose ``ValueError`` becomes argparse's error (which
    names the flag): the body of the path and name types below."""
    try:
        check(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def count(least: int = 1) -> Callable[[str], int]:
    """An argparse ``type``: an integer ``>= least``, so that ``--epochs 0`` or ``--batch-size -5``
    fails when the arguments are parsed, naming the flag, instead of deep inside a run."""

    def parse(text: str) -> int:
        value = int(text)  # a ValueError: argparse says "invalid int value: 'ten'"
        if value < least:
            raise argparse.ArgumentTypeError(f"must be >= {least}, got {value}")
        return value

    parse.__name__ = "int"
    return parse


def real(low: float | None = None, high: float | None = None, *, open_low: bool = False,
         open_high: bool = False) -> Callable[[str], float]:
    """An argparse ``type``: a finite float in ``[low, high]`` (an end is excluded when
    ``open_low`` / ``open_high``; ``None`` leaves that side unbounded). NaN and inf fail."""

    def parse(text: str) -> float:
        value = float(text)  # a ValueError: argparse says "invalid float value: 'high'"
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if low is not None and (value < low or (open_low and value == low)):
            raise argparse.ArgumentTypeError(f"must be {'>' if open_low else '>='} {low}, "
                                             f"got {text}")
        if high is not None and (value > high or (open_high and value == high)):
            raise argparse.ArgumentTypeError(f"must be {'<' if open_high else '<='} {high}, "
                                             f"got {text}")
        return value

    parse.__name__ = "float"
    return parse


def read_report(path: str | os.PathLike, script: str | None = None) -> dict[str, Any]:
    """The report written by :func:`write_report` at ``path``; a missing, unreadable or
    malformed file is a ``ValueError`` naming it, and so is, when ``script`` is given, a report
    of another script (its rows lack the keys that script's merge reads)."""
    try:
        with open(path) as f:
            report = json.load(f)
    except OSError as e:
        raise ValueError(f"cannot read report {path}: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"report {path} is not JSON: {e}") from None
    if not (isinstance(report, dict) and isinstance(report.get("rows"), list)
            and isinstance(report.get("config"), dict)):
        raise ValueError(f"{path} is not a benchmark report (a JSON object with 'config' and "
                         "'rows')")
    if script is not None and report.get("script") != script:
        raise ValueError(f"{path} is a report of {report.get('script')}, not of {script}")
    return report


def report_file(text: str) -> str:
    """An argparse ``type`` for an input report (``--merge A.json``): checked when the arguments
    are parsed, not when the run reaches it."""
    return _checked(read_report, text)


def dataset_name(text: str) -> str:
    """An argparse ``type``: a name :func:`graphkit.data.load` knows, checked when the arguments
    are parsed (a mistyped second ``--dataset`` failed only after the first one's runs)."""
    from graphkit.data import registry

    return _checked(registry.get, text)


def dataset_of(kind: str) -> Callable[[str], str]:
    """An argparse ``type`` like :func:`dataset_name` that also needs the dataset's registered
    task to name ``kind`` (``"hypergraph"``, ``"temporal"``): a graph of another kind failed
    only when the run reached it. The message lists the registered names of that kind."""
    from graphkit.data import registry

    def check(text: str) -> str:
        entry = registry.get(text)
        if kind not in entry.task:
            fitting = [e.name for e in registry.list_datasets() if kind in e.task]
            raise ValueError(f"{text!r} is a {entry.task} dataset; this script needs a {kind} "
                             f"one: {', '.join(fitting)}")
        return text

    def parse(text: str) -> str:
        return _checked(check, text)

    parse.__name__ = f"{kind} dataset"
    return parse


def figure_file(text: str) -> str:
    """An argparse ``type`` for an output figure (``--plot PNG``): its folder must exist and
    matplotlib must know its format, checked when the arguments are parsed (:func:`save_figure`
    would fail only after the run)."""
    from matplotlib.figure import Figure

    from graphkit.cli import check_output

    suffixes = tuple(f".{k}" for k in sorted(Figure().canvas.get_supported_filetypes()))
    return _checked(lambda path: check_output(path, suffixes), text)


def links_only(data, spec: str):
    """``data`` without self-loops and repeated edges, which
    :func:`graphkit.train.forward.link_split` refuses (a self-loop is no link to predict; PPI
    has 894), said when there are any: what a link-prediction benchmark runs on."""
    from torch_geometric.utils import coalesce, remove_self_loops

    edge_index = remove_self_loops(coalesce(data.edge_index, num_nodes=data.num_nodes))[0]
    if edge_index.size(1) != data.edge_index.size(1):
        print(f"{spec}: {data.edge_index.size(1) - edge_index.size(1)} self-loop or repeated "
              "edge entries left out of the link task")
        data = data.clone()
        data.edge_index = edge_index
    return data


def run_main(main: Callable[[], object]) -> None:
    """Run a benchmark script's ``main``: a missing data file or a refused input ends in one
    line naming the problem (``script.py: error: ...``, exit status 1), not a traceback whose
    last line says it. ``GRAPHKIT_TRACEBACK=1`` shows the traceback."""
    try:
        main()
    except (FileNotFoundError, ValueError) as exc:
        if os.environ.get("GRAPHKIT_TRACEBACK"):
            raise
        print(f"{os.path.basename(sys.argv[0])}: error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def check_recipe(model: str, dataset: str, settings: dict[str, Any], what: str) -> None:
    """Fail before the first run if ``model``'s recipe on ``dataset`` with ``settings`` replaced
    (a ``--model`` / ``--grid`` / ``--override`` specification) cannot be built: an unknown
    setting or a value of the wrong type failed inside that system's first run, after the
    earlier systems' runs. ``what`` names the flag and specification in the ``ValueError``.
    The random-number state is left as it was."""
    import torch

    from graphkit.nn.recipes import build_model, get_recipe

    try:
        recipe = get_recipe(model, dataset).with_overrides(**settings)  # checks the types
        with torch.random.fork_rng(devices=[]):
            build_model(recipe, 4, 2)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what}: {e}") from None


def report_of(script: str) -> Callable[[str], str]:
    """:func:`report_file` for the reports of one ``script`` (e.g. ``"benchmarks/lpgnas.py"``):
    another script's report lacks the keys that script's merge or plot reads."""

    def parse(text: str) -> str:
        return _checked(lambda path: read_report(path, script), text)

    parse.__name__ = "report"
    return parse


def _json_path(text: str) -> str:
    """Checked when the arguments are parsed: a run must not end in an unwritable path."""
    from graphkit.cli import check_output

    return _checked(check_output, text)


def _device(text: str) -> str:
    """``--device`` must name a torch device this machine has, so that ``--device cuda`` on a
    CPU-only machine fails when the arguments are parsed, not after the data is loaded."""
    from graphkit.cli import check_device

    return _checked(lambda d: check_device(d, flag=""), text)


#: the shared flags a script may leave out (every script writes --json and has --quick)
OMITTABLE_FLAGS = ("runs", "seed", "device", "root")


def benchmark_parser(description: str, runs: int = 10, omit: Sequence[str] = (),
                     helps: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with the flags every benchmark script shares, less those in
    ``omit`` (a script that has no use for ``--device`` or ``--runs`` does not offer it, so
    a user's ``--device cuda`` is refused instead of recorded and ignored).

    ``helps`` replaces a shared flag's ``--help`` text where the script gives it another
    meaning (``{"runs": "timed calls per operation"}``)."""
    helps = dict(helps or {})
    unknown = set(omit) - set(OMITTABLE_FLAGS)
    if unknown:
        raise ValueError(f"omit names flags that cannot be left out: {sorted(unknown)} "
                         f"(only {', '.join(OMITTABLE_FLAGS)})")
    texts = {"runs": "repetitions (seeds) per system", "seed": "first seed; run r uses seed + r",
             "device": "torch device, e.g. cpu or cuda:0",
             "json": "write the results here (its folder must exist)",
             "quick": "a small, fast configuration", "root": "dataset root folder"}
    unknown = helps.keys() - texts.keys()
    if unknown or helps.keys() & set(omit):
        raise ValueError(f"helps names flags this parser does not offer: "
                         f"{sorted(unknown | (helps.keys() & set(omit)))}")
    texts.update(helps)
    p = argparse.ArgumentParser(description=description)
    if "runs" not in omit:
        p.add_argument("--runs", type=count(1), default=runs, help=texts["runs"])
    if "seed" not in omit:
        p.add_argument("--seed", type=count(0), default=0, help=texts["seed"])
    if "device" not in omit:
        p.add_argument("--device", type=_device, default="cpu", help=texts["device"])
    p.add_argument("--json", type=_json_path, default=None, metavar="PATH", help=texts["json"])
    p.add_argument("--quick", action="store_true", help=texts["quick"])
    if "root" not in omit:
        p.add_argument("--root", default=default_data_root(), help=texts["root"])
    return p


@dataclass
class Row:
    system: str
    dataset: str
    metric: str
    mean: float
    std: float
    runs: int
    seconds: float
    peak_rss_mb: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(d.pop("extra"))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Row:
        """The inverse of :meth:`to_dict`: keys beyond the fixed fields go to ``extra``."""
        names = {f.name for f in fields(cls)} - {"extra"}
        missing = names - d.keys()
        if missing:
            raise ValueError(f"report row lacks {sorted(missing)}: {d}")
        # a diverged run's NaN was written as null (strict JSON): read it back as NaN
        nan = {"mean": _nan_if_null(d["mean"]), "std": _nan_if_null(d["std"])}
        extra = {k: v for k, v in d.items() if k not in names}
        if isinstance(extra.get("per_run"), list):
            extra["per_run"] = [_nan_if_null(v) for v in extra["per_run"]]
        return cls(**{k: nan.get(k, d[k]) for k in names}, extra=extra)


def rss_mb() -> float:
    """Current resident set size of this process in MiB."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20


@dataclass
class Measurement:
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    peak_cuda_mb: float | None = None


def synchronize(device: str | torch.device | None) -> None:
    """Wait for the kernels queued on a CUDA ``device`` (a no-op on any other device).

    CUDA launches kernels asynchronously: a clock read after ``backward()`` without this
    measures their launch, not their work. Call it before starting and before reading a timer.
    """
    import torch

    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def measure(device: str | None = None, interval: float = 0.005) -> Iterator[Measurement]:
    """Time a block and record the process's peak RSS inside it (sampled by a thread).

    On a CUDA ``device`` the peak allocated GPU memory is recorded too.
    """
    import torch

    m = Measurement()
    stop = threading.Event()
    peak = [rss_mb()]

    def sample() -> None:
        while not stop.wait(interval):
            peak[0] = max(peak[0], rss_mb())

    cuda = device is not None and str(device).startswith("cuda") and torch.cuda.is_available()
    if cuda:
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    try:
        yield m
    finally:
        if cuda:
            synchronize(device)
        m.seconds = time.perf_counter() - t0
        stop.set()
        thread.join()
        m.peak_rss_mb = max(peak[0], rss_mb())
        if cuda:
            m.peak_cuda_mb = torch.cuda.max_memory_allocated(device) / 2**20


def summarize(
    system: str,
    dataset: str,
    metric: str,
    values: Sequence[float],
    seconds: float,
    peak_rss_mb: float,
    *,
    statistic: str = "mean",
    **extra: Any,
) -> Row:
    """Build a :class:`Row` from per-run values (mean and sample std over runs).

    The values themselves are kept as ``per_run`` so that a figure quoted for one seed can be
    traced to the report. A run that diverged (a NaN or infinite value) makes the mean and std
    NaN and is counted in ``non_finite_runs``, instead of failing after every run has finished.
    ``statistic="median"`` puts the median run in the row's ``mean`` field and says so in the
    row (``"statistic": "median"``); the std stays the sample std over runs.
    """
    if statistic not in ("mean", "median"):
        raise ValueError(f"statistic must be 'mean' or 'median', got {statistic!r}")
    values = [float(v) for v in values]
    if not values:
        raise ValueError(f"no measured values for {system} on {dataset}")
    extra.setdefault("per_run", values)
    if statistic == "median":
        extra["statistic"] = "median"
    bad = sum(not math.isfinite(v) for v in values)
    if bad:
        extra.setdefault("non_finite_runs", bad)
        return Row(system, dataset, metric, math.nan, math.nan, len(values), float(seconds),
                   float(peak_rss_mb), dict(extra))
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    center = statistics.median(values) if statistic == "median" else statistics.fmean(values)
    return Row(system, dataset, metric, center, std, len(values),
               float(seconds), float(peak_rss_mb), dict(extra))


def print_table(rows: Sequence[Row], file=None) -> None:
    file = sys.stdout if file is None else file  # resolved per call: stdout may be swapped
    header = f"{'system':<28} {'dataset':<22} {'metric':<12} {'mean':>10} {'std':>9} " \
             f"{'runs':>4} {'seconds':>9} {'rss MB':>8}"
    print(header, file=file)
    print("-" * len(header), file=file)
    for r in rows:
        print(f"{r.system:<28} {r.dataset:<22} {r.metric:<12} {r.mean:>10.4f} {r.std:>9.4f} "
              f"{r.runs:>4} {r.seconds:>9.3f} {r.peak_rss_mb:>8.1f}", file=file)


def write_report(
    path: str | os.PathLike | None,
    script: str,
    config: dict[str, Any] | argparse.Namespace,
    rows: Sequence[Row],
    paper: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Assemble the shared JSON report and, when ``path`` is given, write it atomically.

    The file is strict JSON: a NaN or infinite value (a diverged run) is written as ``null``.
    """
    if isinstance(config, argparse.Namespace):
        config = vars(config)
    report = {
        "script": script,
        "config": {k: v for k, v in config.items() if _jsonable(v)},
        "rows": [r.to_dict() for r in rows],
        "paper": list(paper),
        "machine": machine_info(),
    }
    if path is not None:
        with atomic_write(path) as f:
            json.dump(_finite_or_null(report), f, indent=2, allow_nan=False)
            f.write("\n")
    return report


def machine_info() -> dict[str, Any]:
    """What ran a report: CPU model and count, Python, torch, and the GPU's name when one is
    visible (``device: "cuda"`` alone does not say which card produced a figure)."""
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    info: dict[str, Any] = {"cpu": cpu, "cpu_count": os.cpu_count(),
                            "python": platform.python_version(), "torch": torch.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def save_figure(fig, path: str | os.PathLike, **kwargs: Any) -> None:
    """Write a matplotlib figure atomically, in the format named by the suffix (.png, .pdf, ...).

    ``kwargs`` go to ``fig.savefig`` (e.g. ``dpi``). An unknown suffix fails before any file is
    opened; a failure while drawing leaves no partial file and any older figure in place.
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    supported = fig.canvas.get_supported_filetypes()
    if fmt not in supported:
        raise ValueError(f"cannot save a figure as '{path.name}': use one of "
                         f"{', '.join('.' + k for k in sorted(supported))}")
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format=fmt, **kwargs)


def read_rows(*paths: str | os.PathLike) -> list[Row]:
    """The rows of one or more reports written by :func:`write_report`, in file order."""
    rows = []
    for path in paths:
        rows += [Row.from_dict(d) for d in read_report(path)["rows"]]
    return rows


def _nan_if_null(v: Any) -> Any:
    return math.nan if v is None else v


def _finite_or_null(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float replaced by ``None`` (JSON has neither)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_null(v) for v in obj]
    return obj


def _jsonable(v: Any) -> bool:
    try:
        json.dumps(v)
    except TypeError:
        return False
    return True
