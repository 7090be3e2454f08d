"""The interface every node-classification scheme follows (forward learning and backprop)."""

from __future__ import annotations

import io
from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn.inits import reset

from graphkit.data.validation import check_graph
from graphkit.train.forward.trainer import LayerwiseTrainer, StoppingLog

__all__ = ["NodeScheme", "check_node_inputs"]

# the method casting a tensor or a module to each dtype, for the advice in the message
_CAST = {torch.float64: "double", torch.float32: "float", torch.float16: "half",
         torch.bfloat16: "bfloat16"}


def _cast(dtype: torch.dtype) -> str:
    return f".{_CAST[dtype]}()" if dtype in _CAST else f".to({dtype})"


def param_dtype(module: nn.Module) -> torch.dtype | None:
    """The dtype of ``module``'s first floating-point parameter (``None``: it has none)."""
    return next((p.dtype for p in module.parameters() if p.is_floating_point()), None)


def check_feature_dtype(x: Tensor, dtype: torch.dtype | None, name: str,
                        appended: torch.dtype | None = None) -> None:
    """Refuse features whose dtype differs from the model's parameters' ``dtype`` (``None``:
    not checked), which otherwise fail inside torch ("expected m1 and m2 to have the same
    dtype") without naming the features. ``appended``: the dtype of columns the scheme
    concatenates to ``x`` (FF-LA's labels), with which ``x`` is promoted first."""
    if dtype is None:
        return
    got = x.dtype if appended is None else torch.promote_types(x.dtype, appended)
    if got == dtype:
        return
    fixes = [f"{_cast(dtype)} on {name}"]
    if x.is_floating_point() and got == x.dtype:  # a model in x's dtype would take x as is
        fixes.insert(0, f"{_cast(x.dtype)} on the model")
    raise ValueError(f"{name} has dtype {x.dtype}, but the model's parameters have dtype "
                     f"{dtype}: call {' or '.join(fixes)}")


def _check_mask(name: str, m: object, n: int) -> None:
    if not isinstance(m, Tensor) or m.dtype != torch.bool or m.shape != (n,):
        got = (f"dtype {m.dtype} and shape {tuple(m.shape)}" if isinstance(m, Tensor)
               else type(m).__name__)
        raise ValueError(f"{name} must be a boolean mask of length num_nodes={n}, got {got}")


def check_node_inputs(data: Data, train_mask: Tensor, val_mask: Tensor,
                      in_channels: int = -1, dtype: torch.dtype | None = None,
                      appended: torch.dtype | None = None) -> int:
    """Validate a node-classification problem; return the number of classes.

    ``in_channels`` (when ``>= 0``): the feature width the scheme was built for; ``dtype``
    and ``appended``: see :func:`check_feature_dtype`.
    """
    for name in ("x", "edge_index", "y"):
        if getattr(data, name, None) is None:
            raise ValueError(f"data.{name} is missing")
    # imported here: graphkit.nn's package imports graphkit.train (a cycle at import time)
    from graphkit.nn._checks import check_node_features

    check_graph(data)
    check_node_features(data.x, in_channels, name="data.x")
    check_feature_dtype(data.x, dtype, "data.x", appended)
    n = data.num_nodes
    y = data.y
    if y.dim() != 1 or y.dtype != torch.long or y.numel() != n:
        raise ValueError(f"data.y must be a vector of int64 class ids, one per node "
                         f"(num_nodes={n}), got dtype {y.dtype} and shape {tuple(y.shape)}")
    for name, m in (("train_mask", train_mask), ("val_mask", val_mask)):
        _check_mask(name, m, n)
        if not bool(m.any()):
            raise ValueError(f"{name} selects no node")
    if int(y.min()) < 0:
        raise ValueError("class ids must be non-negative")
    return int(y.max()) + 1


def _rebuild_fitted_inputs(module: NodeScheme, incompatible_keys: object) -> None:
    if module.data is not None:
        module._build_fitted_inputs()


class NodeScheme(nn.Module, ABC):
    """A model trained by :meth:`fit` and queried with :meth:`layer_scores` / :meth:`predict`.

    ``fit`` keeps the graph and training labels it was given (the virtual-node augmentation and
    the label vectors depend on them); the prediction methods then score any node set.
    """

    name = "scheme"
    #: the feature width the scheme was built for (``-1``: not checked)
    in_channels: int = -1

    def __init__(self) -> None:
        super().__init__()
        self.data: Data | None = None
        self.train_mask: Tensor | None = None
        # a loaded state (e.g. other virtual class-node features) invalidates what fit() cached
        self.register_load_state_dict_post_hook(_rebuild_fitted_inputs)

    def reset_parameters(self) -> None:
        """Re-initialise every layer, and draw new virtual class-node features, as at
        construction. A fitted scheme rebuilds its cached inputs from the new features; the
        next :meth:`fit` trains from scratch."""
        for child in self.children():
            reset(child)
        if self.data is not None:
            self._build_fitted_inputs()

    def _build_fitted_inputs(self) -> None:
        """Derive the cached inputs (augmented graph, normalised features, row splits) from
        the fitted ``data`` and ``train_mask`` and the current buffers; run by :meth:`fit` and
        again after :meth:`load_state_dict`. Schemes that cache nothing keep this no-op."""

    def __deepcopy__(self, memo: dict) -> NodeScheme:
        # a fitted scheme may hold sparse CSR tensors (cached inputs), which torch cannot
        # deep-copy but can serialise: a serialised round trip is a deep copy
        buffer = io.BytesIO()
        torch.save(self, buffer)
        buffer.seek(0)
        copy = torch.load(buffer, weights_only=False)
        memo[id(self)] = copy
        return copy

    @abstractmethod
    def fit(self, data: Data, train_mask: Tensor, val_mask: Tensor,
            trainer: LayerwiseTrainer | None = None) -> list[StoppingLog]:
        """Train on ``data`` (validation accuracy on ``val_mask`` drives early stopping)."""
        ...

    @abstractmethod
    def layer_scores(self, eval_mask: Tensor, labelled: Tensor | None = None) -> list[Tensor]:
        """Class scores ``[n_eval, C]`` of ``eval_mask`` nodes using layers ``1..l``, for each l.

        ``labelled`` (default: the training mask) are nodes whose true labels the scheme may use
        as input at inference (only label-appending FF uses them).
        """
        ...

    def predict(self, eval_mask: Tensor, labelled: Tensor | None = None) -> Tensor:
        """Class scores ``[n_eval, C]`` of the whole model (the last entry of layer_scores)."""
        return self.layer_scores(eval_mask, labelled)[-1]

    def _fitted(self, eval_mask: Tensor | None = None, labelled: Tensor | None = None) -> Data:
        """The fitted graph, after checking that ``eval_mask`` and ``labelled`` (where
        given) are boolean masks over its nodes (metadata only)."""
        if self.data is None:
            # a state_dict holds the weights, not the graph and the inputs fit() builds from it
            raise ValueError(f"{self.name}: call fit() before predicting (a loaded state_dict "
                             "holds the weights only, not the fitted graph: to reuse a fitted "
                             "node scheme, save and load the whole model, torch.save(model))")
        n = self.data.num_nodes
        for name, m in (("eval_mask", eval_mask), ("labelled", labelled)):
            if m is not None:
                _check_mask(name, m, n)
        return self.data
