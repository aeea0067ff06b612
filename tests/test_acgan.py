"""ACGAN: both variants train, the variants' D losses differ by exactly L_cls(fake), λ_cls scales, WGAN-GP runs."""

import math

import pytest
import torch
import torch.nn.functional as F

from imbagan.methods.acgan import ACGAN, acgan_d_loss, acgan_g_loss
from tests.conftest import make_data, tiny_config
from tests.paper_defaults import assert_cli_and_app_apply


def _run(variant: str, adv_loss: str = "bce", steps: int = 3, channels: int = 1, **kw) -> tuple[ACGAN, list[dict]]:
    cfg = tiny_config(method="acgan", acgan_variant=variant, adv_loss=adv_loss, n_critic=2, **kw)
    m = ACGAN(cfg, make_data(num_classes=3, size=16, channels=channels))
    return m, [m.train_step() for _ in range(steps)]


def _logits(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    return (r(8), r(8), r(8, 3), r(8, 3), torch.randint(3, (8,), generator=g), torch.randint(3, (8,), generator=g))


@pytest.mark.parametrize("variant", ["original", "modified"])
@pytest.mark.parametrize("adv_loss", ["bce", "ls"])
def test_steps_finite_and_generate_shape_and_range(variant, adv_loss):
    m, outs = _run(variant, adv_loss)
    for out in outs:
        for k in ("d_loss", "g_loss", "aux_acc", "d_real", "d_fake", "g_class_acc"):
            assert math.isfinite(out[k].item()), (k, out[k])
        assert all(v.dim() == 0 and not v.requires_grad for v in out.values())
    img = m.generate(torch.tensor([0, 1, 2, 2]))
    assert img.shape == (4, 1, 16, 16)
    assert img.min() >= -1 and img.max() <= 1


def test_wgan_gp_runs_and_logs_gp():
    m, outs = _run("modified", "wgan-gp")
    assert m.d_steps == 2  # n_critic critic updates per G update
    for out in outs:
        assert {"gp", "w_dist"} <= set(out)
        assert math.isfinite(out["gp"].item()) and out["gp"].item() >= 0
    # The critic has no batch norm under WGAN-GP (a per-sample penalty needs per-sample scores).
    assert not any(isinstance(mod, torch.nn.BatchNorm2d) for mod in m.D.modules())


@pytest.mark.parametrize("adv_loss", ["bce", "ls", "wgan-gp"])
def test_original_minus_modified_is_the_fake_classification_loss(adv_loss):
    ar, af, cr, cf, yr, yf = _logits()
    orig, _ = acgan_d_loss(ar, af, cr, cf, yr, yf, "original", 1.0, adv_loss)
    mod, _ = acgan_d_loss(ar, af, cr, cf, yr, yf, "modified", 1.0, adv_loss)
    # By hand: -mean log softmax(fake logits)[target class].
    by_hand = -torch.log_softmax(cf, 1)[torch.arange(8), yf].mean()
    assert torch.allclose(orig - mod, by_hand, atol=1e-6)
    assert torch.allclose(orig - mod, F.cross_entropy(cf, yf), atol=1e-6)


def test_parts_and_lambda_scaling():
    ar, af, cr, cf, yr, yf = _logits(1)
    bce = -(F.logsigmoid(ar).mean() + F.logsigmoid(-af).mean())  # -log D(x) - log(1 - D(G(z)))
    cls_real = F.cross_entropy(cr, yr)
    for lam in (0.0, 0.1, 0.5):
        total, parts = acgan_d_loss(ar, af, cr, cf, yr, yf, "modified", lam, "bce")
        assert torch.allclose(parts["adv"], bce, atol=1e-6)
        assert torch.allclose(total, bce + lam * cls_real, atol=1e-6)  # CAGAN eq. (7)
    # The original variant has unit weights and ignores λ_cls (Odena et al.; CAGAN eq. (1)).
    a, _ = acgan_d_loss(ar, af, cr, cf, yr, yf, "original", 0.1, "bce")
    b, _ = acgan_d_loss(ar, af, cr, cf, yr, yf, "original", 0.7, "bce")
    assert torch.equal(a, b)
    # G: eq. (8) weights L_cls^g by λ_cls; the original weights it by 1.
    cls_fake = F.cross_entropy(cf, yf)
    ns = -F.logsigmoid(af).mean()  # non-saturating -log D(G(z))
    g_mod, _ = acgan_g_loss(af, cf, yf, "modified", 0.25, "bce")
    g_orig, _ = acgan_g_loss(af, cf, yf, "original", 0.25, "bce")
    assert torch.allclose(g_mod, ns + 0.25 * cls_fake, atol=1e-6)
    assert torch.allclose(g_orig, ns + cls_fake, atol=1e-6)


def test_lambda_reaches_the_training_step():
    """With λ_cls = 0 the modified D never sees the classifier: its class rows get zero gradient."""
    cfg = tiny_config(method="acgan", acgan_variant="modified", lambda_cls=0.0)
    torch.manual_seed(0)
    m = ACGAN(cfg, make_data(num_classes=3, size=16))
    torch.manual_seed(0)
    m0 = ACGAN(cfg, make_data(num_classes=3, size=16))
    m.train_step()
    # Adam turns a zero gradient into a zero update, so the class rows of D's head stay put.
    assert torch.equal(m.D.head.weight[1:], m0.D.head.weight[1:])
    assert not torch.equal(m.D.head.weight[0], m0.D.head.weight[0])


def test_cli_and_app_apply_the_paper_defaults():
    _, cfg, form = assert_cli_and_app_apply("acgan")
    # Odena et al.'s original unless asked otherwise, in both front ends.
    assert cfg.options["acgan_variant"] == form["acgan_variant"] == "original"


def test_the_modified_preset_is_a_valid_config():
    cfg = tiny_config(method="acgan", **ACGAN.presets["modified (CAGAN eqs. 7-10)"])
    assert cfg.options["acgan_variant"] == "modified" and cfg.options["lambda_cls"] == 0.1
