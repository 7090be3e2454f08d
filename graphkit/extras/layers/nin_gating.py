"""NiNformer: a ViT block whose attention is replaced by an MLP-Mixer-gated projection.

`NiNformer: A Network in Network Transformer with Token Mixing Generated Gating Function
<https://arxiv.org/abs/2403.02411>`_ (Abdullah, Kamal, 2024). Official code:
``Abdullah-88/NiNformer`` (``ninformer.py``, ``train.py``), whose construction this follows.

For tokens :math:`X \\in \\mathbb{R}^{N \\times d}` one block computes

.. math::
    U &= \\mathrm{LN}(X), \\qquad
    G = \\mathrm{Mixer}(U), \\qquad
    Y = X + (U W_p + b_p) \\odot G, \\\\
    Z &= Y + \\mathrm{FFN}(\\mathrm{LN}(Y)),

where :math:`\\mathrm{Mixer}` is one MLP-Mixer block (token-mixing MLP over the :math:`N`
tokens, then channel-mixing MLP, each pre-normed and residual): the inner network produces an
input-dependent gate for the outer token-wise projection. The official block applies the same
LayerNorm (shared weights) before the gating unit and before the FFN; so does this one. With the
token-mixing MLP's hidden size fixed, every term costs a constant per token, so a block's MACs
are :math:`N (d^2 + 6 d h)` for hidden size :math:`h`: linear in the number of tokens
(attention would be quadratic).
"""

from __future__ import annotations

from torch import Tensor, nn

from graphkit.extras._core.blocks import MLP
from graphkit.extras._core.checks import check_fraction, check_positive
from graphkit.extras._core.registry import register_model

__all__ = ["MixerBlock", "MixerGatingUnit", "NiNformer", "NiNformerBlock"]

_PAPER = "NiNformer: A Network in Network Transformer with Token Mixing Generated Gating Function"


def _check_tokens(x: Tensor, tokens: int, dim: int, who: str) -> None:
    if x.dim() != 3 or x.shape[1] != tokens or x.shape[2] != dim:
        raise ValueError(f"{who} expects input (B, {tokens}, {dim}), got {tuple(x.shape)}")


class MixerBlock(nn.Module):
    """One MLP-Mixer block (`MLP-Mixer <https://arxiv.org/abs/2105.01601>`_).

    ``X = X + TokenMLP(LN(X)^T)^T``, then ``X = X + ChannelMLP(LN(X))``.

    Args:
        dim: channels per token.
        tokens: number of tokens (the token-mixing MLP's input size).
        token_hidden: hidden size of the token-mixing MLP.
        channel_hidden: hidden size of the channel-mixing MLP.
        dropout: dropout inside both MLPs (default: ``0.0``).

    Shapes:
        input and output ``(B, tokens, dim)``.
    """

    def __init__(
        self, dim: int, tokens: int, token_hidden: int, channel_hidden: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        check_positive(
            dim=dim, tokens=tokens, token_hidden=token_hidden, channel_hidden=channel_hidden
        )
        check_fraction("dropout", dropout)
        self.dim, self.tokens = dim, tokens
        self.token_norm = nn.LayerNorm(dim)
        self.token_mlp = MLP(tokens, token_hidden, drop=dropout)
        self.channel_norm = nn.LayerNorm(dim)
        self.channel_mlp = MLP(dim, channel_hidden, drop=dropout)

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear | nn.LayerNorm):
                m.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        _check_tokens(x, self.tokens, self.dim, "MixerBlock")
        x = x + self.token_mlp(self.token_norm(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channel_mlp(self.channel_norm(x))


class MixerGatingUnit(nn.Module):
    """The NiNformer gating unit: ``(x W_p + b_p) * MixerBlock(x)``.

    Args:
        dim: channels per token.
        tokens: number of tokens.
        token_hidden: hidden size of the inner token-mixing MLP.
        channel_hidden: hidden size of the inner channel-mixing MLP.
        dropout: dropout inside the inner Mixer (default: ``0.0``).

    Shapes:
        input and output ``(B, tokens, dim)``.
    """

    def __init__(
        self, dim: int, tokens: int, token_hidden: int, channel_hidden: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.mixer = MixerBlock(dim, tokens, token_hidden, channel_hidden, dropout)
        self.proj = nn.Linear(dim, dim)

    def reset_parameters(self) -> None:
        self.mixer.reset_parameters()
        self.proj.reset_parameters()

    def gate(self, x: Tensor) -> Tensor:
        """The input-dependent gate ``MixerBlock(x)``."""
        return self.mixer(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x) * self.gate(x)


class NiNformerBlock(nn.Module):
    """A NiNformer block: gated token mixing then an FFN, both residual (module docstring).

    Args:
        dim: channels per token.
        tokens: number of tokens the block is built for.
        hidden: hidden size of the FFN and of the inner Mixer's two MLPs (the official code
            uses one ``d_ffn`` for all three) (default: ``2 * dim``).
        dropout: dropout in every MLP (default: ``0.0``).

    Shapes:
        input and output ``(B, tokens, dim)``.
    """

    def __init__(
        self, dim: int, tokens: int, hidden: int | None = None, dropout: float = 0.0
    ) -> None:
        super().__init__()
        hidden = 2 * dim if hidden is None else hidden
        check_positive(dim=dim, tokens=tokens, hidden=hidden)
        check_fraction("dropout", dropout)
        self.dim, self.tokens, self.hidden = dim, tokens, hidden
        self.norm = nn.LayerNorm(dim)  # shared by both sub-layers, as in the official block
        self.gating = MixerGatingUnit(dim, tokens, hidden, hidden, dropout)
        self.ffn = MLP(dim, hidden, drop=dropout)

    def reset_parameters(self) -> None:
        self.norm.reset_parameters()
        self.gating.reset_parameters()
        self.ffn.reset_parameters()  # the _core MLP is not iterable

    def forward(self, x: Tensor) -> Tensor:
        _check_tokens(x, self.tokens, self.dim, "NiNformerBlock")
        x = x + self.gating(self.norm(x))
        return x + self.ffn(self.norm(x))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, tokens={self.tokens}, hidden={self.hidden}"


@register_model("ninformer", family="block", paper=_PAPER)
class NiNformer(nn.Module):
    """NiNformer image classifier: patch embedding, ``depth`` blocks, mean pool, linear head.

    Defaults are the official CIFAR-10 configuration (``train.py``): 32x32 RGB, 4x4 patches
    (64 tokens), ``dim=256``, ``hidden=512``, 4 blocks, dropout 0.5.

    Args:
        image_size: input height and width (default: ``32``).
        patch_size: side of the square patches, dividing ``image_size`` (default: ``4``).
        in_channels: input channels (default: ``3``).
        num_classes: output classes (default: ``10``).
        dim: token width (default: ``256``).
        hidden: MLP hidden size in every block (default: ``512``).
        depth: number of :class:`NiNformerBlock` (default: ``4``).
        dropout: dropout in every MLP (default: ``0.5``).

    Shapes:
        input ``(B, in_channels, image_size, image_size)``, output ``(B, num_classes)``.
    """

    def __init__(
        self,
        image_size: int = 32,
        patch_size: int = 4,
        in_channels: int = 3,
        num_classes: int = 10,
        dim: int = 256,
        hidden: int = 512,
        depth: int = 4,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        check_positive(
            image_size=image_size,
            patch_size=patch_size,
            in_channels=in_channels,
            num_classes=num_classes,
            depth=depth,
        )
        if image_size % patch_size:
            raise ValueError(f"patch_size {patch_size} must divide image_size {image_size}")
        self.image_size, self.in_channels = image_size, in_channels
        tokens = (image_size // patch_size) ** 2
        self.patch_embed = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.blocks = nn.Sequential(
            *(NiNformerBlock(dim, tokens, hidden, dropout) for _ in range(depth))
        )
        self.head = nn.Linear(dim, num_classes)

    def reset_parameters(self) -> None:
        self.patch_embed.reset_parameters()
        for block in self.blocks:
            block.reset_parameters()
        self.head.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        s, c = self.image_size, self.in_channels
        if x.dim() != 4 or tuple(x.shape[1:]) != (c, s, s):
            raise ValueError(f"NiNformer expects input (B, {c}, {s}, {s}), got {tuple(x.shape)}")
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, N, dim), row-major
        return self.head(self.blocks(tokens).mean(dim=1))
