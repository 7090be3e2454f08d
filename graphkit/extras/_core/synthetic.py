"""Seeded, download-free synthetic data for the catalogue's tests and examples (spec §3.8).

Every generator takes a ``seed`` and draws from its own :class:`torch.Generator`, so the same
arguments give bit-identical tensors and no global random state is touched. Class templates
(blob centres and colours, concept appearances) depend only on the number of classes, never on
``seed``: two seeds give two samples of one distribution (a train and a test set).

- :func:`blobs_classification`: one coloured Gaussian blob per image, its place and colour set
  by the class.
- :func:`shapes_segmentation`: squares, disks and triangles on a dark background with
  per-pixel class masks.
- :func:`add_rain_streaks`: oriented rain streaks screened over clean images (deraining).
- :func:`two_source_mixture`: two harmonic sources plus noise (speech separation).
- :func:`echo_scenario`: a far-end signal through a synthetic room plus a near-end talker
  (acoustic echo cancellation).
- :func:`image_text_pairs`: blob images with token captions, a share of them mismatched
  (data filtering, CLIP-style training).
- :func:`coco_fixture`: a small COCO-format dataset on disk (detection/segmentation loaders).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from graphkit.data.io import atomic_write
from graphkit.extras._core.checks import check_fraction, check_positive

SHAPES = ("square", "disk", "triangle")


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _class_templates(classes: int, channels: int) -> tuple[Tensor, Tensor]:
    """Blob centres on a circle (fractions of the side) and well-separated colours per class."""
    angle = 2 * math.pi * torch.arange(classes, dtype=torch.float64) / classes
    centres = 0.5 + 0.3 * torch.stack([torch.sin(angle), torch.cos(angle)], dim=1)
    # a fixed generator: the same classes look the same whatever the sample seed
    colours = 0.3 + 0.7 * torch.rand(classes, channels, generator=_generator(12345))
    return centres.float(), colours


def _render_blobs(
    labels: Tensor, classes: int, size: int, channels: int, noise: float, gen: torch.Generator
) -> Tensor:
    centres, colours = _class_templates(classes, channels)
    n = labels.numel()
    jitter = 0.04 * torch.randn(n, 2, generator=gen)
    centre = (centres[labels] + jitter) * (size - 1)  # (n, 2) as (row, col)
    sigma = size * (0.08 + 0.04 * torch.rand(n, generator=gen))
    grid = torch.arange(size, dtype=torch.float32)
    dr = (grid.view(1, size, 1) - centre[:, 0].view(n, 1, 1)) ** 2
    dc = (grid.view(1, 1, size) - centre[:, 1].view(n, 1, 1)) ** 2
    blob = torch.exp(-(dr + dc) / (2 * sigma.view(n, 1, 1) ** 2))  # (n, H, W)
    images = colours[labels].view(n, channels, 1, 1) * blob.unsqueeze(1)
    if noise > 0:
        images = images + noise * torch.randn(images.shape, generator=gen)
    return images.clamp_(0.0, 1.0)


def blobs_classification(
    n: int, classes: int = 10, size: int = 32, channels: int = 3, noise: float = 0.05,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Images holding one Gaussian blob whose centre and colour are set by the class.

    Class ``c`` puts its blob near ``0.5 + 0.3 (sin, cos)(2πc/classes)`` (fractions of the side)
    with a fixed per-class colour; samples jitter the centre and width and add Gaussian noise.
    Labels are balanced (``i % classes``, shuffled).

    Args:
        n (int): number of images.
        classes (int): number of classes. (default: ``10``)
        size (int): image side. (default: ``32``)
        channels (int): image channels. (default: ``3``)
        noise (float): standard deviation of the additive pixel noise. (default: ``0.05``)
        seed (int): random seed. (default: ``0``)

    Returns:
        ``(images, labels)``: ``(n, channels, size, size)`` floats in ``[0, 1]`` and ``(n,)``
        int64 labels in ``[0, classes)``.
    """
    check_positive(n=n, classes=classes, size=size, channels=channels)
    if noise < 0:
        raise ValueError(f"noise must be non-negative, got {noise}")
    gen = _generator(seed)
    labels = (torch.arange(n) % classes)[torch.randperm(n, generator=gen)]
    return _render_blobs(labels, classes, size, channels, noise, gen), labels


def _shape_mask(kind: str, size: int, cy: float, cx: float, r: float) -> Tensor:
    rows = torch.arange(size, dtype=torch.float32).view(size, 1)
    cols = torch.arange(size, dtype=torch.float32).view(1, size)
    if kind == "square":
        return ((rows - cy).abs() <= r) & ((cols - cx).abs() <= r)
    if kind == "disk":
        return (rows - cy) ** 2 + (cols - cx) ** 2 <= r**2
    # an upward isosceles triangle: apex at the top, base at the bottom of the box
    height = (rows - (cy - r)) / (2 * r)  # 0 at the apex, 1 at the base
    return (height >= 0) & (height <= 1) & ((cols - cx).abs() <= r * height)


def shapes_segmentation(
    n: int, size: int = 32, shapes: Sequence[str] = SHAPES, max_shapes: int = 2,
    noise: float = 0.05, seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Grey images of random shapes with per-pixel class masks.

    Each image holds 1 to ``max_shapes`` shapes drawn in order (a later shape covers an earlier
    one in both the image and the mask). Shape ``k`` (index into ``shapes``) is painted at
    intensity ``(k + 1) / len(shapes)`` and labelled ``k + 1``; the background is 0 and label 0.

    Args:
        n (int): number of images.
        size (int): image side, at least 8. (default: ``32``)
        shapes (sequence of str): the shape kinds, any of ``"square"``, ``"disk"``,
            ``"triangle"``. (default: all three)
        max_shapes (int): most shapes per image. (default: ``2``)
        noise (float): standard deviation of the additive noise; with ``0`` the image equals
            the painted intensities exactly. (default: ``0.05``)
        seed (int): random seed. (default: ``0``)

    Returns:
        ``(images, masks)``: ``(n, 1, size, size)`` floats and ``(n, size, size)`` int64 masks in
        ``[0, len(shapes)]``.
    """
    check_positive(n=n, size=size, max_shapes=max_shapes)
    if size < 8:
        raise ValueError(f"size must be at least 8, got {size}")
    unknown = [s for s in shapes if s not in SHAPES]
    if not shapes or unknown:
        raise ValueError(f"shapes must be a non-empty subset of {SHAPES}, got {tuple(shapes)}")
    if noise < 0:
        raise ValueError(f"noise must be non-negative, got {noise}")
    gen = _generator(seed)
    masks = torch.zeros(n, size, size, dtype=torch.long)
    for i in range(n):
        for _ in range(int(torch.randint(1, max_shapes + 1, (1,), generator=gen))):
            k = int(torch.randint(len(shapes), (1,), generator=gen))
            r = float(size * (0.1 + 0.12 * torch.rand(1, generator=gen)))
            cy, cx = (r + (size - 1 - 2 * r) * torch.rand(2, generator=gen)).tolist()
            masks[i][_shape_mask(shapes[k], size, cy, cx, r)] = k + 1
    images = (masks.float() / len(shapes)).unsqueeze(1)
    if noise > 0:
        images = images + noise * torch.randn(images.shape, generator=gen)
    return images, masks


def _line_kernel(length: int, angle: float) -> Tensor:
    """A normalised ``length``-pixel line through the centre, ``angle`` degrees from vertical."""
    kernel = torch.zeros(length, length)
    c = (length - 1) / 2
    t = torch.linspace(-c, c, 4 * length)
    rows = (c + t * math.cos(math.radians(angle))).round().long().clamp(0, length - 1)
    cols = (c + t * math.sin(math.radians(angle))).round().long().clamp(0, length - 1)
    kernel[rows, cols] = 1.0
    return kernel


def add_rain_streaks(
    img: Tensor, density: float = 0.02, angle: float = -10.0, length: int = 9,
    intensity: float = 0.8, seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Screen oriented rain streaks over clean images.

    Streak seeds are Bernoulli(``density``) pixels, smeared along a line of ``length`` pixels at
    ``angle`` degrees from vertical (positive leans right going down), scaled to ``intensity``;
    the rainy image is the screen blend ``1 - (1 - x)(1 - s)``, so ``rainy >= x`` and
    ``rainy == x`` wherever there is no streak.

    Args:
        img (Tensor): clean images in ``[0, 1]``, ``(C, H, W)`` or ``(B, C, H, W)``.
        density (float): share of seed pixels, in ``[0, 1)``. (default: ``0.02``)
        angle (float): streak angle from vertical in degrees. (default: ``-10.0``)
        length (int): streak length in pixels (odd lengths centre the streak). (default: ``9``)
        intensity (float): streak brightness in ``(0, 1]``. (default: ``0.8``)
        seed (int): random seed. (default: ``0``)

    Returns:
        ``(rainy, streaks)``: the rainy images (shape of ``img``) and the streak layer
        (``(B, 1, H, W)`` or ``(1, H, W)``), both in ``[0, 1]``.
    """
    if img.dim() not in (3, 4):
        raise ValueError(f"img must be (C, H, W) or (B, C, H, W), got shape {tuple(img.shape)}")
    if torch.isnan(img).any() or img.min() < 0 or img.max() > 1:
        raise ValueError("img must hold values in [0, 1] (and no NaN)")
    check_fraction("density", density)
    check_positive(length=length)
    if not 0 < intensity <= 1:
        raise ValueError(f"intensity must lie in (0, 1], got {intensity}")
    batched = img.dim() == 4
    x = img if batched else img.unsqueeze(0)
    b, _, h, w = x.shape
    seeds = (torch.rand(b, 1, h, w, generator=_generator(seed)) < density).float()
    kernel = _line_kernel(length, angle).view(1, 1, length, length)
    streaks = F.conv2d(seeds, kernel, padding=length // 2)[..., :h, :w]
    streaks = (intensity * streaks.clamp(max=1.0)).to(device=x.device, dtype=x.dtype)
    rainy = 1 - (1 - x) * (1 - streaks)
    return (rainy, streaks) if batched else (rainy[0], streaks[0])


class Mixture(NamedTuple):
    """A two-source mixture: ``mixture = sources.sum(1) + noise`` exactly."""

    mixture: Tensor  # (n, length)
    sources: Tensor  # (n, 2, length)
    noise: Tensor  # (n, length)
    f0: Tensor  # (n, 2) fundamental frequency of each source, Hz


def two_source_mixture(
    length: int = 8000, sr: int = 8000, n: int = 1, noise: float = 0.01,
    f0_range: tuple[float, float] = (100.0, 400.0), harmonics: int = 4, seed: int = 0,
) -> Mixture:
    """Mixtures of two harmonic sources plus white noise (source-separation toy data).

    Each source is ``env(t) Σ_h a_h sin(2π h f0 t + φ_h)`` with ``f0`` uniform in ``f0_range``,
    ``1/h``-decaying random amplitudes and a slow random amplitude envelope; sources are scaled
    to unit RMS. Harmonics at or above the Nyquist frequency are dropped.

    Args:
        length (int): samples per signal. (default: ``8000``)
        sr (int): sample rate in Hz. (default: ``8000``)
        n (int): number of mixtures. (default: ``1``)
        noise (float): standard deviation of the white noise. (default: ``0.01``)
        f0_range (tuple): fundamental-frequency range in Hz, below ``sr / 2``.
            (default: ``(100, 400)``)
        harmonics (int): harmonics per source. (default: ``4``)
        seed (int): random seed. (default: ``0``)

    Returns:
        :class:`Mixture` of ``mixture (n, length)``, ``sources (n, 2, length)``,
        ``noise (n, length)``, ``f0 (n, 2)``.
    """
    check_positive(length=length, sr=sr, n=n, harmonics=harmonics)
    lo, hi = f0_range
    if not 0 < lo <= hi < sr / 2:
        raise ValueError(f"f0_range must satisfy 0 < low <= high < sr/2 = {sr / 2}, got {f0_range}")
    if noise < 0:
        raise ValueError(f"noise must be non-negative, got {noise}")
    gen = _generator(seed)
    t = torch.arange(length, dtype=torch.float64) / sr
    f0 = lo + (hi - lo) * torch.rand(n, 2, generator=gen, dtype=torch.float64)
    h = torch.arange(1, harmonics + 1, dtype=torch.float64)
    amp = torch.rand(n, 2, harmonics, generator=gen, dtype=torch.float64) / h
    amp = amp * (f0.unsqueeze(-1) * h < sr / 2)  # no aliased harmonics
    phase = 2 * math.pi * torch.rand(n, 2, harmonics, generator=gen, dtype=torch.float64)
    arg = 2 * math.pi * f0[..., None, None] * h[:, None] * t + phase[..., None]
    tone = (amp[..., None] * torch.sin(arg)).sum(2)  # (n, 2, length)
    rate = 0.5 + 2.5 * torch.rand(n, 2, 1, generator=gen, dtype=torch.float64)
    env_phase = 2 * math.pi * torch.rand(n, 2, 1, generator=gen, dtype=torch.float64)
    env = 0.6 + 0.4 * torch.sin(2 * math.pi * rate * t + env_phase)
    sources = tone * env
    sources = sources / sources.pow(2).mean(-1, keepdim=True).sqrt().clamp_min(1e-12)
    sources = sources.float()
    noise_t = noise * torch.randn(n, length, generator=gen)
    return Mixture(sources.sum(1) + noise_t, sources, noise_t, f0.float())


class EchoScenario(NamedTuple):
    """An acoustic-echo scene: ``mic = near + echo + noise`` with ``echo = far * rir``."""

    mic: Tensor  # (n, length) microphone signal
    far: Tensor  # (n, length) far-end (loudspeaker) reference
    near: Tensor  # (n, length) near-end talker, the signal to recover
    echo: Tensor  # (n, length) far-end signal after the room, truncated to length
    rir: Tensor  # (n, rir_len) room impulse response
    noise: Tensor  # (n, length)


def echo_scenario(
    length: int = 8000, sr: int = 8000, rir_len: int = 256, n: int = 1, rt60: float = 0.1,
    echo_gain: float = 1.0, noise: float = 0.01, seed: int = 0,
) -> EchoScenario:
    """Acoustic echo cancellation toy data: a far-end signal through a synthetic room.

    The far-end and near-end signals are the two sources of :func:`two_source_mixture`; the
    room impulse response is a direct-path unit tap followed by Gaussian noise under an
    exponential envelope that falls by 60 dB after ``rt60`` seconds; the echo is the causal
    convolution ``far * rir`` cut to ``length`` samples and scaled by ``echo_gain``.

    Args:
        length (int): samples per signal. (default: ``8000``)
        sr (int): sample rate in Hz. (default: ``8000``)
        rir_len (int): impulse-response taps. (default: ``256``)
        n (int): number of scenes. (default: ``1``)
        rt60 (float): reverberation time in seconds. (default: ``0.1``)
        echo_gain (float): echo level relative to the near end. (default: ``1.0``)
        noise (float): microphone noise standard deviation. (default: ``0.01``)
        seed (int): random seed. (default: ``0``)
    """
    check_positive(length=length, sr=sr, rir_len=rir_len, n=n)
    if rt60 <= 0 or echo_gain < 0 or noise < 0:
        raise ValueError(
            f"need rt60 > 0, echo_gain >= 0 and noise >= 0, got {rt60}, {echo_gain}, {noise}"
        )
    sources = two_source_mixture(length, sr, n, noise=0.0, seed=seed).sources
    far, near = sources[:, 0], sources[:, 1]
    gen = _generator(seed + 1)  # independent of the sources' draws
    t = torch.arange(rir_len, dtype=torch.float32) / sr
    decay = torch.pow(10.0, -3.0 * t / rt60)  # amplitude -60 dB at rt60
    rir = 0.3 * decay * torch.randn(n, rir_len, generator=gen)
    rir[:, 0] = 1.0
    # causal full convolution, cut to length: conv1d is a correlation, so flip the kernel
    echo = F.conv1d(
        F.pad(far, (rir_len - 1, 0)).unsqueeze(0), rir.flip(-1).unsqueeze(1), groups=n
    ).squeeze(0)
    echo = echo_gain * echo
    noise_t = noise * torch.randn(n, length, generator=gen)
    return EchoScenario(near + echo + noise_t, far, near, echo, rir, noise_t)


@dataclass
class ImageTextPairs:
    """Images with token captions; ``is_clean[i]`` iff caption ``i`` names image ``i``'s concept.

    Attributes:
        images: ``(n, C, S, S)`` blob images (:func:`blobs_classification` rendering).
        tokens: ``(n, L)`` int64 caption tokens: ids ``< concepts`` are concept words, the rest
            filler words.
        image_concepts: ``(n,)`` the concept each image shows.
        text_concepts: ``(n,)`` the concept each caption names.
        is_clean: ``(n,)`` bool, ``image_concepts == text_concepts``.
        concepts: number of concepts; ``vocab``: vocabulary size.
    """

    images: Tensor
    tokens: Tensor
    image_concepts: Tensor
    text_concepts: Tensor
    is_clean: Tensor
    concepts: int
    vocab: int

    def __len__(self) -> int:
        return self.images.size(0)

    def subset(self, index: Tensor) -> ImageTextPairs:
        """The pairs at ``index`` (indices or a boolean mask)."""
        return ImageTextPairs(
            self.images[index], self.tokens[index], self.image_concepts[index],
            self.text_concepts[index], self.is_clean[index], self.concepts, self.vocab,
        )


def caption_tokens(
    concepts: Tensor, n_concepts: int, vocab: int, length: int, gen: torch.Generator
) -> Tensor:
    """Captions naming ``concepts``: the concept's word at a random place among filler words."""
    n = concepts.numel()
    tokens = torch.randint(n_concepts, vocab, (n, length), generator=gen)
    where = torch.randint(length, (n,), generator=gen)
    tokens[torch.arange(n), where] = concepts
    return tokens


def image_text_pairs(
    n: int, corrupt_frac: float = 0.5, concepts: int = 10, size: int = 16, channels: int = 3,
    caption_len: int = 6, vocab: int = 64, noise: float = 0.05, seed: int = 0,
) -> ImageTextPairs:
    """A web-crawl-like pool of image-caption pairs, ``corrupt_frac`` of them mismatched.

    Image ``i`` shows concept ``c_i`` (a :func:`blobs_classification` blob); its caption is
    ``caption_len`` tokens holding the word of a concept ``t_i`` among filler words. Exactly
    ``round(corrupt_frac * n)`` pairs, chosen at random, get ``t_i != c_i`` (a uniformly drawn
    other concept); the rest get ``t_i = c_i``.

    Args:
        n (int): number of pairs.
        corrupt_frac (float): share of mismatched captions, in ``[0, 1)``. (default: ``0.5``)
        concepts (int): number of concepts, at least 2. (default: ``10``)
        size (int): image side. (default: ``16``)
        channels (int): image channels. (default: ``3``)
        caption_len (int): tokens per caption. (default: ``6``)
        vocab (int): vocabulary size, more than ``concepts``. (default: ``64``)
        noise (float): image noise standard deviation. (default: ``0.05``)
        seed (int): random seed. (default: ``0``)
    """
    check_positive(n=n, size=size, channels=channels, caption_len=caption_len)
    check_fraction("corrupt_frac", corrupt_frac)
    if concepts < 2 or vocab <= concepts:
        raise ValueError(f"need concepts >= 2 and vocab > concepts, got {concepts}, {vocab}")
    gen = _generator(seed)
    image_c = torch.randint(concepts, (n,), generator=gen)
    corrupt = torch.zeros(n, dtype=torch.bool)
    corrupt[torch.randperm(n, generator=gen)[: round(corrupt_frac * n)]] = True
    # adding 1..concepts-1 modulo concepts gives a uniformly drawn *different* concept
    shift = torch.randint(1, concepts, (n,), generator=gen)
    text_c = torch.where(corrupt, (image_c + shift) % concepts, image_c)
    images = _render_blobs(image_c, concepts, size, channels, noise, gen)
    tokens = caption_tokens(text_c, concepts, vocab, caption_len, gen)
    return ImageTextPairs(images, tokens, image_c, text_c, ~corrupt, concepts, vocab)


def rle_encode(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE of a binary ``(H, W)`` mask (column-major runs, zeros first)."""
    flat = np.asarray(mask, dtype=np.uint8).flatten(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0, *counts]
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def coco_fixture(
    root: str | os.PathLike, categories: Sequence[str], n_images: int = 4,
    image_size: tuple[int, int] = (48, 64), ann_file: str = "annotations.json",
    image_dir: str = "images", max_objects: int = 3, rle_every: int = 3, seed: int = 0,
) -> Path:
    """Write a small COCO-format dataset: ``.npy`` images and one annotation JSON.

    Category ids are ``1..len(categories)`` in the given order. Each image (``uint8``
    ``(H, W, 3)`` array saved with :func:`numpy.save`) holds 1 to ``max_objects`` boxes painted
    in a colour of their category; every annotation has ``bbox`` (``[x, y, w, h]``), ``area``,
    ``iscrowd`` and a ``segmentation``: a rectangle polygon, except every ``rle_every``-th
    annotation, which carries the same rectangle as uncompressed RLE. Files are written
    atomically.

    Args:
        root (path): dataset root; created if missing.
        categories (sequence of str): category names.
        n_images (int): number of images. (default: ``4``)
        image_size (tuple): ``(H, W)``. (default: ``(48, 64)``)
        ann_file (str): annotation path relative to ``root``. (default: ``"annotations.json"``)
        image_dir (str): image folder relative to ``root``. (default: ``"images"``)
        max_objects (int): most objects per image. (default: ``3``)
        rle_every (int): every this many annotations use RLE; ``0`` for polygons only.
            (default: ``3``)
        seed (int): random seed. (default: ``0``)

    Returns:
        The annotation file's path.
    """
    check_positive(n_images=n_images, max_objects=max_objects)
    if not categories or len(set(categories)) != len(categories):
        raise ValueError("categories must be non-empty and unique")
    h, w = image_size
    if h < 8 or w < 8:
        raise ValueError(f"image_size must be at least (8, 8), got {image_size}")
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / image_dir).mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for image_id in range(1, n_images + 1):
        name = f"{image_id:06d}.npy"
        pixels = np.zeros((h, w, 3), dtype=np.uint8)
        for _ in range(int(rng.integers(1, max_objects + 1))):
            cat = int(rng.integers(len(categories))) + 1
            bw, bh = int(rng.integers(3, w // 2)), int(rng.integers(3, h // 2))
            x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
            pixels[y0 : y0 + bh, x0 : x0 + bw] = (37 * cat) % 256
            ann_id = len(annotations) + 1
            if rle_every and ann_id % rle_every == 0:
                mask = np.zeros((h, w), dtype=np.uint8)
                mask[y0 : y0 + bh, x0 : x0 + bw] = 1
                seg: list | dict = rle_encode(mask)
            else:
                # pixel (r, c) covers [c, c+1) x [r, r+1): the polygon traces the box's outline
                seg = [[x0, y0, x0 + bw, y0, x0 + bw, y0 + bh, x0, y0 + bh]]
            annotations.append({
                "id": ann_id, "image_id": image_id, "category_id": cat,
                "bbox": [x0, y0, bw, bh], "area": bw * bh, "iscrowd": 0, "segmentation": seg,
            })
        with tempfile.TemporaryFile() as buf:
            np.save(buf, pixels)
            buf.seek(0)
            with atomic_write(root / image_dir / name, "wb") as f:
                f.write(buf.read())
        images.append({"id": image_id, "file_name": name, "height": h, "width": w})
    cats = [{"id": i + 1, "name": c, "supercategory": "object"} for i, c in enumerate(categories)]
    doc = {"images": images, "annotations": annotations, "categories": cats}
    with atomic_write(root / ann_file) as f:
        json.dump(doc, f)
    return root / ann_file
