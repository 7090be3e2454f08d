r"""A sparse ``1 x 1`` convolution kernel: CSR weights times CHW activations (Elsen et al.,
"Fast Sparse ConvNets", https://arxiv.org/abs/1911.09723; kernels in google/XNNPACK).

A ``1 x 1`` convolution is the matrix product :math:`Y = W X` of the ``(C_out, C_in)`` weight
with the activation viewed as ``(C_in, H W)``. With :math:`W` in compressed sparse row form
(one row per output channel), each non-zero :math:`w_{oc}` adds :math:`w_{oc}` times the whole
spatial row :math:`X_{c,:}` to :math:`Y_{o,:}`, so the work is ``nnz * H * W`` multiply-adds and
the rows read are contiguous in the CHW layout. Here the product is :func:`torch.sparse.mm`.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from graphkit.extras._core.checks import check_positive
from graphkit.extras.sparsity.masks import block as block_granularity
from graphkit.extras.sparsity.masks import check_block_zero, get_mask

__all__ = ["SparseConv1x1", "csr_conv1x1"]


def _csr(
    crow: Tensor, col: Tensor, values: Tensor, shape: tuple[int, int], check: bool = False
) -> Tensor:
    with warnings.catch_warnings():  # torch marks CSR as beta on every construction
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=check)


def csr_conv1x1(
    x: Tensor,
    crow: Tensor,
    col: Tensor,
    values: Tensor,
    out_channels: int,
    bias: Tensor | None = None,
) -> Tensor:
    r"""``1 x 1`` convolution of ``x`` with a CSR weight: :math:`Y_n = W X_n (+ b)`.

    The batch is laid side by side as one ``(C_in, N H W)`` matrix so one sparse product
    serves every image.

    Args:
        x: activations ``(N, C_in, H, W)``.
        crow: CSR row pointers ``(C_out + 1,)``.
        col: CSR column (input channel) indices ``(nnz,)``.
        values: the non-zero weights ``(nnz,)``.
        out_channels: ``C_out``.
        bias: optional ``(C_out,)``. (default: ``None``)

    Returns:
        ``(N, C_out, H, W)``.
    """
    if x.dim() != 4:
        raise ValueError(f"csr_conv1x1 expects (N, C, H, W) input, got shape {tuple(x.shape)}")
    n, c_in, h, w = x.shape
    # metadata only: the values (column range, row pointers' order) are left to the caller,
    # as SparseConv1x1 checks them once at construction
    if crow.dim() != 1 or crow.numel() != out_channels + 1:
        raise ValueError(
            f"crow must be ({out_channels + 1},) for out_channels={out_channels}, "
            f"got shape {tuple(crow.shape)}"
        )
    if col.dim() != 1 or col.shape != values.shape:
        raise ValueError(
            f"col and values must be (nnz,) vectors of one length, got shapes "
            f"{tuple(col.shape)} and {tuple(values.shape)}"
        )
    if bias is not None and bias.numel() != out_channels:
        raise ValueError(
            f"bias must hold out_channels={out_channels} values, got shape {tuple(bias.shape)}"
        )
    weight = _csr(crow, col, values.to(x.dtype), (out_channels, c_in))
    cols = x.transpose(0, 1).reshape(c_in, n * h * w)
    out = torch.sparse.mm(weight, cols).view(out_channels, n, h, w).transpose(0, 1)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out.contiguous()


class SparseConv1x1(nn.Module):
    r"""Inference ``1 x 1`` convolution with its weight stored in CSR (Fast Sparse ConvNets,
    https://arxiv.org/abs/1911.09723).

    Built from a dense (possibly masked) ``nn.Conv2d`` with :meth:`from_dense`. The sparsity
    pattern may be made of ``bh x bw`` blocks of the ``(C_out, C_in)`` weight (``(1, 1)``:
    single weights; ``(2, 1)`` / ``(4, 1)``: output-channel pairs or quads, the paper's
    blockings; ``(1, 4)`` along input channels); every weight of a kept block is stored, so the
    stored count is a multiple of ``bh * bw``. The product itself runs in CSR form
    (:func:`csr_conv1x1`; torch's CPU block-sparse product lacks non-square blocks). Weights are
    buffers: this is an inference layer, to be trained dense with masks and converted after.

    Args:
        crow: CSR row pointers ``(C_out + 1,)``.
        col: column indices ``(nnz,)``.
        values: non-zero weights ``(nnz,)``.
        in_channels: ``C_in``.
        bias: optional ``(C_out,)``. (default: ``None``)
        stride: the convolution's stride (padding must be 0). (default: ``1``)
        block: the ``(bh, bw)`` block shape of the pattern. (default: ``(1, 1)``)

    Shapes:
        input ``(N, C_in, H, W)``, output ``(N, C_out, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(
        self,
        crow: Tensor,
        col: Tensor,
        values: Tensor,
        in_channels: int,
        bias: Tensor | None = None,
        stride: int = 1,
        block: tuple[int, int] = (1, 1),
    ) -> None:
        super().__init__()
        check_positive(in_channels=in_channels, stride=stride)
        if crow.dim() != 1 or col.shape != values.shape or int(crow[-1]) != col.numel():
            raise ValueError("crow, col and values do not form a CSR matrix")
        self.in_channels, self.out_channels = int(in_channels), crow.numel() - 1
        try:  # checked once here, so the forward pass can skip torch's invariant checks
            _csr(crow, col, values, (self.out_channels, self.in_channels), check=True)
        except RuntimeError as err:
            raise ValueError(f"crow, col and values do not form a CSR matrix: {err}") from None
        self.stride, self.block = int(stride), tuple(block)
        self.register_buffer("crow_indices", crow.detach().to(torch.int64).clone())
        self.register_buffer("col_indices", col.detach().to(torch.int64).clone())
        self.register_buffer("values", values.detach().clone())
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

    @classmethod
    @torch.no_grad()
    def from_dense(
        cls,
        conv: nn.Conv2d,
        block: tuple[int, int] = (1, 1),
        density: float | None = None,
    ) -> SparseConv1x1:
        """The CSR form of a ``1 x 1`` ``conv``, optionally magnitude-pruned to ``density``.

        The kept pattern is ``conv``'s :class:`~graphkit.extras.sparsity.masks.SparsityMask`
        when it has one (else its non-zeros); with ``density`` it is instead the
        ``bh x bw`` blocks of largest ``|w|`` sum. The pattern must consist of whole blocks.
        """
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"from_dense needs an nn.Conv2d, got {type(conv).__name__}")
        if conv.kernel_size != (1, 1) or conv.groups != 1:
            raise ValueError(
                f"only 1x1 dense convolutions (groups=1) are pointwise; got kernel "
                f"{conv.kernel_size}, groups {conv.groups}"
            )
        if conv.padding != (0, 0) or conv.stride[0] != conv.stride[1]:
            raise ValueError(
                f"need padding 0 and a square stride, got {conv.padding}, {conv.stride}"
            )
        bh, bw = int(block[0]), int(block[1])
        weight = conv.weight.detach()[:, :, 0, 0]
        if density is not None:
            keep = block_granularity(bh, bw).select(weight.abs(), float(density))
        else:
            mask = get_mask(conv)
            keep = mask.mask[:, :, 0, 0] if mask is not None else weight != 0
        check_block_zero(keep.to(weight.dtype), bh, bw)  # raises on a partly kept block
        values = torch.where(keep, weight, torch.zeros((), dtype=weight.dtype))
        csr = _csr_of(values, keep)
        return cls(*csr, conv.in_channels, conv.bias, conv.stride[0], (bh, bw))

    @property
    def nnz(self) -> int:
        """Stored weights (whole blocks)."""
        return self.values.numel()

    @property
    def density(self) -> float:
        return self.nnz / (self.in_channels * self.out_channels)

    def macs(self, input_shape: tuple[int, int, int, int]) -> int:
        """Multiply-adds of one forward on ``(N, C_in, H, W)``: ``nnz`` times output positions."""
        if len(input_shape) != 4:
            raise ValueError(f"input_shape must be (N, C_in, H, W), got {tuple(input_shape)}")
        n, _, h, w = input_shape
        s = self.stride
        return self.nnz * n * (-(-h // s)) * (-(-w // s))

    def to_dense(self) -> Tensor:
        """The ``(C_out, C_in, 1, 1)`` dense weight."""
        shape = (self.out_channels, self.in_channels)
        return _csr(self.crow_indices, self.col_indices, self.values, shape).to_dense()[
            ..., None, None
        ]

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected (N, {self.in_channels}, H, W) input, got shape {tuple(x.shape)}"
            )
        if self.stride > 1:  # a 1x1 kernel without padding reads every stride-th position
            x = x[:, :, :: self.stride, :: self.stride]
        return csr_conv1x1(
            x, self.crow_indices, self.col_indices, self.values, self.out_channels, self.bias
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, stride={self.stride}, "
            f"block={self.block}, density={self.density:.4f}"
        )


def _csr_of(values: Tensor, keep: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(crow, col, values)`` of the ``keep`` entries of a matrix, zeros inside blocks kept."""
    rows, cols = keep.nonzero(as_tuple=True)
    crow = torch.zeros(keep.shape[0] + 1, dtype=torch.int64, device=keep.device)
    crow[1:] = torch.cumsum(keep.sum(1), 0)
    return crow, cols, values[rows, cols]
