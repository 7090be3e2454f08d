"""End-to-end check on Pro-GNN's metattacked Cora (slow: a full contrastive training)."""

import pytest
import torch

from graphkit.data import load
from graphkit.metrics import accuracy
from graphkit.robust import STABLE, GCNDefense, stable_preset
from graphkit.train import seed_everything


@pytest.mark.slow
def test_stable_beats_gcn_on_cora_meta20(data_root):
    data = load("prognn-cora", root=data_root, attack="meta", rate=0.2)
    mask = data.test_mask
    seed_everything(0)
    gcn = accuracy(GCNDefense().fit(data).predict()[mask], data.y[mask])
    seed_everything(0)
    model = STABLE(stable_preset("cora", 0.2)).fit(data, generator=torch.Generator().manual_seed(0))
    stable = accuracy(model.predict()[mask], data.y[mask])
    assert gcn <= 0.65
    assert stable >= gcn + 0.12
