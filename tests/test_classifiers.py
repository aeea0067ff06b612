"""classifiers.fit_many against the one-at-a-time reference fit, and its loss pieces against hand values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from imbagan import classifiers as clf


def _set(n: int, k: int = 3, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images whose brightness depends on the class, and their labels."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    x = (torch.rand(n, 1, size, size, generator=g) * 60 + y[:, None, None, None] * 60).to(torch.uint8)
    return x, y


K = 3
KW = dict(arch="cnn", width=8, steps=5, batch_size=8, lr=1e-3)


def _jobs() -> list[clf.Job]:
    x0, y0 = _set(40, seed=0)
    x1, y1 = _set(30, seed=1)
    x2, y2 = _set(25, seed=2)
    return [clf.Job(x0, y0, seed=1),
            clf.Job(x1, y1, seed=2, class_weight=torch.tensor([1.0, 2.0, 3.0]), plain_steps=2),
            clf.Job(x2, y2, seed=3, logit_offset=torch.tensor([0.1, -0.5, 0.3]))]


def _reference(job: clf.Job, seed: int | None = None, **kw) -> clf.Classifier:
    return clf.fit(job.x, job.y, K, seed=job.seed if seed is None else seed, class_weight=job.class_weight,
                   logit_offset=job.logit_offset, plain_steps=job.plain_steps, **{**KW, **kw})


def _max_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return max((sa[k].float() - sb[k].float()).abs().max().item() for k in sa)


def test_fit_many_trains_the_models_fit_trains_one_by_one():
    """Same initial weights, same batches, same per-job loss: only the batching differs."""
    jobs = _jobs()
    many = clf.fit_many(jobs, K, precision="fp32", **KW)
    x_probe = _set(12, seed=9)[0]
    for job, model in zip(jobs, many):
        ref = _reference(job)
        # Every parameter and batch-norm running statistic, and the predictions, within float rounding.
        assert _max_diff(ref, model) < 1e-5
        assert torch.allclose(clf.features(ref, x_probe), clf.features(model, x_probe), atol=1e-5)
        # The tolerance is meaningful: one different seed (weights and batch order) is far outside it.
        assert _max_diff(_reference(job, seed=job.seed + 10), model) > 1e-3


def test_fit_many_in_several_passes_and_batch_sizes_gives_the_same_models():
    jobs = _jobs() + [clf.Job(*_set(6, seed=4), seed=5)]  # 6 images < batch 8: its own pass, batch 6
    reports = []
    many = clf.fit_many(jobs, K, precision="fp32", max_models=2, report_every=2,
                        on_report=lambda step, total, losses: reports.append((step, total, tuple(losses.shape))), **KW)
    assert _max_diff(_reference(jobs[3]), many[3]) < 1e-5
    assert _max_diff(_reference(jobs[1]), many[1]) < 1e-5
    # passes (jobs 0,1), (job 2), (job 3); reports at steps 2, 4, 5 of each, counting on across passes
    assert [s for s, _, _ in reports] == [2, 4, 5, 7, 9, 10, 12, 14, 15]
    assert {t for _, t, _ in reports} == {15}
    assert [shape for _, _, shape in reports][:3] == [(2,)] * 3 and reports[-1][2] == (1,)


@pytest.mark.parametrize("arch", clf.ARCHS)
def test_the_wide_network_has_each_models_outputs_and_gradients(arch):
    """Every conv widened to groups=M, every batch norm to M*C channels: M separate networks.

    (For ResNet-18 this is the check rather than whole training runs: its deepest layers see 1x1 maps,
    where some gradients are ~1e-9 and float rounding flips their sign, so Adam's ±lr first step
    differs there between any two correct implementations.)
    """
    x, y = _set(8, size=8)
    nets = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        nets.append(clf.build_classifier(arch, 1, K, width=8).train())
    wide = clf._Stacked(nets).train()
    xb = x[:4].float() / 127.5 - 1
    out = wide(torch.cat([xb, xb.flip(0)], 1))  # model 1 sees the batch in another order
    assert out.shape == (2, 4, K)
    sum(F.cross_entropy(out[i], y[:4] if i == 0 else y[:4].flip(0)) for i in range(2)).backward()
    grads = dict(wide.trunk.named_parameters())
    for i, net in enumerate(nets):
        xi, yi = (xb, y[:4]) if i == 0 else (xb.flip(0), y[:4].flip(0))
        o = net(xi)
        assert torch.allclose(o, out[i], atol=1e-4)
        F.cross_entropy(o, yi).backward()
        for name, p in net.trunk.named_parameters():
            g = grads[name].grad.chunk(2)[i]
            assert (g - p.grad).norm() <= 1e-4 * p.grad.norm() + 1e-7, name
        assert torch.allclose(wide.head_w.grad[i], net.head.weight.grad, atol=1e-5)


def test_fit_many_trains_resnet18():
    x, y = _set(8, size=8)
    many = clf.fit_many([clf.Job(x, y, seed=0), clf.Job(x, y, seed=1)], K, arch="resnet18", steps=1,
                        batch_size=4, lr=1e-3)
    assert [clf.predict(m, x).shape for m in many] == [(8,), (8,)]
    assert clf.features(many[0], x).shape == (8, 512)


def test_job_losses_match_hand_computed_weighted_and_offset_cross_entropy():
    logits = torch.tensor([[[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]]])  # (M=1, B=2, K=3)
    y = torch.tensor([[0, 1]])
    weight = torch.tensor([[1.0, 3.0, 1.0]])
    offset = torch.tensor([[[0.0, math.log(0.5), math.log(0.25)]]])

    def nll(z, o, c):
        zs = [a + b for a, b in zip(z, o)]
        return -(zs[c] - math.log(sum(math.exp(v) for v in zs)))

    plain = clf.job_losses(logits, y, torch.ones(1, 3), torch.zeros(1, 1, 3))
    assert plain.item() == pytest.approx((nll([2, 0, -1], [0] * 3, 0) + nll([0.5, 1.5, 0], [0] * 3, 1)) / 2, abs=1e-6)
    weighted = clf.job_losses(logits, y, weight, torch.zeros(1, 1, 3))
    want = (1 * nll([2, 0, -1], [0] * 3, 0) + 3 * nll([0.5, 1.5, 0], [0] * 3, 1)) / (1 + 3)
    assert weighted.item() == pytest.approx(want, abs=1e-6)
    o = offset[0, 0].tolist()
    adjusted = clf.job_losses(logits, y, torch.ones(1, 3), offset)
    assert adjusted.item() == pytest.approx((nll([2, 0, -1], o, 0) + nll([0.5, 1.5, 0], o, 1)) / 2, abs=1e-6)
    # and it is F.cross_entropy's weighted mean, which the reference fit uses
    ce = torch.nn.functional.cross_entropy(logits[0] + offset[0], y[0], weight=weight[0])
    assert clf.job_losses(logits, y, weight, offset).item() == pytest.approx(ce.item(), abs=1e-6)


def test_log_prior_is_the_log_class_frequency():
    y = torch.tensor([0, 0, 0, 1])
    assert torch.allclose(clf.log_prior(y, 2, tau=2.0), 2 * torch.tensor([0.75, 0.25]).log())


def test_drw_switches_to_class_weights_after_its_plain_steps():
    """Three copies of one job: unweighted, weighted from the start, weighted after 2 plain steps."""
    x, y = _set(40)
    w = torch.tensor([1.0, 5.0, 0.2])
    jobs = [clf.Job(x, y, seed=0), clf.Job(x, y, seed=0, class_weight=w), clf.Job(x, y, seed=0, class_weight=w,
                                                                                   plain_steps=2)]
    losses = []
    clf.fit_many(jobs, K, precision="fp32", report_every=1, on_report=lambda s, t, v: losses.append(v.clone()),
                 **{**KW, "steps": 4})
    plain, weighted, drw = (torch.stack(losses)[:, i] for i in range(3))
    assert torch.allclose(drw[:2], plain[:2], atol=1e-6)  # steps 1-2: plain cross-entropy
    assert not torch.allclose(drw[:2], weighted[:2], atol=1e-3)
    assert (drw[2:] - plain[2:]).abs().min() > 1e-3  # from step 3 on: the weighted loss
    assert abs(weighted[0] - plain[0]) > 1e-3  # plain_steps=0: weighted from the first step


def test_unstacked_models_work_with_predict_and_features():
    jobs = _jobs()
    many = clf.fit_many(jobs, K, **{**KW, "steps": 2})
    x_probe = _set(20, seed=7)[0]
    for m in many:
        assert isinstance(m, clf.Classifier) and not m.training
        pred = clf.predict(m, x_probe, batch=7)
        assert pred.shape == (20,) and pred.dtype == torch.long and int(pred.max()) < K
        assert clf.features(m, x_probe).shape == (20, 4 * 8)


def test_budget_steps_scale_with_the_data_up_to_the_cap():
    assert clf.budget_steps([59, 5918], 128, 15) == 15 * math.ceil(2 * 5918 / 128) == 1395
    assert clf.budget_steps([59, 5918], 128, 15, cap=500) == 500
    assert clf.budget_steps([133, 13], 128, 15, cap=500) == 15 * math.ceil(2 * 133 / 128)


def test_fit_many_rejects_bad_precision():
    with pytest.raises(ValueError, match="precision"):
        clf.fit_many(_jobs(), K, precision="fp16", **KW)
