"""Open Graph Benchmark datasets through ogb's own PyG dataset classes.

`Open Graph Benchmark: Datasets for Machine Learning on Graphs
<https://arxiv.org/abs/2005.00687>`_ (Hu et al., NeurIPS 2020). Any ``ogbn-*`` name goes to
``PygNodePropPredDataset`` and any ``ogbl-*`` name to ``PygLinkPropPredDataset``, on the folder
``<root>/<name with '_' for '-'>`` that ogb uses. Custom datasets written with
``ogb.io.DatasetSaver`` load by passing the saver's ``meta_dict``; the dataset folder
``meta_dict["dir_path"]`` may also exist only as the saver's zip beside it
(``<dir_path>.zip``, as left by ``saver.zip(); saver.cleanup()``), which is then extracted.

graphkit never lets ogb prompt or hang: a folder without ogb's ``RELEASE_v<version>.txt`` or
missing one of ogb's raw files is an error (ogb would ask whether to delete it, or download it
again without a timeout), and a missing dataset is fetched by graphkit itself (one attempt,
socket timeout of a few seconds, stalled transfers abandoned) before ogb sees the folder. ogb
writes its ``processed/`` folder inside the dataset folder, which must therefore be writable.

Returned ``Data``: the graph of ``dataset[0]``; for ``ogbn-*`` also ``train_mask``,
``val_mask``, ``test_mask`` from ``get_idx_split()`` (``y`` squeezed to ``[N]`` for single-task
datasets); for ``ogbl-*`` the dict ``split_edge`` from ``get_edge_split()``. Pass
``return_dataset=True`` for the ogb dataset object itself.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch_geometric.data import Data

from graphkit.data.download import DOWNLOAD_TIMEOUT_S, download_file
from graphkit.data.registry import register

__all__ = ["load_ogb"]

FETCH_TIMEOUT_S = DOWNLOAD_TIMEOUT_S  # per socket operation; stalls end the attempt too


def _meta_info(name: str, meta_dict: dict | None) -> dict:
    if meta_dict is not None:
        return meta_dict
    import pandas as pd

    kind = "nodeproppred" if name.startswith("ogbn-") else "linkproppred"
    import ogb

    master = pd.read_csv(
        Path(ogb.__file__).parent / kind / "master.csv", index_col=0, keep_default_na=False
    )
    if name not in master:
        raise ValueError(f"unknown OGB dataset '{name}'; known: {', '.join(master.keys())}")
    return dict(master[name])


def _extract(zip_path: Path, target: Path, download_name: str) -> None:
    """Unzip into ``target``: either the archive's top folder ``download_name`` or its files."""
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        with zipfile.ZipFile(zip_path) as z:
            z.extractall(tmp)
        inner = Path(tmp) / download_name
        source = inner if inner.is_dir() and len(os.listdir(tmp)) == 1 else Path(tmp)
        shutil.move(str(source), str(target))


def _fetch(url: str, target: Path, download_name: str) -> None:
    zip_path = target.parent / f".{download_name}.download.zip"
    try:
        reason = download_file(url, zip_path, FETCH_TIMEOUT_S)
        if reason is None:
            try:
                _extract(zip_path, target, download_name)
            except Exception as e:  # a truncated or foreign archive, or a full disk
                reason = f"{type(e).__name__}: {e}"
        if reason is not None:
            raise FileNotFoundError(
                f"OGB dataset folder {target} is missing and could not be downloaded from {url} "
                f"({reason}). Download and unzip it into {target.parent} "
                f"so that {target} holds ogb's raw/ and split/ folders"
            )
    finally:
        zip_path.unlink(missing_ok=True)


def _raw_files(name: str, meta: dict) -> list[str]:
    """The files ogb expects in ``raw/`` (its own ``raw_file_names``, from the metadata)."""
    if name.startswith("ogbn-"):
        from ogb.nodeproppred import PygNodePropPredDataset as Dataset
    else:
        from ogb.linkproppred import PygLinkPropPredDataset as Dataset
    view = SimpleNamespace(
        meta_info=meta,
        binary=str(meta.get("binary")) == "True",
        is_hetero=str(meta.get("is hetero")) == "True",
    )
    return list(Dataset.raw_file_names.fget(view))


def _prepare(name: str, root: str, meta: dict, custom: bool) -> Path:
    """Make sure ogb finds a complete folder, so that it neither prompts nor downloads.

    ogb (through PyG) re-downloads whenever a raw file is missing, with no timeout and, above
    1 GB, an interactive prompt; so a folder lacking one is an error here instead.
    """
    folder = Path(meta["dir_path"]) if custom else Path(root) / "_".join(name.split("-"))
    if not custom and (Path(root) / f"{folder.name}_pyg").is_dir():
        folder = Path(root) / f"{folder.name}_pyg"
    release = folder / f"RELEASE_v{meta['version']}.txt"
    if not folder.is_dir() or not any(folder.iterdir()):
        if folder.is_dir():
            folder.rmdir()  # an empty folder, e.g. left by an earlier failed attempt
        zipped = folder.with_name(folder.name + ".zip")
        if custom and zipped.is_file():
            _extract(zipped, folder, meta["download_name"])
        else:
            _fetch(meta["url"], folder, meta["download_name"])
    if not release.is_file():
        raise ValueError(
            f"{folder} has no {release.name}: it is not a complete version-{meta['version']} "
            f"download of {name}; delete the folder (graphkit then downloads it again)"
        )
    missing = [f for f in _raw_files(name, meta) if not (folder / "raw" / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder} is incomplete: raw/{missing[0]} is missing (ogb would try to download "
            f"the whole dataset again). Put the file in {folder / 'raw'}, or delete {folder} "
            "so that graphkit downloads the dataset afresh"
        )
    return folder


def _safe_globals() -> list:
    """Types ogb's files hold, allow-listed for ``torch.load(weights_only=True)`` (torch >= 2.6).

    ogb calls ``torch.load`` without ``weights_only``; its processed PyG data and its
    ``split_dict.pt`` (NumPy arrays) need these types and nothing else.
    """
    import numpy as np
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import EdgeStorage, GlobalStorage, NodeStorage

    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # NumPy < 2
        from numpy.core.multiarray import _reconstruct, scalar
    kinds = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.float16, np.float32,
             np.float64)
    dtypes = [type(np.dtype(k)) for k in kinds]
    return [Data, DataEdgeAttr, DataTensorAttr, GlobalStorage, NodeStorage, EdgeStorage,
            np.ndarray, np.dtype, _reconstruct, scalar, *dtypes]


def load_ogb(
    root: str, name: str, meta_dict: dict | None = None, return_dataset: bool = False
) -> Any:
    """Load ``ogbn-*`` or ``ogbl-*`` dataset ``name`` from ``root`` (or from ``meta_dict``).

    Args:
        root: the data root; the dataset lives in ``<root>/<name with '-' -> '_'>``.
        name: e.g. ``"ogbn-arxiv"``, ``"ogbl-collab"``, or a custom ``DatasetSaver`` name.
        meta_dict: the ``meta_dict`` of a custom dataset written with ``ogb.io.DatasetSaver``.
        return_dataset: return ogb's dataset object instead of the ``Data``.
    """
    if not (name.startswith("ogbn-") or name.startswith("ogbl-")):
        raise ValueError(f"OGB names start with 'ogbn-' or 'ogbl-', got '{name}'")
    meta = _meta_info(name, meta_dict)
    folder = _prepare(name, root, meta, custom=meta_dict is not None)
    if name.startswith("ogbn-"):
        from ogb.nodeproppred import PygNodePropPredDataset as Dataset
    else:
        from ogb.linkproppred import PygLinkPropPredDataset as Dataset
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            dataset = Dataset(name, root=root, meta_dict=meta_dict)
            split = (dataset.get_idx_split() if name.startswith("ogbn-")
                     else dataset.get_edge_split())
    except OSError:
        raise  # names its file already
    except Exception as e:  # ogb's readers fail on damaged files without naming them
        raise ValueError(
            f"ogb could not read {name} from {folder} ({type(e).__name__}: {e}); a file in its "
            f"raw/, split/ or processed/ folder is probably truncated or corrupt: delete "
            f"{folder} and download the dataset again"
        ) from e
    if return_dataset:
        return dataset
    data: Data = dataset[0]
    if name.startswith("ogbn-"):
        if data.y is not None and data.y.dim() == 2 and data.y.size(1) == 1:
            data.y = data.y.view(-1)
        for key, ogb_key in (("train_mask", "train"), ("val_mask", "valid"), ("test_mask", "test")):
            mask = torch.zeros(data.num_nodes, dtype=torch.bool)
            mask[torch.as_tensor(split[ogb_key])] = True
            data[key] = mask
    else:
        data.split_edge = split
    return data


_CITATION = (
    "Hu, Fey, Zitnik, Dong, Ren, Liu, Catasta, Leskovec. Open Graph Benchmark: Datasets for "
    "Machine Learning on Graphs. NeurIPS 2020"
)
register(
    "ogbn-*",
    task="node property prediction (OGB)",
    size="per dataset (see ogb.stanford.edu)",
    source="https://ogb.stanford.edu/docs/nodeprop/",
    citation=_CITATION,
    license="per dataset (ODC-BY, MIT, CC-0; see ogb.stanford.edu)",
)(load_ogb)
register(
    "ogbl-*",
    task="link property prediction (OGB)",
    size="per dataset (see ogb.stanford.edu)",
    source="https://ogb.stanford.edu/docs/linkprop/",
    citation=_CITATION,
    license="per dataset (ODC-BY, MIT, CC-0; see ogb.stanford.edu)",
)(load_ogb)
