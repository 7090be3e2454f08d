import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from graphkit.extras._core.registry import create_model
from graphkit.extras.training.distill import kd_kl
from graphkit.extras.training.mgd import MGDLoss, MGDTrainer


def _out(b=2, d=6, c=4, h=14, w=14, seed=0):
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(b, d, h, w, generator=g, dtype=torch.float64)
    logits = torch.randn(b, c, h, w, generator=g, dtype=torch.float64) * 2
    return feats, logits


class _Seg(nn.Module):
    """A tiny segmenter returning (features, logits) at the input resolution."""

    def __init__(self, width: int = 8, classes: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.cls = nn.Conv2d(width, classes, 1)

    def forward(self, x):
        f = self.body(x)
        return f, self.cls(f)


def test_every_loss_vanishes_when_student_equals_teachers():
    f, z = _out()
    for pixel in ("soft",):
        out = MGDLoss(pixel=pixel)((f, z), [(f.clone(), z.clone()), (f.clone(), z.clone())])
        for k in ("image", "region", "pixel", "total"):
            assert out[k].item() == pytest.approx(0.0, abs=1e-12), k
    # the region term compares directions only: a rescaled teacher feature map is still equal
    assert MGDLoss().region_loss(f, 3.0 * f).item() == pytest.approx(0.0, abs=1e-12)
    # the official hard pixel loss is not 0 at equality (cross-entropy against the arg-max)
    assert MGDLoss(pixel="hard").pixel_loss(z, z).item() > 0


def test_terms_equal_their_formulas():
    f, z = _out()
    g, t = _out(d=5, seed=1)  # teacher features of another width
    f2, t2 = _out(seed=2)
    loss = MGDLoss(image_w=0.5, region_w=2.0, pixel_w=0.25, region_grid=7, T=2.0)
    out = loss((f, z), [(g, t), (f2, t2)])
    zs, tt = z.numpy(), t2.numpy()
    image = np.abs(zs.mean(axis=(2, 3)) - tt.mean(axis=(2, 3))).sum(axis=1).mean()
    assert out["image"].item() == pytest.approx(image, rel=1e-12)

    def aff(x):  # 14x14 -> 7x7 regions by 2x2 averaging, then cosine between regions
        p = x.reshape(x.shape[0], x.shape[1], 7, 2, 7, 2).mean(axis=(3, 5)).reshape(
            x.shape[0], x.shape[1], 49)
        p = p / np.linalg.norm(p, axis=1, keepdims=True)
        return np.einsum("bci,bcj->bij", p, p)

    region = ((aff(f.numpy()) - aff(g.numpy())) ** 2).mean()
    assert out["region"].item() == pytest.approx(region, rel=1e-10)
    pixel = kd_kl(z, t, 2.0) + kd_kl(z, t2, 2.0)
    torch.testing.assert_close(out["pixel"], pixel, rtol=0, atol=1e-12)
    total = 0.5 * out["image"] + 2.0 * out["region"] + 0.25 * out["pixel"]
    torch.testing.assert_close(out["total"], total, rtol=0, atol=1e-12)
    hard = MGDLoss(pixel="hard").pixel_loss(z, t)
    torch.testing.assert_close(hard, F.cross_entropy(z, t.argmax(1)), rtol=0, atol=1e-12)


def test_region_target_is_the_first_teacher_image_target_the_second():
    f, z = _out()
    other_f, other_z = _out(seed=3)
    loss = MGDLoss()
    # teacher 1 equals the student in features, teacher 2 in logits
    out = loss((f, z), [(f, other_z), (other_f, z)])
    assert out["region"].item() == pytest.approx(0.0, abs=1e-12)
    assert out["image"].item() == pytest.approx(0.0, abs=1e-12)
    assert out["pixel"].item() > 0  # teacher 1's logits differ
    # a single teacher plays both roles
    single = loss((f, z), [(f, z)])
    assert all(single[k].item() == pytest.approx(0.0, abs=1e-12) for k in single)


def test_gradients_are_finite_and_reach_only_the_student():
    f, z = _out()
    f.requires_grad_(True)
    z.requires_grad_(True)
    tf, tz = _out(seed=4)
    tf.requires_grad_(True)
    tz.requires_grad_(True)
    MGDLoss(pixel="hard")((f, z), [(tf, tz)])["total"].backward()
    assert torch.isfinite(f.grad).all() and torch.isfinite(z.grad).all()
    assert f.grad.abs().sum() > 0 and z.grad.abs().sum() > 0
    assert tf.grad is None and tz.grad is None
    # zero features (a dead ReLU map) keep the gradient finite
    zero = torch.zeros(2, 6, 14, 14, dtype=torch.float64, requires_grad=True)
    MGDLoss().region_loss(zero, tf.detach()).backward()
    assert torch.isfinite(zero.grad).all()


def test_trainer_combines_supervision_and_distillation_and_freezes_teachers():
    torch.manual_seed(0)
    student, t1, t2 = _Seg(4), _Seg(8), _Seg(6)
    tr = create_model("mgd", student=student, teachers=(t1, t2))
    assert isinstance(tr, MGDTrainer)
    x_l, x_u = torch.randn(2, 3, 14, 14), torch.randn(3, 3, 14, 14)
    y = torch.randint(0, 3, (2, 14, 14))
    y[0, :3] = 255  # unlabelled pixels are ignored
    out = tr.losses(x_l, y, x_u)
    x = torch.cat([x_l, x_u])
    want = MGDLoss()(student(x), [t1(x), t2(x)])
    sup = F.cross_entropy(student(x_l)[1], y, ignore_index=255)
    torch.testing.assert_close(out["sup"], sup)
    torch.testing.assert_close(out["total"], sup + want["total"])
    opt = torch.optim.SGD(tr.parameters(), lr=0.1)
    w_t = t1.cls.weight.clone()
    w_s = student.cls.weight.detach().clone()
    tr.step(x_l, y, x_u, opt)
    assert torch.equal(t1.cls.weight, w_t) and not torch.equal(student.cls.weight, w_s)
    assert all(p.grad is None for p in tr.teachers.parameters())
    assert tr(x_l).shape == (2, 3, 14, 14)
    # a student that is its only teacher has nothing left to distil
    same = MGDTrainer(student, [student])
    assert same.losses(x_l, y, x_u)["pixel"].item() == pytest.approx(0.0, abs=1e-6)


def test_rejects_bad_inputs():
    f, z = _out()
    with pytest.raises(ValueError, match="image_w"):
        MGDLoss(image_w=-1.0)
    with pytest.raises(ValueError, match="region_grid"):
        MGDLoss(region_grid=0)
    with pytest.raises(ValueError, match="pixel must be"):
        MGDLoss(pixel="mse")
    with pytest.raises(ValueError, match="temperature"):
        MGDLoss(T=0.0)
    with pytest.raises(ValueError, match="one or two teachers"):
        MGDLoss()((f, z), [])
    with pytest.raises(ValueError, match="differ from the student"):
        MGDLoss()((f, z), [(f, z[:, :3])])
    with pytest.raises(ValueError, match=r"return \(features, logits\)"):
        MGDLoss()((f, z), [z])
    with pytest.raises(ValueError, match="one or two teachers"):
        MGDTrainer(_Seg(), [_Seg(), _Seg(), _Seg()])
    tr = MGDTrainer(_Seg(), [_Seg()])
    with pytest.raises(ValueError, match="labels must be"):
        tr.losses(torch.randn(2, 3, 8, 8), torch.zeros(2, 7, 8, dtype=torch.long))
