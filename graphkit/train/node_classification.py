"""A full-batch node-classification training loop shared by graphkit's methods.

One optimiser step per epoch on the training nodes, then one evaluation pass over all nodes;
the reported figures are those of the selected (best-validation) epoch.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data

from graphkit.benchmarking import synchronize
from graphkit.data.validation import check_graph, check_num_nodes, is_integer
from graphkit.device import check_device
from graphkit.metrics import accuracy
from graphkit.train.early_stopping import EarlyStopping, pyg_citation_stop

__all__ = ["NodeClassificationResult", "train_node_classifier", "default_forward"]

_SELECTIONS = ("val_acc", "val_loss")
_EARLY_STOPPING = ("patience", "pyg_citation")


@dataclass
class NodeClassificationResult:
    """What :func:`train_node_classifier` measured.

    Attributes:
        best_epoch: the selected epoch (1-based).
        train_acc, val_acc, test_acc: accuracies (fractions) at ``best_epoch``; ``test_acc`` is
            NaN when the data has no test mask.
        val_loss: validation loss at ``best_epoch``.
        epoch_times: seconds of each epoch's training step (forward, backward, optimiser step).
        history: one dict per epoch run: ``epoch``, ``loss`` (training loss of the step) and
            ``{train,val,test}_{loss,acc}`` of the evaluation pass.
    """

    best_epoch: int
    train_acc: float
    val_acc: float
    test_acc: float
    val_loss: float
    epoch_times: list[float] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def epochs_run(self) -> int:
        """Number of epochs run before (early) stopping."""
        return len(self.history)

    @property
    def train_seconds(self) -> float:
        """Total time of the training steps."""
        return float(sum(self.epoch_times))


def default_forward(model: torch.nn.Module, data: Data) -> Tensor:
    """``model(data.x, data.edge_index)``, the signature of PyG's node-level models."""
    return model(data.x, data.edge_index)


def _split(data: Data, name: str, split: int | None, required: bool) -> Tensor | None:
    """The node index or bool mask of one split; a ``ValueError`` naming what is wrong."""
    mask = data.get(f"{name}_mask") if hasattr(data, "get") else getattr(data, f"{name}_mask")
    if mask is None:
        if required:
            raise ValueError(f"data has no {name}_mask")
        return None
    if not isinstance(mask, Tensor):
        raise ValueError(f"{name}_mask must be a tensor, got {type(mask).__name__}")
    if mask.dtype == torch.bool:
        if mask.dim() == 2:
            if split is None:
                raise ValueError(
                    f"{name}_mask has {mask.size(1)} splits (shape {tuple(mask.shape)}); "
                    "choose one with split=<column>"
                )
            if not 0 <= split < mask.size(1):
                raise ValueError(f"split={split} out of range for {mask.size(1)} splits")
            mask = mask[:, split]
        if mask.dim() != 1 or mask.numel() != data.num_nodes:
            raise ValueError(
                f"{name}_mask must be a bool vector of length num_nodes={data.num_nodes}, "
                f"got shape {tuple(mask.shape)}"
            )
        if not bool(mask.any()):
            raise ValueError(f"{name}_mask selects no nodes")
        return mask
    if mask.dtype in (torch.int64, torch.int32) and mask.dim() == 1:
        if mask.numel() == 0:
            raise ValueError(f"{name}_mask selects no nodes")
        if int(mask.min()) < 0 or int(mask.max()) >= data.num_nodes:
            raise ValueError(f"{name}_mask holds node indices outside [0, {data.num_nodes})")
        # a repeated id counts a node twice in the loss and accuracy; an integer 0/1 mask
        # (mask.long()) read as indices selects nodes 0 and 1 only, and repeats them
        if torch.unique(mask).numel() != mask.numel():
            if mask.numel() == data.num_nodes and int(mask.max()) <= 1:
                raise ValueError(f"{name}_mask is an integer vector of length num_nodes holding "
                                 "only 0 and 1: it looks like a 0/1 mask, which would be read "
                                 f"as node indices; pass {name}_mask.bool()")
            raise ValueError(f"{name}_mask repeats node indices: an index vector must list "
                             "each node once")
        return mask.long()
    raise ValueError(
        f"{name}_mask must be a bool mask or an integer index vector, got dtype {mask.dtype} "
        f"and shape {tuple(mask.shape)}"
    )


def _labels(data: Data) -> Tensor:
    y = getattr(data, "y", None)
    if not isinstance(y, Tensor):
        raise ValueError("data has no label tensor y")
    if y.dim() == 2 and y.size(1) == 1:
        y = y.view(-1)
    if y.dim() != 1 or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(
            f"data.y must hold one integer class per node, got dtype {y.dtype} and shape "
            f"{tuple(y.shape)}; pass loss_fn and evaluate multi-label tasks yourself"
        )
    check_num_nodes(data.num_nodes, y, name="data.y")
    return y.long()  # int32 / uint8 class ids: cross-entropy needs int64 (a no-op for int64)


def _check_classes(y: Tensor, masks: dict[str, Tensor | None], scores: Tensor) -> None:
    """The default cross-entropy needs every class id the splits select in [0, C), with C
    the width of the model's scores: a ``ValueError`` naming the id and the split."""
    num_classes = scores.size(-1)
    for name, mask in masks.items():
        if mask is None:
            continue
        lo, hi = (int(v) for v in torch.aminmax(y[mask]))
        bad = lo if lo < 0 else hi if hi >= num_classes else None
        if bad is not None:
            raise ValueError(f"data.y holds class {bad} at a node of {name}_mask, out of range "
                             f"for the model's {num_classes} output classes")


def _check_args(epochs: int, patience: int | None, selection: str, early_stopping: str,
                lr: float) -> None:
    # a float count fails later inside range() or slicing, or is rounded up silently
    if not is_integer(epochs):
        raise ValueError(f"epochs must be an integer, got {epochs!r}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if patience is not None and not is_integer(patience):
        raise ValueError(f"patience must be None or an integer, got {patience!r}")
    if patience is not None and patience < 1:
        raise ValueError(f"patience must be None or >= 1, got {patience}")
    if selection not in _SELECTIONS:
        raise ValueError(f"selection must be one of {_SELECTIONS}, got {selection!r}")
    if early_stopping not in _EARLY_STOPPING:
        raise ValueError(f"early_stopping must be one of {_EARLY_STOPPING}, got {early_stopping!r}")
    if lr <= 0:
        raise ValueError(f"lr must be positive, got {lr}")


def train_node_classifier(
    model: torch.nn.Module,
    data: Data,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 0.01,
    weight_decay: float = 5e-4,
    epochs: int = 200,
    patience: int | None = None,
    selection: str | None = None,
    early_stopping: str = "patience",
    device: str | torch.device = "cpu",
    forward: Callable[[torch.nn.Module, Data], Tensor] | None = None,
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
    train_loss_fn: Callable[[Tensor, Data], Tensor] | None = None,
    split: int | None = None,
    restore_best: bool = True,
    verbose: bool | int = False,
) -> NodeClassificationResult:
    r"""Train ``model`` full-batch on ``data.train_mask`` and select the best validation epoch.

    Each epoch takes one optimiser step on the training loss, then evaluates all splits in
    ``eval()`` mode without gradients. The model is moved to ``device`` and trained as given
    (call ``model.reset_parameters()`` first for a fresh run); ``data`` is not modified.

    Selection (``selection``): ``"val_acc"`` keeps the first epoch with the highest validation
    accuracy (OGB examples), ``"val_loss"`` the first with the lowest validation loss (Kipf's
    GCN, PyG's citation benchmark). The result reports accuracies at the selected epoch.

    Early stopping (``early_stopping``, active when ``patience`` is set):

    * ``"patience"``: stop after ``patience`` epochs without improving the selection metric.
    * ``"pyg_citation"``: the rule of PyG's ``benchmark/citation`` (used by DAGNN). Once
      ``epoch > epochs // 2``, stop when the current validation loss exceeds the mean of the
      previous ``patience`` validation losses,
      :math:`\ell_t > \frac{1}{p}\sum_{s=t-p}^{t-1} \ell_s`. Its selection defaults to
      ``"val_loss"``.

    Args:
        model (torch.nn.Module): returns class scores ``[num_nodes, C]`` (logits or
            log-probabilities: the default cross-entropy treats both alike).
        data (torch_geometric.data.Data): with ``y`` (``[N]`` integer classes), ``train_mask``,
            ``val_mask`` and optionally ``test_mask``; masks are bool vectors, integer index
            vectors (each node once; an integer 0/1 mask is refused: pass ``mask.bool()``),
            or bool ``[N, S]`` matrices of ``S`` splits (pick one with ``split``).
        optimizer (torch.optim.Optimizer, optional): defaults to
            ``Adam(model.parameters(), lr, weight_decay)``.
        lr (float): learning rate of the default optimiser. (default: :obj:`0.01`)
        weight_decay (float): weight decay of the default optimiser. (default: :obj:`5e-4`)
        epochs (int): maximum number of epochs. (default: :obj:`200`)
        patience (int, optional): early-stopping window; ``None`` runs all epochs.
        selection (str, optional): ``"val_acc"`` or ``"val_loss"``; defaults to ``"val_acc"``
            (``"val_loss"`` under ``early_stopping="pyg_citation"``).
        early_stopping (str): ``"patience"`` or ``"pyg_citation"``. (default: ``"patience"``)
        device (str or torch.device): where to train. (default: ``"cpu"``)
        forward (callable, optional): ``forward(model, data) -> scores`` for models with another
            signature. (default: ``model(data.x, data.edge_index)``)
        loss_fn (callable, optional): ``loss_fn(scores[mask], y[mask])``.
            (default: :func:`torch.nn.functional.cross_entropy`)
        train_loss_fn (callable, optional): ``train_loss_fn(scores, data)``, the objective of
            the training step from the scores of *all* nodes and the data (on ``device``), for
            losses that also use unlabelled nodes (e.g. distillation); it replaces
            ``loss_fn(scores[train], y[train])`` in the step only, evaluation still uses
            ``loss_fn``. (default: :obj:`None`)
        split (int, optional): column of 2-D masks to use.
        restore_best (bool): load the weights of the selected epoch into ``model`` at the end.
            (default: :obj:`True`)
        verbose (bool or int): print every epoch (``True``) or every ``verbose`` epochs.

    Returns:
        NodeClassificationResult
    """
    if selection is None:
        selection = "val_loss" if early_stopping == "pyg_citation" else "val_acc"
    _check_args(epochs, patience, selection, early_stopping, lr)
    if forward is None:
        for key in ("x", "edge_index"):
            if getattr(data, key, None) is None:
                raise ValueError(f"data has no {key}: the default forward calls "
                                 "model(data.x, data.edge_index); pass forward= otherwise")
    check_labels = loss_fn is None
    forward = forward or default_forward
    loss_fn = loss_fn or F.cross_entropy
    check_device(device, flag="device")  # before any work, in one line
    device = torch.device(device)
    check_graph(data)
    data = copy.copy(data).to(device)
    y = _labels(data)
    masks = {name: _split(data, name, split, name != "test") for name in ("train", "val", "test")}
    model = model.to(device)
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    log_every = 1 if verbose is True else int(verbose)

    history: list[dict[str, float]] = []
    val_losses: list[float] = []  # the series of the pyg_citation rule
    epoch_times: list[float] = []
    best: dict[str, float] | None = None
    # the first epoch is always a candidate (no baseline); the weights are cloned tensors
    stopper = EarlyStopping("max" if selection == "val_acc" else "min", patience,
                            copy_mode="clone")
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        model.train()
        optimizer.zero_grad()
        out = forward(model, data)
        if epoch == 1 and check_labels:
            _check_classes(y, masks, out)
        if train_loss_fn is not None:
            loss = train_loss_fn(out, data)
        else:
            loss = loss_fn(out[masks["train"]], y[masks["train"]])
        loss.backward()
        optimizer.step()
        synchronize(device)
        epoch_times.append(time.perf_counter() - t0)

        try:
            evaluated = _evaluate(model, data, y, masks, forward, loss_fn)
        except ValueError as err:
            raise ValueError(f"epoch {epoch}: {err}") from None
        record = {"epoch": epoch, "loss": float(loss.detach()), **evaluated}
        history.append(record)
        val_losses.append(record["val_loss"])
        if stopper.step(record[selection], epoch=epoch):
            best = record
            if restore_best:
                stopper.snapshot(model)
        if log_every and epoch % log_every == 0:
            print(f"epoch {epoch:04d} loss {record['loss']:.4f} "
                  f"train {record['train_acc']:.4f} val {record['val_acc']:.4f} "
                  f"(loss {record['val_loss']:.4f}) test {record['test_acc']:.4f}")
        if early_stopping == "patience":
            if stopper.should_stop:
                break
        elif patience is not None and pyg_citation_stop(val_losses, patience, epochs):
            break

    assert best is not None
    if restore_best:
        stopper.restore(model)
    return NodeClassificationResult(
        best_epoch=int(best["epoch"]),
        train_acc=best["train_acc"],
        val_acc=best["val_acc"],
        test_acc=best["test_acc"],
        val_loss=best["val_loss"],
        epoch_times=epoch_times,
        history=history,
    )


@torch.no_grad()
def _evaluate(model: torch.nn.Module, data: Data, y: Tensor, masks: dict[str, Tensor | None],
              forward: Callable[[torch.nn.Module, Data], Tensor],
              loss_fn: Callable[[Tensor, Tensor], Tensor]) -> dict[str, float]:
    model.eval()
    out = forward(model, data)
    if not bool(torch.isfinite(out).all()):  # named here, not as the metric's bad y_pred
        raise ValueError("the model's output holds NaN or infinite values: training diverged "
                         "(a lower learning rate, or gradient clipping, may help)")
    record: dict[str, Any] = {}
    for name, mask in masks.items():
        if mask is None:
            record[f"{name}_loss"] = record[f"{name}_acc"] = float("nan")
            continue
        record[f"{name}_loss"] = float(loss_fn(out[mask], y[mask]))
        record[f"{name}_acc"] = accuracy(out[mask], y[mask])
    return record
