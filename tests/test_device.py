"""graphkit.device.check_device at the library's entry points: a device this machine lacks is
one ValueError naming it, before any work (it was torch's AssertionError, "Torch not compiled
with CUDA enabled", from deep inside the call)."""

import pytest
import torch
from torch_geometric.data import Data

from graphkit.device import check_device

MISSING = "cuda:0" if not torch.cuda.is_available() else "cuda:99"


def _cora_like() -> Data:
    idx = torch.arange(12)
    return Data(x=torch.randn(12, 4), edge_index=torch.stack([idx, (idx + 1) % 12]),
                y=idx % 2, train_mask=idx < 4, val_mask=(idx >= 4) & (idx < 8),
                test_mask=idx >= 8)


def test_the_checker_names_the_device():
    check_device("cpu")
    check_device(torch.device("cpu"))
    check_device(None)
    with pytest.raises(ValueError, match=rf"device {MISSING}: "):
        check_device(MISSING, flag="device")
    with pytest.raises(ValueError, match="is not a torch device"):
        check_device("gpu0", flag="device")


def test_entry_points_refuse_a_missing_device_up_front():
    from graphkit.embed import fastrp
    from graphkit.nn.models import GCN
    from graphkit.nn.quant import search
    from graphkit.robust import STABLE
    from graphkit.train import train_node_classifier

    data = _cora_like()
    calls = [lambda: train_node_classifier(GCN(4, 8, 2), data, epochs=1, device=MISSING),
             lambda: search(data, 0.0, epochs=1, device=MISSING),
             lambda: STABLE(device=MISSING),
             lambda: fastrp(data.edge_index, dim=4, device=MISSING)]
    for call in calls:
        with pytest.raises(ValueError, match=rf"^device {MISSING}: "):
            call()
