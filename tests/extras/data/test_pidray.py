"""PIDray: the COCO loader on a generated fixture, split constants, errors, the SDANet neck."""

import json

import numpy as np
import pytest
import torch

from graphkit.extras._core.registry import create_model
from graphkit.extras._core.synthetic import coco_fixture, rle_encode
from graphkit.extras.data.pidray import (
    PIDRAY_CLASSES,
    PIDRAY_NUM_IMAGES,
    PIDRAY_NUM_TEST,
    PIDRAY_SPLITS,
    AnnotationError,
    DenseAttention,
    DependencyRefinement,
    PIDray,
    SDANetNeck,
    polygon_to_mask,
    rle_from_string,
    rle_to_mask,
    rle_to_string,
)


def make_pidray(root, split="train", n_images=4, seed=0, categories=None):
    """Write one split in the official layout, with capitalised names as a real file may have."""
    info = PIDRAY_SPLITS[split]
    names = categories or [c.capitalize() for c in PIDRAY_CLASSES]
    return coco_fixture(root, names, n_images=n_images, ann_file=info.ann_file,
                        image_dir=info.image_dir, seed=seed)


def test_class_and_split_constants():
    """Split sizes are the paper's figures [paper]; they sum to the reported totals."""
    assert len(PIDRAY_CLASSES) == 12 and len(set(PIDRAY_CLASSES)) == 12
    assert PIDRAY_CLASSES[0] == "baton" and PIDRAY_CLASSES[-1] == "lighter"
    tests = [PIDRAY_SPLITS[s].num_images for s in ("test_easy", "test_hard", "test_hidden")]
    assert sum(tests) == PIDRAY_NUM_TEST == 18_220
    assert PIDRAY_SPLITS["train"].num_images + PIDRAY_NUM_TEST == PIDRAY_NUM_IMAGES == 47_677
    assert {s.image_dir for s in PIDRAY_SPLITS.values()} == {"train", "easy", "hard", "hidden"}


@pytest.mark.parametrize("split", list(PIDRAY_SPLITS))
def test_loader_parses_the_fixture_into_torchvision_targets(tmp_path, split):
    ann = make_pidray(tmp_path, split, n_images=5, seed=3)
    doc = json.loads(ann.read_text())
    ds = PIDray(tmp_path, split=split)
    assert len(ds) == 5
    by_image = {}
    for a in doc["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    for i in range(len(ds)):
        image, target = ds[i]
        info = doc["images"][i]
        assert image.shape == (3, 48, 64) and image.dtype == torch.uint8
        anns = by_image[info["id"]]
        assert int(target["image_id"]) == info["id"]
        assert target["labels"].tolist() == [a["category_id"] for a in anns]  # ids 1..12 in order
        assert target["labels"].min() >= 1 and target["labels"].max() <= 12
        for box, mask, a in zip(target["boxes"], target["masks"], anns, strict=True):
            x, y, w, h = a["bbox"]
            assert box.tolist() == [x, y, x + w, y + h]
            expect = torch.zeros(48, 64, dtype=torch.uint8)
            expect[y : y + h, x : x + w] = 1  # polygon and RLE both give the box's pixels
            assert torch.equal(mask, expect)
        assert target["area"].tolist() == [a["area"] for a in anns]
        assert target["iscrowd"].tolist() == [0] * len(anns)
    kinds = {type(a["segmentation"]) for a in doc["annotations"]}
    assert kinds == {list, dict}  # both polygon and RLE were exercised


def test_transforms_see_image_and_target(tmp_path):
    make_pidray(tmp_path, n_images=2)
    ds = PIDray(tmp_path, transforms=lambda im, t: (im.float() / 255, t["labels"]))
    image, labels = ds[0]
    assert image.dtype == torch.float32 and labels.dtype == torch.int64


def test_missing_files_fail_at_once_naming_them(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"xray_train\.json.*security-dataset"):
        PIDray(tmp_path, split="train")
    make_pidray(tmp_path, "test_hard", n_images=3)
    with pytest.raises(FileNotFoundError, match=r"xray_test_easy\.json"):
        PIDray(tmp_path, split="test_easy")
    (tmp_path / "hard" / "000002.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 PIDray image file.*000002\.npy"):
        PIDray(tmp_path, split="test_hard")
    ds = PIDray(tmp_path, split="test_hard", check_images=False)
    with pytest.raises(FileNotFoundError, match="000002.npy"):
        ds[1]
    with pytest.raises(ValueError, match="unknown PIDray split"):
        PIDray(tmp_path, split="val")


def _corrupt(tmp_path, edit):
    path = make_pidray(tmp_path, n_images=2)
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("annotations"), "missing the COCO list 'annotations'"),
    (lambda d: d["categories"].append({"id": 13, "name": "umbrella"}), "not one of the 12"),
    (lambda d: d["annotations"][0].update(category_id=99), "unknown category_id 99"),
    (lambda d: d["annotations"][0].update(image_id=404), "unknown image 404"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), r"bbox \[x, y, w, h\]"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, -3, 4]), r"w, h >= 0"),
    (lambda d: d["images"].append(dict(d["images"][0])), "duplicate image id"),
    (lambda d: d["images"][0].pop("height"), "needs id, file_name, height and width"),
    (lambda d: d["annotations"][0].update(segmentation="bad"), "neither polygons nor RLE"),
    (lambda d: d["annotations"][0].update(bbox=[float("nan"), 0, 2, 2]), "finite numbers"),
    (lambda d: d["annotations"][0].update(area="x"), "area 'x', not a number"),
    (lambda d: d["annotations"][0].update(iscrowd="x"), "iscrowd 'x', not 0 or 1"),
    (lambda d: d["images"][0].update(height=-5), "positive integer height and width"),
    (lambda d: d["images"][0].update(file_name=None), "a file name"),
    (lambda d: d["images"].append(5), "images holds 5, not a JSON object"),
    (lambda d: d["categories"].append({"id": 1, "name": "Lighter"}), "an integer id of its own"),
])
def test_malformed_annotations_are_named_errors(tmp_path, edit, message):
    path = _corrupt(tmp_path, edit)
    with pytest.raises(AnnotationError, match=message) as err:
        PIDray(tmp_path)
    assert str(path) in str(err.value)


def test_bad_masks_and_sizes_are_named_at_read_time(tmp_path):
    def bad_polygon(doc):
        doc["annotations"][0]["segmentation"] = [[1, 2, 3, 4]]

    _corrupt(tmp_path, bad_polygon)
    ds = PIDray(tmp_path)
    first = next(i for i, im in enumerate(ds.images) if im["id"] == 1)
    with pytest.raises(AnnotationError, match="annotation 1: a polygon needs at least 3"):
        ds[first]

    def wrong_size(doc):
        doc["images"][0]["height"] = 50

    _corrupt(tmp_path / "b", wrong_size)
    with pytest.raises(ValueError, match=r"\(48, 64\) but xray_train\.json says \(50, 64\)"):
        PIDray(tmp_path / "b")[0]
    (tmp_path / "c" / "annotations").mkdir(parents=True)
    (tmp_path / "c" / "train").mkdir()
    (tmp_path / "c" / "annotations" / "xray_train.json").write_text("{not json")
    with pytest.raises(AnnotationError, match="not valid JSON"):
        PIDray(tmp_path / "c")


def test_polygon_rasterisation_at_pixel_centres():
    # a right triangle with legs of 4 pixels: centres strictly below the diagonal are inside
    tri = polygon_to_mask([[0, 0, 4, 0, 0, 4]], 5, 5)
    expect = np.array([[int(c + 0.5 + r + 0.5 < 4) for c in range(5)] for r in range(5)])
    assert (tri == expect).all()
    # two pieces of one object are united; a square with a square hole (even-odd) is a ring
    two = polygon_to_mask([[0, 0, 1, 0, 1, 1, 0, 1], [3, 3, 4, 3, 4, 4, 3, 4]], 4, 4)
    assert two.sum() == 2 and two[0, 0] == 1 and two[3, 3] == 1
    ring = polygon_to_mask([[0, 0, 4, 0, 4, 4, 0, 4, 0, 0, 1, 1, 1, 3, 3, 3, 3, 1, 1, 1]], 4, 4)
    assert ring.sum() == 12 and ring[1:3, 1:3].sum() == 0


def test_rle_round_trips_both_encodings():
    rng = np.random.default_rng(0)
    mask = (rng.random((9, 7)) < 0.4).astype(np.uint8)
    rle = rle_encode(mask)
    assert (rle_to_mask(rle, 9, 7) == mask).all()
    packed = {"size": [9, 7], "counts": rle_to_string(rle["counts"])}
    assert rle_from_string(packed["counts"]) == rle["counts"]
    assert (rle_to_mask(packed, 9, 7) == mask).all()
    big = [0, 70000, 3, 12, 1, 50000]  # large and decreasing runs use sign-extended deltas
    assert rle_from_string(rle_to_string(big)) == big
    with pytest.raises(ValueError, match="sum to H\\*W"):
        rle_to_mask({"size": [9, 7], "counts": [3, 4]}, 9, 7)
    with pytest.raises(ValueError, match="differs from the image size"):
        rle_to_mask(rle, 7, 9)


def test_sdanet_neck_keeps_shapes_and_starts_as_identity():
    torch.manual_seed(0)
    neck = SDANetNeck(channels=16, num_levels=4)
    feats = [torch.randn(2, 16, s, s + 2) for s in (32, 16, 8, 4)]
    out = neck(feats)
    assert [o.shape for o in out] == [f.shape for f in feats]
    for o, f in zip(out, feats, strict=True):
        torch.testing.assert_close(o, f)  # zero-initialised last layers: the identity
    # with the last layers non-zero every level mixes in the others, and gradients reach all
    for p in neck.parameters():
        torch.nn.init.normal_(p, std=0.1)
    feats = [f.requires_grad_() for f in feats]
    out = neck(feats)
    assert [o.shape for o in out] == [f.shape for f in feats]
    assert all((o - f).abs().max() > 1e-3 for o, f in zip(out, feats, strict=True))
    sum(o.square().mean() for o in out).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in neck.parameters())
    # level 0's output depends on level 3's input (dense, cross-level attention)
    grad3 = torch.autograd.grad(neck(feats)[0].sum(), feats[3])[0]
    assert grad3.abs().sum() > 0


def test_sdanet_neck_rejects_bad_levels():
    neck = create_model("sdanet", channels=8, num_levels=3)
    assert isinstance(neck, SDANetNeck)
    good = [torch.randn(1, 8, s, s) for s in (8, 4, 2)]
    with pytest.raises(ValueError, match="expects 3 levels, got 2"):
        neck(good[:2])
    with pytest.raises(ValueError, match=r"level 1 must be \(B, 8, H, W\)"):
        neck([good[0], torch.randn(1, 6, 4, 4), good[2]])
    with pytest.raises(ValueError, match="num_levels must be a positive integer"):
        SDANetNeck(8, num_levels=0)


def test_bad_polygons_runs_and_levels_are_named():
    with pytest.raises(ValueError, match="a polygon has NaN or infinite coordinates"):
        polygon_to_mask([[0, 0, float("nan"), 0, 2, 2]], 4, 4)
    with pytest.raises(ValueError, match="height and width must be >= 0, got -1 and 4"):
        polygon_to_mask([[0, 0, 2, 0, 2, 2]], -1, 4)
    with pytest.raises(ValueError, match="run lengths must be non-negative"):
        rle_to_string([-1, 2])
    levels = [torch.randn(1, 8, 4, 4), torch.randn(1, 8, 2, 2)]
    with pytest.raises(ValueError, match="DenseAttention expects 2 levels, got 1"):
        DenseAttention(8, 2)(levels[0], levels[:1])
    with pytest.raises(ValueError, match=r"level 0 must be \(B, 8, H, W\) .* got \(1, 6, 4, 4\)"):
        DenseAttention(8, 2)(torch.randn(1, 6, 4, 4), levels)
    with pytest.raises(ValueError, match=r"level 1 must be \(B, 8, H, W\)"):
        DependencyRefinement(8)([levels[0], torch.randn(1, 6, 2, 2)])


def test_unreadable_image_files_are_named(tmp_path):
    make_pidray(tmp_path, n_images=2)
    ds = PIDray(tmp_path)
    path = ds.image_root / ds.images[0]["file_name"]
    path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"000001\.npy is not a readable \.npy array"):
        ds[0]
    np.save(path, np.zeros(5, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"holds an array of shape \(5,\), not an \(H, W\[, C\]\)"):
        ds[0]
    np.save(path, np.full((48, 64, 3), np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="holds NaN or infinite pixel values"):
        ds[0]
