import numpy as np
import pytest
import torch

from graphkit.extras.training.distill import affinity_loss, feature_mse, kd_kl, multi_teacher_kd


def _numpy_kd(s: np.ndarray, t: np.ndarray, T: float) -> float:
    def softmax(z):
        z = z / T
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    p_t, p_s = softmax(t), softmax(s)
    return float((p_t * (np.log(p_t) - np.log(p_s))).sum(axis=1).mean() * T * T)


@pytest.mark.parametrize("T", [1.0, 2.5, 8.0])
def test_kd_kl_equals_numpy_reference(T):
    g = torch.Generator().manual_seed(0)
    s = torch.randn(6, 7, generator=g, dtype=torch.float64) * 3
    t = torch.randn(6, 7, generator=g, dtype=torch.float64) * 3
    assert kd_kl(s, t, T).item() == pytest.approx(_numpy_kd(s.numpy(), t.numpy(), T), rel=1e-12)
    assert kd_kl(t, t, T).item() == pytest.approx(0.0, abs=1e-14)


def test_kd_kl_dense_logits_average_over_pixels_and_teacher_gets_no_gradient():
    s = torch.randn(2, 5, 3, 4, dtype=torch.float64, requires_grad=True)
    t = torch.randn(2, 5, 3, 4, dtype=torch.float64, requires_grad=True)
    flat = lambda z: z.permute(0, 2, 3, 1).reshape(-1, 5)  # noqa: E731
    loss = kd_kl(s, t, 2.0)
    ref = _numpy_kd(flat(s).detach().numpy(), flat(t).detach().numpy(), 2.0)
    assert loss.item() == pytest.approx(ref, rel=1e-12)
    loss.backward()
    assert t.grad is None and s.grad.abs().sum() > 0


def test_kd_kl_rejects_bad_inputs():
    with pytest.raises(ValueError, match="differ in shape"):
        kd_kl(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="temperature"):
        kd_kl(torch.zeros(2, 3), torch.zeros(2, 3), T=0.0)
    with pytest.raises(ValueError, match=r"\(batch, classes"):
        kd_kl(torch.zeros(3), torch.zeros(3))


def test_feature_mse_and_normalised_variant():
    s, t = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)
    assert feature_mse(s, t).item() == pytest.approx(((s - t) ** 2).mean().item(), rel=1e-6)
    # direction only: a scaled copy matches exactly
    assert feature_mse(3.0 * t, t, normalize=True).item() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="project the student"):
        feature_mse(torch.zeros(4, 5), torch.zeros(4, 6))


def test_affinity_loss_ignores_width_and_is_zero_for_rotated_features():
    t = torch.randn(8, 16, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(16, 16, dtype=torch.float64))
    # an orthogonal map keeps every cosine between samples
    assert affinity_loss(t @ q, t).item() == pytest.approx(0.0, abs=1e-20)
    # maps of different channel counts compare their spatial affinities
    s_map, t_map = torch.randn(2, 4, 3, 3), torch.randn(2, 9, 3, 3)
    ref = torch.nn.functional.normalize(s_map.flatten(2), dim=1)
    ref = ref.transpose(1, 2) @ ref
    t_aff = torch.nn.functional.normalize(t_map.flatten(2), dim=1)
    t_aff = t_aff.transpose(1, 2) @ t_aff
    assert affinity_loss(s_map, t_map).item() == pytest.approx(
        ((ref - t_aff) ** 2).mean().item(), rel=1e-6
    )
    with pytest.raises(ValueError, match="batch and spatial"):
        affinity_loss(torch.zeros(2, 4, 3, 3), torch.zeros(2, 4, 3, 2))


def test_multi_teacher_kd_respects_class_slices():
    g = torch.Generator().manual_seed(1)
    s = torch.randn(5, 10, generator=g, dtype=torch.float64, requires_grad=True)
    t1 = torch.randn(5, 4, generator=g, dtype=torch.float64)
    t2 = torch.randn(5, 3, generator=g, dtype=torch.float64)
    slices = [slice(0, 4), [6, 8, 9]]
    loss = multi_teacher_kd(s, [t1, t2], slices, weights=[0.5, 2.0], T=3.0)
    want = 0.5 * kd_kl(s[:, :4], t1, 3.0) + 2.0 * kd_kl(s[:, [6, 8, 9]], t2, 3.0)
    assert loss.item() == pytest.approx(want.item(), rel=1e-12)
    loss.backward()
    touched = (s.grad.abs() > 0).any(dim=0)
    expected = torch.zeros(10, dtype=torch.bool)
    expected[[0, 1, 2, 3, 6, 8, 9]] = True
    assert torch.equal(touched, expected)  # classes 4, 5, 7 belong to no teacher


def test_multi_teacher_kd_rejects_bad_inputs():
    s = torch.zeros(2, 6)
    with pytest.raises(ValueError, match="one class slice per teacher"):
        multi_teacher_kd(s, [torch.zeros(2, 3)], [slice(0, 3), slice(3, 6)])
    with pytest.raises(ValueError, match=r"teacher 0 logits must be \(B, 3\)"):
        multi_teacher_kd(s, [torch.zeros(2, 4)], [slice(0, 3)])
    with pytest.raises(ValueError, match=r"must lie in \[0, 6\)"):
        multi_teacher_kd(s, [torch.zeros(2, 2)], [[5, 6]])
    with pytest.raises(ValueError, match="non-negative"):
        multi_teacher_kd(s, [torch.zeros(2, 3)], [slice(0, 3)], weights=[-1.0])


def test_kd_kl_with_a_masked_teacher_class_is_finite():
    s = torch.randn(2, 4, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([[2.0, 1.0, -float("inf"), 0.0], [0.0, 1.0, 2.0, 3.0]])
    expected = torch.nn.functional.kl_div(torch.log_softmax(s / 2, 1), torch.softmax(t / 2, 1),
                                          reduction="batchmean") * 4
    torch.testing.assert_close(kd_kl(s, t, T=2.0), expected)
    s[0, 2] = -float("inf")  # the same class masked in the student as well
    assert torch.isfinite(kd_kl(s, t, T=2.0))


def test_class_slices_reject_repeated_classes():
    with pytest.raises(ValueError, match="repeats a class"):
        multi_teacher_kd(torch.randn(2, 4), [torch.randn(2, 3)], [[0, 0, 1]])


def test_class_slices_reject_fractional_indices_and_boolean_masks():
    s = torch.zeros(2, 6)
    # [0.5, 2.5] was truncated to classes [0, 2]
    with pytest.raises(ValueError, match="class slice indices must be integers"):
        multi_teacher_kd(s, [torch.zeros(2, 2)], [[0.5, 2.5]])
    # a boolean mask was read as the class indices 0 and 1
    mask = torch.tensor([True, False, True, False, False, False])
    with pytest.raises(ValueError, match="not a boolean mask"):
        multi_teacher_kd(s, [torch.zeros(2, 6)], [mask])
    multi_teacher_kd(s, [torch.zeros(2, 2)], [torch.tensor([0.0, 2.0])])  # integral floats
