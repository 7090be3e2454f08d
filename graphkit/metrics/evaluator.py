"""A drop-in for OGB's ``Evaluator`` (``ogb.nodeproppred`` and ``ogb.linkproppred``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from graphkit.metrics._utils import check_finite
from graphkit.metrics.classification import roc_auc
from graphkit.metrics.ranking import hits_at_k, ranks

__all__ = ["Evaluator", "OGB_METRICS"]

#: ``name -> (eval metric, num tasks)`` for the OGB node and link property prediction datasets
#: (OGB's ``master.csv``; ``num tasks`` is ``None`` for link prediction).
OGB_METRICS: dict[str, tuple[str, int | None]] = {
    "ogbn-proteins": ("rocauc", 112),
    "ogbn-products": ("acc", 1),
    "ogbn-arxiv": ("acc", 1),
    "ogbn-mag": ("acc", 1),
    "ogbn-papers100M": ("acc", 1),
    "ogbl-ppa": ("hits@100", None),
    "ogbl-collab": ("hits@50", None),
    "ogbl-citation2": ("mrr", None),
    "ogbl-wikikg2": ("mrr", None),
    "ogbl-ddi": ("hits@20", None),
    "ogbl-biokg": ("mrr", None),
    "ogbl-vessel": ("rocauc", None),
}


def _array(x: Any, key: str) -> np.ndarray | Tensor:
    if isinstance(x, (np.ndarray, Tensor)):
        return x
    raise ValueError(f"{key} must be a numpy ndarray or a torch tensor, got {type(x).__name__}")


class Evaluator:
    """Evaluate predictions for an OGB dataset, with the keys and results of ``ogb``'s own.

    ``Evaluator(name).eval(input_dict)`` takes

    * ``ogbn-*`` with metric ``acc``: ``{"y_true", "y_pred"}`` of shape ``[N, num_tasks]``
      (predicted labels); returns ``{"acc"}``, the per-task accuracy over labelled (non-NaN)
      entries, averaged over tasks;
    * ``ogbn-proteins`` (``rocauc``): scores ``y_pred``; returns ``{"rocauc"}`` averaged over the
      tasks that have both a positive and a negative label;
    * ``ogbl-*`` with ``hits@K``: ``{"y_pred_pos" [N], "y_pred_neg" [M]}``; returns
      ``{"hits@K"}`` (``K`` is the attribute ``self.K``, settable as in OGB);
    * ``ogbl-*`` with ``mrr``: ``{"y_pred_pos" [N], "y_pred_neg" [N, M]}``; returns the lists
      ``hits@1_list``, ``hits@3_list``, ``hits@10_list``, ``mrr_list`` (tensors for tensor input,
      arrays otherwise);
    * ``ogbl-vessel`` (``rocauc``): positives against negatives, ``{"rocauc"}``.

    Unlike OGB's, label tensors of shape ``[N]`` are accepted for single-task ``acc``, and the
    ``mrr`` metric also works on NumPy input. Input errors raise ``ValueError``.

    Args:
        name (str): an OGB dataset name (see :data:`OGB_METRICS`).
    """

    def __init__(self, name: str) -> None:
        if name not in OGB_METRICS:
            raise ValueError(
                f"Invalid dataset name {name!r}; available: {', '.join(OGB_METRICS)}"
            )
        self.name = name
        self.eval_metric, self.num_tasks = OGB_METRICS[name]
        if self.eval_metric.startswith("hits@"):
            self.K = int(self.eval_metric.split("@")[1])

    def __repr__(self) -> str:
        return f"Evaluator({self.name!r}, metric={self.eval_metric!r})"

    @property
    def expected_input_format(self) -> str:
        """What :meth:`eval` takes, as OGB's attribute of the same name describes it."""
        head = f"==== Expected input format of Evaluator for {self.name}\n"
        array = "numpy ndarray or torch tensor"
        if self.name.startswith("ogbn-"):
            shape = f"(num_nodes, {self.num_tasks})"
            what = ("predicted class labels" if self.eval_metric == "acc"
                    else "scores; NaN in y_true marks an unlabelled entry")
            return (head + "{'y_true': y_true, 'y_pred': y_pred}\n"
                    f"- y_true: {array} of shape {shape} (true labels)\n"
                    f"- y_pred: {array} of shape {shape} ({what})\n")
        neg = "(num_edges, num_negatives)" if self.eval_metric == "mrr" else "(num_negatives,)"
        return (head + "{'y_pred_pos': y_pred_pos, 'y_pred_neg': y_pred_neg}\n"
                f"- y_pred_pos: {array} of shape (num_edges,): scores of the positive edges\n"
                f"- y_pred_neg: {array} of shape {neg}: scores of the negative edges"
                + (", each row the negatives of one positive\n" if self.eval_metric == "mrr"
                   else "\n"))

    @property
    def expected_output_format(self) -> str:
        """What :meth:`eval` returns, as OGB's attribute of the same name describes it."""
        head = f"==== Expected output format of Evaluator for {self.name}\n"
        if self.eval_metric == "acc":
            return head + ("{'acc': acc}\n- acc (float): accuracy averaged over "
                           f"{self.num_tasks} task(s)\n")
        if self.eval_metric == "rocauc":
            return head + "{'rocauc': rocauc}\n- rocauc (float): ROC-AUC" + (
                f" averaged over the {self.num_tasks} tasks\n" if self.num_tasks else "\n")
        if self.eval_metric == "mrr":
            return head + ("{'hits@1_list': ..., 'hits@3_list': ..., 'hits@10_list': ..., "
                           "'mrr_list': ...}\n- each a per-positive-edge list (tensor or "
                           "array); take .mean() for the score\n")
        return head + (f"{{'hits@{self.K}': hits@{self.K}}}\n- hits@{self.K} (float): the "
                       f"fraction of positive edges scored above all but at most {self.K - 1} "
                       "negatives\n")

    def eval(self, input_dict: dict[str, Any]) -> dict[str, Any]:  # noqa: A003 (OGB's name)
        if self.name.startswith("ogbn-"):
            y_true, y_pred = self._node_inputs(input_dict)
            if self.eval_metric == "acc":
                return {"acc": self._acc(y_true, y_pred)}
            return {"rocauc": self._rocauc(y_true, y_pred)}
        pos, neg = self._link_inputs(input_dict)
        if self.eval_metric.startswith("hits@"):
            return {f"hits@{self.K}": self._hits(pos, neg)}
        if self.eval_metric == "mrr":
            return self._mrr(pos, neg)
        y_true = torch.cat([torch.ones(pos.numel()), torch.zeros(neg.numel())])
        return {"rocauc": roc_auc(y_true, torch.cat([pos.double().cpu(), neg.double().cpu()]))}

    # -- node property prediction ------------------------------------------------------------
    def _node_inputs(self, input_dict: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        for key in ("y_true", "y_pred"):
            if key not in input_dict:
                raise ValueError(f"Missing key of {key}")
        y_true, y_pred = (_array(input_dict[k], k) for k in ("y_true", "y_pred"))
        y_true, y_pred = (
            y.detach().cpu().numpy() if isinstance(y, Tensor) else y for y in (y_true, y_pred)
        )
        if self.num_tasks == 1 and y_true.ndim == 1:
            y_true = y_true.reshape(-1, 1)
        if self.num_tasks == 1 and y_pred.ndim == 1:
            y_pred = y_pred.reshape(-1, 1)
        if y_true.shape != y_pred.shape:
            raise ValueError(
                f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}"
            )
        if y_true.ndim != 2 or y_true.shape[1] != self.num_tasks:
            raise ValueError(
                f"{self.name} expects arrays of shape [num_nodes, {self.num_tasks}], got "
                f"{y_true.shape}"
            )
        if y_true.shape[0] == 0:
            raise ValueError("y_true is empty")
        if self.eval_metric == "acc":  # NaN in y_true marks unlabelled nodes, as in OGB
            check_finite(torch.as_tensor(y_pred), "y_pred")
        return y_true, y_pred

    @staticmethod
    def _acc(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        accs = []
        for i in range(y_true.shape[1]):
            labelled = y_true[:, i] == y_true[:, i]
            if not labelled.any():
                raise ValueError(f"task {i} has no labelled entries")
            accs.append(float(np.sum(y_true[labelled, i] == y_pred[labelled, i]))
                        / int(labelled.sum()))
        return sum(accs) / len(accs)

    @staticmethod
    def _rocauc(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        aucs = []
        for i in range(y_true.shape[1]):
            if np.sum(y_true[:, i] == 1) > 0 and np.sum(y_true[:, i] == 0) > 0:
                labelled = y_true[:, i] == y_true[:, i]
                aucs.append(roc_auc(y_true[labelled, i], y_pred[labelled, i]))
        if not aucs:
            raise ValueError("No positively labeled data available. Cannot compute ROC-AUC.")
        return sum(aucs) / len(aucs)

    # -- link property prediction ------------------------------------------------------------
    def _link_inputs(self, input_dict: dict[str, Any]) -> tuple[Tensor, Tensor]:
        for key in ("y_pred_pos", "y_pred_neg"):
            if key not in input_dict:
                raise ValueError(f"Missing key of {key}")
        pos, neg = (_array(input_dict[k], k) for k in ("y_pred_pos", "y_pred_neg"))
        self._numpy = not (isinstance(pos, Tensor) or isinstance(neg, Tensor))
        pos, neg = (torch.as_tensor(y) for y in (pos, neg))
        pos = pos.to(neg.device)
        neg_dim = 2 if self.eval_metric == "mrr" else 1
        if pos.dim() != 1:
            raise ValueError(f"y_pred_pos must be 1-dim, got {pos.dim()}-dim")
        if neg.dim() != neg_dim:
            raise ValueError(f"y_pred_neg must be {neg_dim}-dim, got {neg.dim()}-dim")
        return pos, neg

    def _hits(self, pos: Tensor, neg: Tensor) -> float:
        if isinstance(self.K, bool) or not isinstance(self.K, (int, np.integer)) or self.K < 1:
            raise ValueError(f"K must be a positive integer, got {self.K!r}")
        if pos.numel() == 0:
            raise ValueError("y_pred_pos is empty")
        return hits_at_k(pos, neg, int(self.K))  # OGB's shared-negative rule

    def _mrr(self, pos: Tensor, neg: Tensor) -> dict[str, Any]:
        rank = ranks(pos, neg).float()
        out: dict[str, Any] = {
            "hits@1_list": (rank <= 1).float(),
            "hits@3_list": (rank <= 3).float(),
            "hits@10_list": (rank <= 10).float(),
            "mrr_list": 1.0 / rank,
        }
        if self._numpy:
            out = {k: v.cpu().numpy() for k, v in out.items()}
        return out
