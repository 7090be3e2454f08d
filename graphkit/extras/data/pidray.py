r"""PIDray: the X-ray prohibited-item benchmark's loader, constants, and the SDANet neck.

From `Towards Real-World Prohibited Item Detection: A Large-Scale X-ray Benchmark
<https://arxiv.org/abs/2108.07020>`_ (Wang et al., ICCV 2021;
data at ``github.com/bywang2018/security-dataset``). 47,677 X-ray images of 12 prohibited-item
categories with boxes and instance masks, in COCO format; the test set is split by how hard the
items are to see (easy, hard, and deliberately hidden).

:class:`PIDray` reads the official layout from local files (never a download)::

    root/annotations/xray_train.json         root/train/*.png
    root/annotations/xray_test_easy.json     root/easy/*.png
    root/annotations/xray_test_hard.json     root/hard/*.png
    root/annotations/xray_test_hidden.json   root/hidden/*.png

and yields torchvision-style ``(image, target)`` pairs. COCO parsing is done here in plain
Python/NumPy (polygons rasterised at pixel centres, RLE decoded), so pycocotools is not needed.

:class:`SDANetNeck` is the paper's selective dense attention network as a neck over FPN levels:
a dense attention module (each level selects, per channel and per pixel, among all levels
resized to it) and a dependency refinement module (a global context shared across levels).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.checks import check_positive
from graphkit.extras._core.registry import register_model

PAPER = "Towards Real-World Prohibited Item Detection: A Large-Scale X-ray Benchmark"

#: The 12 categories, in the order of the official category ids 1..12.
PIDRAY_CLASSES = (
    "baton", "pliers", "hammer", "powerbank", "scissors", "wrench",
    "gun", "bullet", "sprayer", "handcuffs", "knife", "lighter",
)


@dataclass(frozen=True)
class PIDraySplit:
    """One split: its annotation file and image folder under the root, and its size [paper]."""

    ann_file: str
    image_dir: str
    num_images: int


#: Splits of the ICCV 2021 release; image counts as reported by the paper.
PIDRAY_SPLITS = {
    "train": PIDraySplit("annotations/xray_train.json", "train", 29_457),
    "test_easy": PIDraySplit("annotations/xray_test_easy.json", "easy", 9_482),
    "test_hard": PIDraySplit("annotations/xray_test_hard.json", "hard", 3_733),
    "test_hidden": PIDraySplit("annotations/xray_test_hidden.json", "hidden", 5_005),
}
PIDRAY_NUM_TEST = 18_220
PIDRAY_NUM_IMAGES = 47_677

_HOW_TO_GET = (
    "PIDray is not downloaded by graphkit: get it from github.com/bywang2018/security-dataset "
    "and unpack it so that {root} holds annotations/xray_*.json and the train/, easy/, hard/ "
    "and hidden/ image folders"
)


class AnnotationError(ValueError):
    """A malformed COCO annotation file; the message names the file and the faulty record."""


# ----------------------------------------------------------------------------- COCO masks


def polygon_to_mask(polygons: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """Rasterise COCO polygons (``[x1, y1, x2, y2, ...]`` each) to an ``(H, W)`` uint8 mask.

    A pixel ``(r, c)`` is inside when its centre ``(c + 0.5, r + 0.5)`` is inside a polygon by
    the even-odd rule; several polygons (one object in pieces) are united.
    """
    if height < 0 or width < 0:
        raise ValueError(f"height and width must be >= 0, got {height} and {width}")
    mask = np.zeros((height, width), dtype=bool)
    xs = np.arange(width) + 0.5
    ys = np.arange(height) + 0.5
    for poly in polygons:
        pts = np.asarray(poly, dtype=np.float64)
        if pts.ndim != 1 or pts.size < 6 or pts.size % 2:
            raise ValueError(f"a polygon needs at least 3 (x, y) points, got {pts.size} numbers")
        if not np.isfinite(pts).all():
            raise ValueError("a polygon has NaN or infinite coordinates")
        px, py = pts[0::2], pts[1::2]
        qx, qy = np.roll(px, -1), np.roll(py, -1)
        inside = np.zeros((height, width), dtype=bool)
        for x0, y0, x1, y1 in zip(px, py, qx, qy, strict=True):
            if y0 == y1:
                continue  # a horizontal edge never crosses a horizontal ray
            # rows whose centre line the edge crosses (half-open, so shared vertices count once)
            crosses = (ys >= min(y0, y1)) & (ys < max(y0, y1))
            x_at = x0 + (ys - y0) * (x1 - x0) / (y1 - y0)
            inside[crosses] ^= xs[None, :] < x_at[crosses, None]
        mask |= inside
    return mask.astype(np.uint8)


def rle_from_string(counts: str) -> list[int]:
    """Decode COCO's compressed RLE string (6-bit chars, delta-coded after the 2nd run)."""
    out: list[int] = []
    pos = 0
    while pos < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if pos >= len(counts):
                raise ValueError("truncated compressed RLE string")
            c = ord(counts[pos]) - 48
            value |= (c & 0x1F) << (5 * shift)
            more = bool(c & 0x20)
            pos += 1
            shift += 1
            if not more and c & 0x10:
                value |= -1 << (5 * shift)  # sign-extend
        if len(out) > 2:
            value += out[-2]
        out.append(value)
    return out


def rle_to_string(counts: Sequence[int]) -> str:
    """Encode run lengths as COCO's compressed RLE string (inverse of :func:`rle_from_string`)."""
    if any(int(run) < 0 for run in counts):
        raise ValueError(f"run lengths must be non-negative, got {list(counts)}")
    chars = []
    for i, run in enumerate(counts):
        value = int(run) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            c = value & 0x1F
            value >>= 5
            more = value != -1 if c & 0x10 else value != 0
            chars.append(chr((c | (0x20 if more else 0)) + 48))
    return "".join(chars)


def rle_to_mask(rle: dict, height: int, width: int) -> np.ndarray:
    """Decode a COCO RLE (``{"size": [H, W], "counts": list or str}``) to an ``(H, W)`` mask."""
    size = rle.get("size")
    if list(size or []) != [height, width]:
        raise ValueError(f"RLE size {size} differs from the image size {[height, width]}")
    counts = rle.get("counts")
    runs = rle_from_string(counts) if isinstance(counts, str) else list(counts or [])
    if any(r < 0 for r in runs) or sum(runs) != height * width:
        raise ValueError(f"RLE runs must be non-negative and sum to H*W = {height * width}")
    values = np.zeros(len(runs), dtype=np.uint8)
    values[1::2] = 1  # runs alternate, starting with zeros
    flat = np.repeat(values, runs)
    return flat.reshape((width, height)).T.copy()  # COCO runs go down the columns


# ----------------------------------------------------------------------------- the dataset


def _fail(path: Path, message: str) -> AnnotationError:
    return AnnotationError(f"{path}: {message}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _load_npy_or_pil(path: Path) -> Tensor:
    """``(C, H, W)`` uint8: ``.npy`` arrays directly, anything else through Pillow."""
    if path.suffix == ".npy":
        try:
            array = np.load(path)
        except (ValueError, OSError, EOFError) as err:
            raise ValueError(f"{path} is not a readable .npy array ({err})") from None
    else:
        try:
            from PIL import Image
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError(
                f"reading {path.suffix} images needs Pillow (pip install pillow), or pass "
                "image_loader= to PIDray"
            ) from err
        try:
            with Image.open(path) as im:
                array = np.asarray(im.convert("RGB"))
        except OSError as err:
            raise ValueError(f"{path} is not a readable image ({err})") from None
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise ValueError(f"{path} holds an array of shape {array.shape}, not an (H, W[, C]) image")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"{path} holds NaN or infinite pixel values")
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)


class PIDray(torch.utils.data.Dataset):
    """The PIDray benchmark from local files, as torchvision-style detection samples.

    Each item is ``(image, target)``: ``image`` a ``(3, H, W)`` uint8 tensor (or what
    ``transforms`` makes of it) and ``target`` a dict of ``boxes`` (``(N, 4)`` float32,
    ``x1, y1, x2, y2``), ``labels`` (``(N,)`` int64, ``1..12`` indexing
    :data:`PIDRAY_CLASSES` from 1; 0 is left for the background), ``masks`` (``(N, H, W)``
    uint8), ``image_id``, ``area`` and ``iscrowd``. The annotation file is read and checked
    when the dataset is built: a missing file or folder, or a malformed record, fails then with
    a message naming it.

    Args:
        root (path): the unpacked dataset folder (see the module docstring for the layout).
        split (str): ``"train"``, ``"test_easy"``, ``"test_hard"`` or ``"test_hidden"``.
            (default: ``"train"``)
        transforms (callable, optional): applied to ``(image, target)``. (default: ``None``)
        image_loader (callable, optional): reads an image path into a ``(C, H, W)`` tensor;
            the default reads ``.npy`` arrays and, through Pillow, image files.
            (default: ``None``)
        check_images (bool): check at build time that every listed image file exists.
            (default: ``True``)
    """

    def __init__(
        self, root: str | os.PathLike, split: str = "train",
        transforms: Callable[[Tensor, dict], tuple[Any, Any]] | None = None,
        image_loader: Callable[[Path], Tensor] | None = None, check_images: bool = True,
    ) -> None:
        if split not in PIDRAY_SPLITS:
            raise ValueError(f"unknown PIDray split {split!r}; choose one of {list(PIDRAY_SPLITS)}")
        self.root = Path(root)
        self.split = split
        self.transforms = transforms
        self.image_loader = image_loader or _load_npy_or_pil
        info = PIDRAY_SPLITS[split]
        self.ann_path = self.root / info.ann_file
        self.image_root = self.root / info.image_dir
        how = _HOW_TO_GET.format(root=self.root)
        if not self.ann_path.is_file():
            raise FileNotFoundError(f"PIDray annotation file not found: {self.ann_path}. {how}")
        if not self.image_root.is_dir():
            raise FileNotFoundError(f"PIDray image folder not found: {self.image_root}. {how}")
        self.images, self.annotations, self.cat_to_label = self._parse(self.ann_path)
        if check_images:
            missing = [im["file_name"] for im in self.images
                       if not (self.image_root / im["file_name"]).is_file()]
            if missing:
                raise FileNotFoundError(
                    f"{len(missing)} PIDray image file(s) listed in {self.ann_path} are missing "
                    f"from {self.image_root}, e.g. {missing[0]}. {how}"
                )

    @staticmethod
    def _parse(path: Path) -> tuple[list[dict], dict[int, list[dict]], dict[int, int]]:
        try:
            doc = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise _fail(path, f"not valid JSON ({err})") from None
        if not isinstance(doc, dict):
            raise _fail(path, "the top level must be a JSON object")
        for key in ("images", "annotations", "categories"):
            if not isinstance(doc.get(key), list):
                raise _fail(path, f"missing the COCO list {key!r}")
        for key in ("images", "annotations", "categories"):
            for record in doc[key]:
                if not isinstance(record, dict):
                    raise _fail(path, f"{key} holds {record!r}, not a JSON object")
        cat_to_label = {}
        for cat in doc["categories"]:
            name = str(cat.get("name", "")).lower()
            if name not in PIDRAY_CLASSES or "id" not in cat:
                raise _fail(path, f"category {cat} is not one of the 12 PIDray classes")
            if not _is_int(cat["id"]) or cat["id"] in cat_to_label:
                raise _fail(path, f"category {cat} needs an integer id of its own")
            cat_to_label[cat["id"]] = PIDRAY_CLASSES.index(name) + 1
        images, seen = [], set()
        for im in doc["images"]:
            if not all(k in im for k in ("id", "file_name", "height", "width")):
                raise _fail(path, f"image record {im} needs id, file_name, height and width")
            if not (_is_int(im["id"]) and isinstance(im["file_name"], str) and im["file_name"]
                    and all(_is_int(im[k]) and im[k] > 0 for k in ("height", "width"))):
                raise _fail(path, f"image record {im} needs an integer id, a file name and "
                                  "positive integer height and width")
            if im["id"] in seen:
                raise _fail(path, f"duplicate image id {im['id']}")
            seen.add(im["id"])
            images.append(im)
        annotations: dict[int, list[dict]] = {im["id"]: [] for im in images}
        for ann in doc["annotations"]:
            aid = ann.get("id")
            if ann.get("image_id") not in annotations:
                raise _fail(path, f"annotation {aid} refers to unknown image {ann.get('image_id')}")
            if ann.get("category_id") not in cat_to_label:
                raise _fail(
                    path, f"annotation {aid} has unknown category_id {ann.get('category_id')}"
                )
            box = ann.get("bbox")
            if (not isinstance(box, list) or len(box) != 4
                    or not all(_is_number(v) for v in box)
                    or box[2] < 0 or box[3] < 0):
                raise _fail(path, f"annotation {aid} needs bbox [x, y, w, h] of finite numbers "
                                  "with w, h >= 0")
            if "area" in ann and not _is_number(ann["area"]):
                raise _fail(path, f"annotation {aid} has area {ann['area']!r}, not a number")
            if ann.get("iscrowd", 0) not in (0, 1):
                raise _fail(path, f"annotation {aid} has iscrowd {ann['iscrowd']!r}, not 0 or 1")
            seg = ann.get("segmentation")
            if seg is not None and not isinstance(seg, (list, dict)):
                raise _fail(path, f"annotation {aid} has a segmentation that is neither "
                                  "polygons nor RLE")
            annotations[ann["image_id"]].append(ann)
        return images, annotations, cat_to_label

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        info = self.images[index]
        path = self.image_root / info["file_name"]
        if not path.is_file():
            raise FileNotFoundError(f"PIDray image not found: {path}")
        image = self.image_loader(path)
        h, w = int(info["height"]), int(info["width"])
        if tuple(image.shape[-2:]) != (h, w):
            raise ValueError(
                f"{path} is {tuple(image.shape[-2:])} but {self.ann_path.name} says {(h, w)}"
            )
        target = self.target(index)
        if self.transforms is not None:
            return self.transforms(image, target)
        return image, target

    def target(self, index: int) -> dict[str, Tensor]:
        """The torchvision-style target of image ``index`` (no image read)."""
        info = self.images[index]
        h, w = int(info["height"]), int(info["width"])
        anns = self.annotations[info["id"]]
        boxes = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]  # (x, y, w, h) -> (x1, y1, x2, y2)
        masks = np.zeros((len(anns), h, w), dtype=np.uint8)
        for i, ann in enumerate(anns):
            seg = ann.get("segmentation")
            try:
                if isinstance(seg, dict):
                    masks[i] = rle_to_mask(seg, h, w)
                elif seg:
                    masks[i] = polygon_to_mask(seg, h, w)
            except (ValueError, TypeError) as err:
                raise _fail(self.ann_path, f"annotation {ann.get('id')}: {err}") from None
        return {
            "boxes": boxes,
            "labels": torch.tensor([self.cat_to_label[a["category_id"]] for a in anns],
                                   dtype=torch.int64),
            "masks": torch.from_numpy(masks),
            "image_id": torch.tensor(info["id"], dtype=torch.int64),
            "area": torch.tensor([float(a.get("area", a["bbox"][2] * a["bbox"][3]))
                                  for a in anns], dtype=torch.float32),
            "iscrowd": torch.tensor([int(a.get("iscrowd", 0)) for a in anns], dtype=torch.int64),
        }


# ----------------------------------------------------------------------------- the SDANet neck


def _check_levels(
    levels: Sequence[Tensor], channels: int, num_levels: int | None, who: str
) -> None:
    """Every level is ``(B, channels, H, W)`` with one batch size (and ``num_levels`` of them)."""
    if num_levels is not None and len(levels) != num_levels:
        raise ValueError(f"{who} expects {num_levels} levels, got {len(levels)}")
    if len(levels) == 0:
        raise ValueError(f"{who} needs at least one level")
    for i, f in enumerate(levels):
        if f.dim() != 4 or f.size(1) != channels or f.size(0) != levels[0].size(0):
            raise ValueError(
                f"level {i} must be (B, {channels}, H, W) with one batch size, "
                f"got {tuple(f.shape)}"
            )


class DenseAttention(nn.Module):
    r"""Selective dense attention: every level chooses among all levels resized to it.

    For target level :math:`i`, each level :math:`P_l` is resized to :math:`P_i`'s size
    (:math:`R_l`); a channel logit :math:`c_l \in \mathbb{R}^C` (from the pooled sum
    :math:`\sum_l R_l`) and a spatial logit :math:`s_l \in \mathbb{R}^{H \times W}` (from the
    per-level channel mean and max) are added and normalised over levels:

    .. math::
        a_l = \mathrm{softmax}_l(c_l + s_l), \qquad
        \hat P_i = P_i + \mathrm{conv}_{3\times 3}\Big(\sum_l a_l \odot R_l\Big)

    The output conv starts at zero, so the module starts as the identity.

    Args:
        channels (int): channels of every level.
        num_levels (int): number of levels.
        reduction (int): bottleneck ratio of the channel branch. (default: ``4``)
    """

    def __init__(self, channels: int, num_levels: int, reduction: int = 4) -> None:
        super().__init__()
        check_positive(channels=channels, num_levels=num_levels, reduction=reduction)
        hidden = max(channels // reduction, 4)
        self.num_levels = num_levels
        self.channel = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, num_levels * channels)
        )
        self.spatial = nn.Conv2d(2 * num_levels, num_levels, 7, padding=3)
        self.out = nn.Conv2d(channels, channels, 3, padding=1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in (*self.channel, self.spatial):
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, target: Tensor, levels: Sequence[Tensor]) -> Tensor:
        _check_levels(levels, self.out.in_channels, self.num_levels, "DenseAttention")
        _check_levels([target], self.out.in_channels, None, "DenseAttention's target")
        if target.size(0) != levels[0].size(0):
            raise ValueError(
                f"DenseAttention: target batch {target.size(0)} differs from the levels' "
                f"{levels[0].size(0)}"
            )
        b, c, h, w = target.shape
        resized = torch.stack([
            p if p.shape[-2:] == (h, w)
            else F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False)
            for p in levels
        ], dim=1)  # (B, L, C, H, W)
        ch = self.channel(resized.sum(1).mean((-2, -1))).view(b, self.num_levels, c, 1, 1)
        stats = torch.cat([resized.mean(2), resized.amax(2)], dim=1)  # (B, 2L, H, W)
        sp = self.spatial(stats).unsqueeze(2)  # (B, L, 1, H, W)
        weights = torch.softmax(ch + sp, dim=1)
        return target + self.out((weights * resized).sum(1))


class DependencyRefinement(nn.Module):
    r"""Refine every level with one global context gathered from all levels.

    Attention pooling over all positions of all levels gives a context vector
    :math:`z = \sum_{l, p} \mathrm{softmax}_{l,p}(w^\top P_l[p]) \, P_l[p]`; a bottleneck
    transform :math:`T` (1×1, LayerNorm, ReLU, 1×1) maps it to a per-channel offset added to
    every level, :math:`\hat P_l = P_l + T(z)` (the last 1×1 starts at zero: identity at init).

    Args:
        channels (int): channels of every level.
        reduction (int): bottleneck ratio. (default: ``4``)
    """

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        check_positive(channels=channels, reduction=reduction)
        hidden = max(channels // reduction, 4)
        self.key = nn.Conv2d(channels, 1, 1)
        self.transform = nn.Sequential(
            nn.Linear(channels, hidden), nn.LayerNorm(hidden), nn.ReLU(),
            nn.Linear(hidden, channels),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.key.reset_parameters()
        for m in self.transform:
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        nn.init.zeros_(self.transform[-1].weight)
        nn.init.zeros_(self.transform[-1].bias)

    def forward(self, levels: Sequence[Tensor]) -> list[Tensor]:
        _check_levels(levels, self.key.in_channels, None, "DependencyRefinement")
        feats = torch.cat([p.flatten(2) for p in levels], dim=2)  # (B, C, sum HW)
        logits = torch.cat([self.key(p).flatten(2) for p in levels], dim=2)  # (B, 1, sum HW)
        context = (feats * logits.softmax(-1)).sum(-1)  # (B, C)
        offset = self.transform(context)[..., None, None]
        return [p + offset for p in levels]


@register_model("sdanet", family="data", paper=PAPER)
class SDANetNeck(nn.Module):
    r"""SDANet's neck: dense attention per FPN level, then dependency refinement across levels.

    Takes the FPN outputs (all with ``channels`` channels, any sizes) and returns one map per
    level with unchanged shapes, ready for a detection/segmentation head. At initialisation
    both modules are the identity (zero-initialised last layers), so inserting the neck does not
    disturb a pretrained FPN.

    Args:
        channels (int): channels of every FPN level. (default: ``256``)
        num_levels (int): number of FPN levels. (default: ``5``)
        reduction (int): bottleneck ratio of the attention branches. (default: ``4``)

    Shapes:
        - input: a list of ``num_levels`` tensors :math:`(B, C, H_l, W_l)`
        - output: a list of the same shapes.
    """

    def __init__(self, channels: int = 256, num_levels: int = 5, reduction: int = 4) -> None:
        super().__init__()
        check_positive(channels=channels, num_levels=num_levels, reduction=reduction)
        self.channels = channels
        self.num_levels = num_levels
        self.dense = nn.ModuleList(
            DenseAttention(channels, num_levels, reduction) for _ in range(num_levels)
        )
        self.refine = DependencyRefinement(channels, reduction)

    def reset_parameters(self) -> None:
        for m in (*self.dense, self.refine):
            m.reset_parameters()

    def forward(self, feats: Sequence[Tensor]) -> list[Tensor]:
        _check_levels(feats, self.channels, self.num_levels, "SDANetNeck")
        attended = [dense(f, feats) for dense, f in zip(self.dense, feats, strict=True)]
        return self.refine(attended)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(channels={self.channels}, num_levels={self.num_levels})"
