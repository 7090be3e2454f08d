r"""Data Filtering Networks: a CLIP-style model used only to score and filter an uncurated pool.

From `Data Filtering Networks <https://arxiv.org/abs/2309.17425>`_ (Fang, Jose, Jain, Schmidt,
Toshev and Shankar). A filtering network is an image-text model trained (or fine-tuned) on a
small high-quality set of pairs; it is never the final model. Each pool pair :math:`(x_i, t_i)`
is scored by the cosine of its embeddings, and the top fraction is kept to train the downstream
model:

.. math::
    s_i = \frac{f(x_i)^\top g(t_i)}{\|f(x_i)\| \, \|g(t_i)\|}, \qquad
    \mathcal{K} = \{\, i : s_i \text{ among the } \lceil \kappa N \rceil \text{ largest} \,\}

The filter is trained with CLIP's symmetric contrastive loss over a batch of :math:`B` pairs,
:math:`\tfrac12 [\mathrm{CE}(\tau S, I) + \mathrm{CE}(\tau S^\top, I)]` with
:math:`S_{jk} = \cos(f(x_j), g(t_k))` and a learned scale :math:`\tau`.

The paper's key finding: a filter's *filtering* quality is not predicted by its own ImageNet
accuracy; what matters is the quality of the data it was trained on. So judge a filter by the
precision of what it keeps (:func:`keep_precision`) and by the model trained on its output,
not by its zero-shot accuracy.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.data.io import atomic_write
from graphkit.data.validation import share_of
from graphkit.extras._core.checks import check_image, check_positive
from graphkit.extras._core.modules import eval_mode
from graphkit.extras._core.registry import register_model
from graphkit.extras._core.synthetic import ImageTextPairs

PAPER = "Data Filtering Networks"

Pairs = ImageTextPairs | tuple[Tensor, Tensor]


def _unpack(pairs: Pairs) -> tuple[Tensor, Tensor]:
    if isinstance(pairs, ImageTextPairs):
        images, tokens = pairs.images, pairs.tokens
    elif isinstance(pairs, (tuple, list)) and len(pairs) == 2:
        images, tokens = pairs
        if images.size(0) != tokens.size(0):
            raise ValueError(
                f"images and captions must pair up, got {images.size(0)} and {tokens.size(0)}"
            )
    else:
        raise TypeError("pairs must be an ImageTextPairs or an (images, tokens) tuple")
    if images.is_floating_point() and not bool(torch.isfinite(images).all()):
        raise ValueError("images contain NaN or infinite values")
    return images, tokens


def clip_loss(logits_per_image: Tensor) -> Tensor:
    """CLIP's symmetric cross-entropy over a ``(B, B)`` image-to-text logit matrix."""
    if (logits_per_image.dim() != 2 or logits_per_image.size(0) != logits_per_image.size(1)
            or logits_per_image.size(0) == 0):
        raise ValueError(
            f"expected square (B, B) logits with B >= 1, got {tuple(logits_per_image.shape)}"
        )
    target = torch.arange(logits_per_image.size(0), device=logits_per_image.device)
    return 0.5 * (
        F.cross_entropy(logits_per_image, target) + F.cross_entropy(logits_per_image.t(), target)
    )


class TinyImageEncoder(nn.Module):
    """A small CNN image tower: two stride-2 3×3 conv-ReLU layers, a 2×2 average pool, linear.

    Args:
        in_channels (int): image channels. (default: ``3``)
        embed_dim (int): embedding size. (default: ``64``)
        width (int): conv channels. (default: ``32``)

    Shapes:
        - input: :math:`(B, C, H, W)`; output: :math:`(B, D)`.
    """

    def __init__(self, in_channels: int = 3, embed_dim: int = 64, width: int = 32) -> None:
        super().__init__()
        check_positive(in_channels=in_channels, embed_dim=embed_dim, width=width)
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU(),
            # a 2x2 pooled grid keeps the coarse "where" that one global average would lose
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        )
        self.proj = nn.Linear(4 * width, embed_dim)
        self.in_channels = in_channels
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.in_channels, "TinyImageEncoder")
        return self.proj(self.body(x))


class BagOfWordsTextEncoder(nn.Module):
    """A small text tower: mean of token embeddings, then a linear map.

    Args:
        vocab (int): vocabulary size.
        embed_dim (int): embedding size. (default: ``64``)
        width (int): token-embedding size. (default: ``64``)

    Shapes:
        - input: :math:`(B, L)` int64 tokens in ``[0, vocab)``; output: :math:`(B, D)`.
    """

    def __init__(self, vocab: int, embed_dim: int = 64, width: int = 64) -> None:
        super().__init__()
        check_positive(vocab=vocab, embed_dim=embed_dim, width=width)
        self.vocab = vocab
        self.embed = nn.EmbeddingBag(vocab, width, mode="mean")
        self.proj = nn.Linear(width, embed_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.embed.reset_parameters()
        self.proj.reset_parameters()

    def forward(self, tokens: Tensor) -> Tensor:
        if tokens.dim() != 2 or tokens.dtype != torch.long:
            raise ValueError(
                f"tokens must be (B, L) int64, got {tuple(tokens.shape)} {tokens.dtype}"
            )
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.vocab):
            raise ValueError(f"token ids must lie in [0, {self.vocab})")
        return self.proj(self.embed(tokens))


@dataclass
class FilterResult:
    """The outcome of :meth:`DataFilteringNetwork.filter_pool`.

    Attributes:
        indices: ``(K,)`` kept pool indices, best score first.
        scores: ``(N,)`` every pair's cosine score.
        threshold: the smallest kept score.
        keep: the asked keep fraction.
    """

    indices: Tensor
    scores: Tensor
    threshold: float
    keep: float

    def mask(self) -> Tensor:
        """``(N,)`` bool, ``True`` for kept pairs."""
        out = torch.zeros(self.scores.numel(), dtype=torch.bool, device=self.scores.device)
        out[self.indices] = True
        return out

    def save(self, path: str | os.PathLike) -> Path:
        """Write the kept indices, their scores and the settings as JSON, atomically."""
        doc = {
            "keep": self.keep,
            "threshold": self.threshold,
            "pool_size": self.scores.numel(),
            "indices": self.indices.tolist(),
            "scores": self.scores[self.indices].tolist(),
        }
        with atomic_write(path) as f:
            json.dump(doc, f)
        return Path(path)


def top_fraction(scores: Tensor, keep: float) -> Tensor:
    """Indices of the ``ceil(keep * N)`` largest ``scores``, largest first (ties by index)."""
    if scores.dim() != 1:
        raise ValueError(f"scores must be 1-D, got shape {tuple(scores.shape)}")
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must lie in (0, 1], got {keep}")
    if torch.isnan(scores).any():
        raise ValueError("scores contain NaN; a filter cannot rank such pairs")
    # keep as meant: 0.07 * 100 is 7.000000000000001, whose ceil is 8
    k = share_of(scores.numel(), keep, "ceil")
    # a stable descending sort makes equal scores keep the earlier pair, run to run
    return torch.sort(scores, descending=True, stable=True).indices[:k]


def keep_precision(kept: Tensor, is_clean: Tensor) -> float:
    """The share of kept pairs (indices or bool mask) that are clean."""
    if is_clean.dim() != 1:
        raise ValueError(f"is_clean must be 1-D, got shape {tuple(is_clean.shape)}")
    if kept.dtype == torch.bool:
        if kept.shape != is_clean.shape:
            raise ValueError(
                f"a kept mask must match is_clean's shape {tuple(is_clean.shape)}, got "
                f"{tuple(kept.shape)}"
            )
    elif kept.is_floating_point() or kept.is_complex() or kept.dim() != 1:
        raise ValueError(
            f"kept must be 1-D integer indices or a bool mask, got {kept.dtype} of shape "
            f"{tuple(kept.shape)}"
        )
    elif kept.numel() and (kept.min() < 0 or kept.max() >= is_clean.numel()):
        bad = int(kept.min()) if kept.min() < 0 else int(kept.max())
        raise ValueError(f"kept holds index {bad}, out of range for {is_clean.numel()} pairs")
    elif torch.unique(kept).numel() != kept.numel():  # a pair counted twice in the share
        raise ValueError("kept repeats an index: each pair is kept once")
    chosen = is_clean[kept]
    if chosen.numel() == 0:
        raise ValueError("nothing was kept")
    return float(chosen.float().mean())


class DataFilteringNetwork(nn.Module):
    r"""A CLIP-style filtering network: two towers, cosine scores, top-fraction filtering.

    See the module docstring for the score and the loss. The towers are any modules mapping
    images and captions to vectors of one size (e.g. :class:`TinyImageEncoder` and
    :class:`BagOfWordsTextEncoder`, or open_clip towers the user supplies).

    Args:
        image_encoder (nn.Module): images :math:`(B, \dots)` to :math:`(B, D)`.
        text_encoder (nn.Module): captions :math:`(B, \dots)` to :math:`(B, D)`.
        init_temperature (float): initial softmax temperature; the learned scale is
            ``1 / temperature``, capped at 100 as in CLIP. (default: ``0.07``)
    """

    max_scale = 100.0

    def __init__(
        self, image_encoder: nn.Module, text_encoder: nn.Module, init_temperature: float = 0.07
    ) -> None:
        super().__init__()
        if not (math.isfinite(init_temperature) and init_temperature > 0):
            raise ValueError(
                f"init_temperature must be a positive finite number, got {init_temperature}"
            )
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.init_temperature = init_temperature
        self.log_scale = nn.Parameter(torch.empty(()))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset the scale (the towers keep their own initialisation)."""
        with torch.no_grad():
            self.log_scale.fill_(math.log(1.0 / self.init_temperature))

    def encode(self, images: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Unit-norm image and text embeddings, each :math:`(B, D)`."""
        img = self.image_encoder(images)
        txt = self.text_encoder(tokens)
        if img.shape != txt.shape or img.dim() != 2:
            raise ValueError(
                f"the towers must give (B, D) embeddings of one shape, got {tuple(img.shape)} "
                f"and {tuple(txt.shape)}"
            )
        return F.normalize(img, dim=-1), F.normalize(txt, dim=-1)

    def forward(self, images: Tensor, tokens: Tensor) -> Tensor:
        """The :math:`(B, B)` image-to-text logits ``scale * cos``."""
        img, txt = self.encode(images, tokens)
        return self.log_scale.exp().clamp(max=self.max_scale) * img @ txt.t()

    def train_filter(
        self, clean_pairs: Pairs, epochs: int = 20, batch_size: int = 128, lr: float = 2e-3,
        weight_decay: float = 0.0, seed: int = 0,
    ) -> list[float]:
        """Train the filter contrastively on high-quality pairs (AdamW, shuffled batches).

        Args:
            clean_pairs: the curated pairs.
            epochs (int): passes over the pairs. (default: ``20``)
            batch_size (int): pairs per step, at least 2. (default: ``128``)
            lr (float): learning rate. (default: ``2e-3``)
            weight_decay (float): AdamW weight decay. (default: ``0.0``)
            seed (int): shuffling seed. (default: ``0``)

        Returns:
            The loss of every step.
        """
        images, tokens = _unpack(clean_pairs)
        check_positive(epochs=epochs, batch_size=batch_size)
        if batch_size < 2 or images.size(0) < 2:
            raise ValueError("contrastive training needs at least 2 pairs per batch")
        device = self.log_scale.device
        opt = torch.optim.AdamW(self.parameters(), lr=lr, weight_decay=weight_decay)
        gen = torch.Generator().manual_seed(seed)
        losses = []
        self.train()
        for _ in range(epochs):
            order = torch.randperm(images.size(0), generator=gen)
            for start in range(0, order.numel(), batch_size):
                idx = order[start : start + batch_size]
                if idx.numel() < 2:  # a one-pair batch has no negatives
                    continue
                loss = clip_loss(self(images[idx].to(device), tokens[idx].to(device)))
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
        self.eval()
        return losses

    @torch.no_grad()
    def score_pairs(self, pairs: Pairs, batch_size: int = 512) -> Tensor:
        """``(N,)`` cosine similarity of each pair's image and caption embeddings."""
        images, tokens = _unpack(pairs)
        check_positive(batch_size=batch_size)
        device = self.log_scale.device
        out = []
        with eval_mode(self):
            for start in range(0, images.size(0), batch_size):
                img, txt = self.encode(
                    images[start : start + batch_size].to(device),
                    tokens[start : start + batch_size].to(device),
                )
                out.append((img * txt).sum(-1))
        return torch.cat(out) if out else torch.zeros(0, device=device)

    def filter_pool(self, pool: Pairs, keep: float = 0.3, batch_size: int = 512) -> FilterResult:
        """Score ``pool`` and keep the ``ceil(keep * N)`` best-scoring pairs.

        Args:
            pool: the uncurated pairs.
            keep (float): fraction to keep, in ``(0, 1]``. (default: ``0.3``)
            batch_size (int): scoring batch size. (default: ``512``)
        """
        if not 0.0 < keep <= 1.0:
            raise ValueError(f"keep must lie in (0, 1], got {keep}")
        scores = self.score_pairs(pool, batch_size=batch_size)
        if scores.numel() == 0:
            raise ValueError("pool is empty: there is nothing to filter")
        indices = top_fraction(scores, keep)
        return FilterResult(indices, scores, float(scores[indices[-1]]), keep)


@register_model("dfn", family="data", paper=PAPER)
def tiny_dfn(
    vocab: int = 64, in_channels: int = 3, embed_dim: int = 64, width: int = 32,
    seed: int | None = None,
) -> DataFilteringNetwork:
    """A :class:`DataFilteringNetwork` on :class:`TinyImageEncoder` and
    :class:`BagOfWordsTextEncoder` (synthetic experiments; ``seed`` fixes the initialisation)."""
    if seed is not None:
        torch.manual_seed(seed)
    return DataFilteringNetwork(
        TinyImageEncoder(in_channels, embed_dim, width),
        BagOfWordsTextEncoder(vocab, embed_dim, width),
    )


@torch.no_grad()
def zero_shot_accuracy(
    model: DataFilteringNetwork, images: Tensor, labels: Tensor, class_tokens: Tensor
) -> float:
    """CLIP zero-shot accuracy: each image takes the class whose prompt embeds closest.

    Args:
        model: a trained two-tower model.
        images: :math:`(N, \\dots)` images; ``labels``: :math:`(N,)` their classes.
        class_tokens: :math:`(K, L)` one prompt per class.
    """
    if labels.dim() != 1 or labels.numel() != images.size(0) or labels.numel() == 0:
        raise ValueError(
            f"labels must be ({images.size(0)},), one per image, and not empty; got shape "
            f"{tuple(labels.shape)}"
        )
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integer classes, got {labels.dtype}")
    n_classes = class_tokens.size(0)
    if labels.min() < 0 or labels.max() >= n_classes:
        bad = int(labels.min()) if labels.min() < 0 else int(labels.max())
        raise ValueError(f"labels hold class {bad}, out of range for {n_classes} class prompts")
    model.eval()
    img = F.normalize(model.image_encoder(images), dim=-1)
    txt = F.normalize(model.text_encoder(class_tokens), dim=-1)
    return float(((img @ txt.t()).argmax(-1) == labels).float().mean())
