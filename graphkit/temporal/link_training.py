r"""The shared temporal link-prediction loop (chronological batches, one negative per event).

Any model following the small protocol :class:`TemporalLinkModel` can be trained and evaluated
here: NAT, the TGN baseline, and the memory-based family of the PRES issue.

Protocol per epoch (TGN's, `Rossi et al. 2020 <https://arxiv.org/abs/2006.10637>`_, for every
model, so that NAT and the memory-based models are compared on one split; the training
events are those of :func:`graphkit.data.temporal.chronological_split`, which drops the
training-period events of the nodes held out for the inductive test, as TGN's code does.
NAT's official code, `Luo and Li 2022 <https://arxiv.org/abs/2209.01084>`_, differs: its
transductive runs train on every training-period event, and its inductive runs reset the
caches and replay all training and validation events before the test):

1. ``model.reset_state()``; stream the training events in chronological batches of ``B``: for
   each batch draw one negative destination per event uniformly from the training
   destinations (:func:`graphkit.sampling.uniform_negative_destinations`), score, take an Adam
   step on :math:`\mathrm{BCE}(s^+, 1) + \mathrm{BCE}(s^-, 0)`, then
   ``model.update_state(batch)`` with the positive events only (no gradient);
2. keep streaming (no reset) over the validation events in evaluation mode; the state after
   validation and the weights are kept for the epoch of best validation AP (early stopping
   with ``patience``);
3. after training, the best epoch's weights and state are restored and the test events are
   streamed the same way.

Evaluation negatives are drawn uniformly from every destination of the stream with a generator
re-seeded for each split, so every epoch and every model sees the same negatives. As in the
TGN and TGAT code, neither draw excludes the event's own destination: a negative equal to its
positive scores the same (0.47% of Enron's and 0.02% of UCI's test events at batch 200). The
*inductive* scores are those of evaluation events touching a node never seen in training
(``inductive_*_mask`` of :func:`graphkit.data.temporal.chronological_split`), taken from the
same pass. AP and AUC are reported both averaged over consecutive groups of ``B`` events (the
TGAT/CAW/NAT convention, "per batch") and pooled over the whole split.

Checkpointing: ``fit(..., checkpoint=path)`` saves the weights, model state, optimiser,
random-number states and the best epoch after every epoch; ``fit(..., resume=True)`` continues
from it and gives the same predictions as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import TemporalData

from graphkit.data.io import atomic_write
from graphkit.data.temporal import TemporalSplit
from graphkit.data.validation import check_temporal_data
from graphkit.metrics import average_precision, roc_auc
from graphkit.sampling import uniform_negative_destinations
from graphkit.train.early_stopping import EarlyStopping

__all__ = [
    "FitResult",
    "LinkMetrics",
    "TemporalLinkModel",
    "chronological_batches",
    "fit",
    "link_metrics",
    "stream_scores",
    "train_epoch",
]


@runtime_checkable
class TemporalLinkModel(Protocol):
    """What the loop needs from a model (a :class:`torch.nn.Module`).

    * ``reset_state()``: forget the stream (memory, caches, neighbour buffers);
    * ``score(src, dst, t, msg, neg_dst) -> (pos_logits, neg_logits)``: logits ``[B]`` of the
      events ``(src, dst, t)`` and of the negatives ``(src, neg_dst, t)``, from the state
      *before* the batch;
    * ``update_state(src, dst, t, msg)``: absorb the batch's events (called without gradient);
    * the whole state is in ``state_dict()`` (buffers or ``get_extra_state``).
    """

    def reset_state(self) -> None: ...

    def score(self, src: Tensor, dst: Tensor, t: Tensor, msg: Tensor, neg_dst: Tensor
              ) -> tuple[Tensor, Tensor]: ...

    def update_state(self, src: Tensor, dst: Tensor, t: Tensor, msg: Tensor) -> None: ...


def model_num_nodes(model: torch.nn.Module) -> int | None:
    """The number of nodes a model holds state for (the smallest ``num_nodes`` attribute of its
    modules: memory, caches), or ``None`` when it declares none."""
    sizes = [m.num_nodes for m in model.modules() if isinstance(getattr(m, "num_nodes", None), int)]
    return min(sizes) if sizes else None


@dataclasses.dataclass
class LinkMetrics:
    """AP and AUC of one split, averaged per batch of ``batch_size`` events and pooled."""

    ap: float
    auc: float
    ap_pooled: float
    auc_pooled: float
    num_events: int

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class FitResult:
    """What :func:`fit` measured.

    Attributes:
        val, test: transductive metrics (every event of the split).
        val_inductive, test_inductive: metrics of the events touching a node unseen in training
            (``None`` when the split has none).
        best_epoch: the epoch (0-based) whose weights and state were restored.
        epoch_seconds: training wall time of each epoch (excluding validation).
        history: per epoch ``{"loss", "val_ap", "val_auc", "seconds", "cpu_seconds"}``.
        test_pos, test_neg: the test logits, in event order.
        epoch_cpu_seconds: CPU time of the process during each training epoch (all its
            threads); unlike the wall time it hardly changes when other processes load the
            machine.
    """

    val: LinkMetrics
    test: LinkMetrics
    val_inductive: LinkMetrics | None
    test_inductive: LinkMetrics | None
    best_epoch: int
    epoch_seconds: list[float]
    history: list[dict[str, float]]
    test_pos: Tensor
    test_neg: Tensor
    epoch_cpu_seconds: list[float] = dataclasses.field(default_factory=list)


def chronological_batches(index: Tensor, batch_size: int) -> Iterator[Tensor]:
    """Consecutive slices of ``batch_size`` event ids (the events are time-sorted)."""
    if int(batch_size) <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    for start in range(0, index.numel(), int(batch_size)):
        yield index[start:start + int(batch_size)]


def _check_index(index: Tensor, data: TemporalData) -> None:
    """``index`` must be a vector of event ids of ``data`` (a float or out-of-range id failed
    in the first batch's indexing, naming neither)."""
    if not isinstance(index, Tensor) or index.dim() != 1 or index.is_floating_point() or \
            index.dtype == torch.bool:
        raise ValueError("index must be a one-dimensional tensor of event ids (use "
                         "mask.nonzero().view(-1) for a boolean mask)")
    if index.numel():
        lo, hi = (int(v) for v in torch.aminmax(index))
        if lo < 0 or hi >= data.num_events:
            raise ValueError(f"index holds event id {lo if lo < 0 else hi}, out of range for "
                             f"the stream's {data.num_events} events")


def _batch(data: TemporalData, idx: Tensor, device: torch.device
           ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return (data.src[idx].to(device), data.dst[idx].to(device), data.t[idx].to(device),
            data.msg[idx].to(device))


def _model_device(model: torch.nn.Module) -> torch.device:
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


def train_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, data: TemporalData,
                index: Tensor, batch_size: int, neg_pool: Tensor,
                generator: torch.Generator | None = None) -> float:
    """One pass over the events ``index`` in chronological batches; returns the mean loss.

    The state is *not* reset here (call ``model.reset_state()`` first for a fresh epoch).
    """
    _check_index(index, data)
    model.train()
    device = _model_device(model)
    total, count = 0.0, 0
    for idx in chronological_batches(index, batch_size):
        src, dst, t, msg = _batch(data, idx, device)
        neg = uniform_negative_destinations(idx.numel(), neg_pool, generator).to(device)
        optimizer.zero_grad()
        pos_out, neg_out = model.score(src, dst, t, msg, neg)
        loss = F.binary_cross_entropy_with_logits(pos_out, torch.ones_like(pos_out)) + \
            F.binary_cross_entropy_with_logits(neg_out, torch.zeros_like(neg_out))
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.update_state(src, dst, t, msg)
        total += float(loss.detach()) * idx.numel()
        count += idx.numel()
    return total / max(count, 1)


@torch.no_grad()
def stream_scores(model: torch.nn.Module, data: TemporalData, index: Tensor, batch_size: int,
                  neg_pool: Tensor, generator: torch.Generator | None = None
                  ) -> tuple[Tensor, Tensor]:
    """Score the events ``index`` (and one negative each) in evaluation mode, updating state.

    Returns:
        ``(pos_logits, neg_logits)``, each ``[len(index)]`` on the CPU, in event order.
    """
    _check_index(index, data)
    model.eval()
    device = _model_device(model)
    pos, neg = [], []
    for idx in chronological_batches(index, batch_size):
        src, dst, t, msg = _batch(data, idx, device)
        neg_dst = uniform_negative_destinations(idx.numel(), neg_pool, generator).to(device)
        p, n = model.score(src, dst, t, msg, neg_dst)
        model.update_state(src, dst, t, msg)
        pos.append(p.detach().float().cpu())
        neg.append(n.detach().float().cpu())
    if not pos:
        return torch.empty(0), torch.empty(0)
    return torch.cat(pos), torch.cat(neg)


def link_metrics(pos: Tensor, neg: Tensor, batch_size: int) -> LinkMetrics:
    """AP/AUC of positive vs negative logits, per group of ``batch_size`` events and pooled.

    Groups are consecutive events in time order; a group's AP and AUC use its ``b`` positives
    and ``b`` negatives, and the reported value is the mean over groups.
    """
    if pos.dim() != 1 or neg.dim() != 1:
        raise ValueError(f"pos and neg must be one-dimensional logits, got shapes "
                         f"{list(pos.shape)} and {list(neg.shape)}")
    if pos.numel() != neg.numel():
        raise ValueError(f"pos and neg must have the same length, got {pos.numel()} "
                         f"and {neg.numel()}")
    if int(batch_size) <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if pos.numel() == 0:
        raise ValueError("no events to evaluate")
    aps, aucs = [], []
    for start in range(0, pos.numel(), int(batch_size)):
        p, n = pos[start:start + batch_size], neg[start:start + batch_size]
        y = torch.cat([torch.ones_like(p), torch.zeros_like(n)])
        s = torch.cat([p, n])
        aps.append(average_precision(y, s))
        aucs.append(roc_auc(y, s))
    y = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)])
    s = torch.cat([pos, neg])
    return LinkMetrics(ap=sum(aps) / len(aps), auc=sum(aucs) / len(aucs),
                       ap_pooled=average_precision(y, s), auc_pooled=roc_auc(y, s),
                       num_events=pos.numel())


def _split_metrics(pos: Tensor, neg: Tensor, inductive: Tensor, batch_size: int
                   ) -> tuple[LinkMetrics, LinkMetrics | None]:
    trans = link_metrics(pos, neg, batch_size)
    ind = link_metrics(pos[inductive], neg[inductive], batch_size) \
        if bool(inductive.any()) else None
    return trans, ind


def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    state = {"train": generator.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(generator: torch.Generator, state: dict[str, Any]) -> None:
    # the states are CPU byte tensors, whatever device the checkpoint was mapped to
    generator.set_state(state["train"].cpu())
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def fit(
    model: torch.nn.Module,
    data: TemporalData,
    split: TemporalSplit,
    epochs: int = 3,
    batch_size: int = 200,
    lr: float = 1e-4,
    patience: int | None = 3,
    seed: int = 0,
    eval_batch_size: int | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    verbose: bool = False,
) -> FitResult:
    """Train ``model`` on ``split.train_mask`` and evaluate on validation and test.

    Args:
        model: a :class:`torch.nn.Module` following :class:`TemporalLinkModel`, already on its
            device.
        data: the time-sorted event stream.
        split: masks from :func:`graphkit.data.temporal.chronological_split`.
        epochs: maximum number of epochs. (default: ``3``)
        batch_size: training batch (events per step). (default: ``200``)
        lr: Adam learning rate when no ``optimizer`` is given. (default: ``1e-4``)
        patience: stop after this many epochs without a better validation AP (``None``: never).
        seed: seeds the negative draws (training: ``seed``; validation and test: fixed
            generators derived from it).
        eval_batch_size: batch size of evaluation (default: ``batch_size``); also the group
            size of the per-batch metrics.
        optimizer: default ``Adam(model.parameters(), lr)``.
        checkpoint: file written after every epoch (atomically).
        resume: continue from ``checkpoint`` when it exists, on the model's device whatever
            device wrote it.
    """
    if not isinstance(model, TemporalLinkModel):
        raise ValueError("model must define reset_state(), score() and update_state()")
    if int(epochs) <= 0:
        raise ValueError(f"epochs must be positive, got {epochs}")
    if int(batch_size) <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if patience is not None and int(patience) <= 0:
        raise ValueError(f"patience must be positive (or None), got {patience}")
    if eval_batch_size is not None and int(eval_batch_size) <= 0:
        raise ValueError(f"eval_batch_size must be positive, got {eval_batch_size}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs a checkpoint path")
    check_temporal_data(data, model_num_nodes(model))
    if getattr(data, "msg", None) is None:
        raise ValueError("data has no msg: a stream without event features needs "
                         "msg=torch.zeros(num_events, 0)")
    for name in ("train_mask", "val_mask", "test_mask", "inductive_val_mask",
                 "inductive_test_mask"):
        mask = getattr(split, name)
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.dim() != 1:
            raise ValueError(f"split.{name} must be a one-dimensional boolean mask over the "
                             "events")
        if mask.numel() != data.num_events:
            raise ValueError(f"the split has {mask.numel()} events ({name}) but the data has "
                             f"{data.num_events}")
    eval_bs = int(eval_batch_size or batch_size)
    train_idx = split.train_mask.cpu().nonzero().view(-1)
    val_idx = split.val_mask.cpu().nonzero().view(-1)
    test_idx = split.test_mask.cpu().nonzero().view(-1)
    if train_idx.numel() == 0 or val_idx.numel() == 0 or test_idx.numel() == 0:
        raise ValueError("the split needs training, validation and test events")
    train_pool = torch.unique(data.dst[train_idx].cpu())
    eval_pool = torch.unique(data.dst.cpu())
    val_ind = split.inductive_val_mask.cpu()[val_idx]
    test_ind = split.inductive_test_mask.cpu()[test_idx]

    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(int(seed))
    # best validation AP; an epoch must beat -inf (a NaN AP never does) and nothing is kept
    # before one does; the checkpoint stores best_ap, best_epoch, stale and best_state
    stopper = EarlyStopping("max", patience, baseline=-math.inf, baseline_epoch=-1)
    start_epoch = 0
    best_val: tuple[LinkMetrics, LinkMetrics | None] | None = None
    history: list[dict[str, float]] = []
    if resume and checkpoint is not None and os.path.exists(checkpoint):
        try:
            # onto the run's device: a checkpoint written on a GPU resumes on a CPU machine
            ckpt = torch.load(checkpoint, weights_only=False, map_location=_model_device(model))
        except Exception as err:  # truncated or foreign file: name it
            raise ValueError(f"cannot resume from {os.fspath(checkpoint)}: not a checkpoint "
                             f"written by fit ({type(err).__name__}: {err})") from err
        if not isinstance(ckpt, dict) or not {"model", "optimizer", "rng", "epoch"} <= ckpt.keys():
            raise ValueError(f"cannot resume from {os.fspath(checkpoint)}: not a checkpoint "
                             "written by fit")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        _set_rng_state(generator, ckpt["rng"])
        start_epoch, history, best_val = ckpt["epoch"] + 1, ckpt["history"], ckpt["best_val"]
        stopper.best, stopper.best_epoch = ckpt["best_ap"], ckpt["best_epoch"]
        stopper.num_bad, stopper.best_state = ckpt["stale"], ckpt["best_state"]

    for epoch in range(start_epoch, int(epochs)):
        if stopper.should_stop:
            break
        model.reset_state()
        t0, c0 = time.perf_counter(), time.process_time()
        loss = train_epoch(model, optimizer, data, train_idx, batch_size, train_pool, generator)
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
        pos, neg = stream_scores(model, data, val_idx, eval_bs, eval_pool,
                                 torch.Generator().manual_seed(int(seed) + 1_000_003))
        val, val_inductive = _split_metrics(pos, neg, val_ind, eval_bs)
        history.append({"loss": loss, "val_ap": val.ap, "val_auc": val.auc, "seconds": seconds,
                        "cpu_seconds": cpu_seconds})
        if verbose:
            print(f"epoch {epoch:02d} loss {loss:.4f} val AP {val.ap:.4f} "
                  f"AUC {val.auc:.4f} ({seconds:.1f} s)")
        if stopper.step(val.ap, epoch=epoch):
            stopper.snapshot(model)  # deepcopy: the model state may hold non-tensor extras
            best_val = (val, val_inductive)
        if checkpoint is not None:
            ckpt = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "rng": _rng_state(generator), "epoch": epoch, "best_ap": stopper.best,
                    "best_epoch": stopper.best_epoch, "stale": stopper.num_bad,
                    "best_state": stopper.best_state, "best_val": best_val,
                    "history": history}
            with atomic_write(checkpoint, "wb") as f:
                torch.save(ckpt, f)

    if stopper.best_state is None or best_val is None:
        raise ValueError("no epoch was trained (the checkpoint already holds every epoch?)")
    model.eval()  # the state was saved in eval mode (after validation)
    stopper.restore(model)  # weights and the state after the best validation
    pos, neg = stream_scores(model, data, test_idx, eval_bs, eval_pool,
                             torch.Generator().manual_seed(int(seed) + 2_000_003))
    test, test_inductive = _split_metrics(pos, neg, test_ind, eval_bs)
    return FitResult(
        val=best_val[0],
        test=test,
        val_inductive=best_val[1],
        test_inductive=test_inductive,
        best_epoch=stopper.best_epoch,
        epoch_seconds=[h["seconds"] for h in history],
        history=history,
        test_pos=pos,
        test_neg=neg,
        epoch_cpu_seconds=[h.get("cpu_seconds", math.nan) for h in history],
    )
