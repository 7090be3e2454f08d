"""Checking a ``device`` argument before any work: an unknown device, or one this machine
lacks, is one ``ValueError`` naming it, not an error from deep inside torch (``AssertionError:
Torch not compiled with CUDA enabled``) after the data is loaded."""

from __future__ import annotations

__all__ = ["check_device"]


def check_device(device: object, flag: str = "--device") -> None:
    """Reject an unknown torch device, or one this machine lacks, before any work; ``flag``
    starts the message (empty where argparse names the flag itself)."""
    if device is None:
        return
    import torch

    said = f"{flag} " if flag else ""
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"{said}{device!r} is not a torch device (e.g. cpu, cuda, "
                         "cuda:1)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{said}{device}: CUDA is not available on this machine")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"{said}{device}: this machine has {torch.cuda.device_count()} CUDA "
                         "device(s)")
    if dev.type == "meta":
        raise ValueError(f"{said}{device}: tensors on the meta device hold no data")
    if dev.type not in ("cpu", "cuda"):
        # Any other type torch.device() parses (mps, xpu, ...) failed only deep inside a
        # command; a one-element tensor is the check every backend answers. Backends fail it
        # with various exception types (NotImplementedError, AssertionError, ImportError).
        try:
            torch.empty(1, device=dev)
        except Exception:
            raise ValueError(f"{said}{device}: this machine or PyTorch build has no "
                             f"{dev.type} device") from None
