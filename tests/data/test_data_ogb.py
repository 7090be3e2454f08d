import os
import shutil
import time

import numpy as np
import pytest
import torch

import graphkit.data as gd


def _save(tmp_path, name, link=False):
    from ogb.io import DatasetSaver

    rng = np.random.default_rng(0)
    n = 12
    ring = np.stack([np.arange(n), (np.arange(n) + 1) % n]).astype(np.int64)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    saver = DatasetSaver(dataset_name=name, is_hetero=False, version=1,
                         root=str(tmp_path / "submission"))
    saver.save_graph_list([{"edge_index": ring, "node_feat": x, "edge_feat": None,
                            "num_nodes": n}])
    if link:
        split = {
            "train": {"edge": ring[:, :8].T},
            "valid": {"edge": ring[:, 8:10].T, "edge_neg": np.array([[0, 5], [1, 7]])},
            "test": {"edge": ring[:, 10:].T, "edge_neg": np.array([[2, 8], [3, 9]])},
        }
        saver.save_split(split, split_name="random")
    else:
        saver.save_target_labels(rng.integers(0, 3, size=(n, 1)))
        saver.save_split({"train": np.arange(6), "valid": np.arange(6, 9),
                          "test": np.arange(9, 12)}, split_name="random")
    mapping = tmp_path / "mapping"
    mapping.mkdir()
    (mapping / "README.md").write_text("identity mapping\n")
    saver.copy_mapping_dir(str(mapping))
    if link:
        saver.save_task_info(task_type="link prediction", eval_metric="mrr")
    else:
        saver.save_task_info(task_type="multiclass classification", eval_metric="acc",
                             num_classes=3)
    meta = saver.get_meta_dict()
    saver.zip()
    saver.cleanup()  # leaves only the zip: graphkit extracts it
    return meta, ring, x


def test_node_dataset_saver_round_trip(tmp_path):
    meta, ring, x = _save(tmp_path, "ogbn-tiny")
    assert not os.path.isdir(meta["dir_path"])
    d = gd.load("ogbn-tiny", root=str(tmp_path), meta_dict=meta)
    assert torch.equal(d.edge_index, torch.from_numpy(ring))
    assert torch.allclose(d.x, torch.from_numpy(x))
    assert d.y.shape == (12,)
    assert d.train_mask.nonzero().view(-1).tolist() == list(range(6))
    assert d.test_mask.nonzero().view(-1).tolist() == [9, 10, 11]
    again = gd.load("ogbn-tiny", root=str(tmp_path), meta_dict=meta)  # processed copy reused
    assert torch.equal(again.edge_index, d.edge_index)
    ds = gd.load("ogbn-tiny", root=str(tmp_path), meta_dict=meta, return_dataset=True)
    assert ds.num_classes == 3 and ds.eval_metric == "acc"


def test_link_dataset_saver_round_trip(tmp_path):
    meta, ring, _ = _save(tmp_path, "ogbl-tiny", link=True)
    d = gd.load("ogbl-tiny", root=str(tmp_path), meta_dict=meta)
    assert d.num_nodes == 12
    assert torch.equal(torch.as_tensor(d.split_edge["train"]["edge"]),
                       torch.from_numpy(ring[:, :8].T))
    assert torch.as_tensor(d.split_edge["test"]["edge_neg"]).tolist() == [[2, 8], [3, 9]]


def test_missing_official_dataset_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHKIT_OFFLINE", "1")  # never start a real download in tests
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError, match="ogbn_arxiv.*GRAPHKIT_OFFLINE"):
        gd.load("ogbn-arxiv", root=str(tmp_path))
    assert time.perf_counter() - start < 30


def test_incomplete_folder_is_an_error_not_a_prompt(tmp_path):
    (tmp_path / "ogbl_collab" / "raw").mkdir(parents=True)
    with pytest.raises(ValueError, match="RELEASE_v1.txt"):
        gd.load("ogbl-collab", root=str(tmp_path))


def test_folder_missing_a_raw_file_is_an_error_not_a_download(tmp_path):
    # ogb would call urlopen without a timeout (and prompt above 1 GB) to fetch it again.
    folder = tmp_path / "ogbn_arxiv"
    folder.mkdir()
    (folder / "RELEASE_v1.txt").write_text("")
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError, match=r"raw/edge\.csv\.gz is missing"):
        gd.load("ogbn-arxiv", root=str(tmp_path))
    assert time.perf_counter() - start < 5


def test_bad_ogb_names(tmp_path):
    with pytest.raises(ValueError, match="unknown OGB dataset"):
        gd.load("ogbn-nonexistent", root=str(tmp_path))


@pytest.mark.parametrize("damage", [b"", b"PK\x03\x04 truncated"])
def test_damaged_raw_file_names_the_folder(tmp_path, damage):
    meta, _, _ = _save(tmp_path, "ogbn-tiny")
    gd.load("ogbn-tiny", root=str(tmp_path), meta_dict=meta)  # extract and process once
    folder = meta["dir_path"]
    shutil.rmtree(os.path.join(folder, "processed"))
    with open(os.path.join(folder, "raw", "data.npz"), "wb") as f:
        f.write(damage)
    with pytest.raises(ValueError, match=f"ogb could not read ogbn-tiny from {folder}.*corrupt"):
        gd.load("ogbn-tiny", root=str(tmp_path), meta_dict=meta)
