"""DiffAugment and the LeCam regulariser (issue 16 §3): the transforms, the penalty by hand, and every
method with both options on (finite, wired into D's and G's updates, resumable) and off (unchanged)."""

import math

import pytest
import torch

from imbagan import augment, losses, runs, train
from imbagan.config import DIFFAUGMENT_POLICIES, TrainConfig
from imbagan.methods import METHODS
from imbagan.train import load_checkpoint
from tests.conftest import make_data, tiny_config

POLICY = "color,translation,cutout"


def _images(n=6, c=3, size=16, seed=0, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, c, size, size, generator=g) * 2 - 1).requires_grad_(requires_grad)


# --- DiffAugment -----------------------------------------------------------------------------
@pytest.mark.parametrize("policy", [p for p in DIFFAUGMENT_POLICIES if p != "none"])
def test_augment_keeps_shape_changes_values_and_repeats_with_the_generator_state(policy):
    x = _images()
    out = augment.diff_augment(x, policy, torch.Generator().manual_seed(3))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert not torch.equal(out, x)
    again = augment.diff_augment(x, policy, torch.Generator().manual_seed(3))
    assert torch.equal(out, again)  # the same generator state, the same transform
    other = augment.diff_augment(x, policy, torch.Generator().manual_seed(4))
    assert not torch.equal(out, other)


def test_augment_off_is_the_identity_and_draws_nothing():
    x = _images()
    gen = torch.Generator().manual_seed(5)
    before = gen.get_state()
    assert augment.make("none", gen)(x) is x
    assert augment.diff_augment(x, "none", gen) is x
    assert torch.equal(gen.get_state(), before)
    with pytest.raises(ValueError, match="Unknown DiffAugment transform colour"):
        augment.make("colour,cutout", gen)


@pytest.mark.parametrize("policy", [p for p in DIFFAUGMENT_POLICIES if p != "none"])
def test_gradients_flow_through_the_augmentation_to_its_input(policy):
    x = _images(requires_grad=True)
    w = _images(seed=1)
    (augment.diff_augment(x, policy, torch.Generator().manual_seed(0)) * w).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0
    # A pixel that translation or cutout dropped gets no gradient; one that stays gets some.
    assert (x.grad.abs().flatten(1).sum(1) > 0).all()


def test_translation_is_a_whole_pixel_shift_with_zero_fill_of_at_most_an_eighth():
    x = _images(n=8, c=2, size=16) + 2  # no zeros in the image, so the fill is recognisable
    out = augment.translation(x, torch.Generator().manual_seed(2))
    s = 2  # 16 / 8
    shifts = set()
    for i in range(x.shape[0]):
        found = None
        for dy in range(-s, s + 1):
            for dx in range(-s, s + 1):
                ref = torch.zeros_like(x[i])
                src = x[i][:, max(0, -dy):16 - max(0, dy), max(0, -dx):16 - max(0, dx)]
                ref[:, max(0, dy):16 - max(0, -dy), max(0, dx):16 - max(0, -dx)] = src
                if torch.equal(out[i], ref):
                    found = (dy, dx)
        assert found is not None, f"image {i} is not a shifted copy of its input"
        shifts.add(found)
    assert len(shifts) > 1  # a fresh shift per image


def test_cutout_zeroes_one_square_of_at_most_half_the_side():
    x = torch.ones(16, 1, 16, 16)
    out = augment.cutout(x, torch.Generator().manual_seed(1))
    for img in out[:, 0]:
        zero = img == 0
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        assert 1 <= len(rows) <= 8 and 1 <= len(cols) <= 8
        # the zeros fill exactly the rectangle they span
        assert zero.sum() == len(rows) * len(cols)
        assert zero[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()
        assert ((img == 0) | (img == 1)).all()


def test_colour_on_grey_images_is_a_contrast_of_half_to_one_and_a_half_plus_a_shift():
    x = _images(n=32, c=1)
    out = augment.color(x, torch.Generator().manual_seed(0))
    # brightness then contrast around the mean, saturation a no-op on one channel: out = c x + b
    slope = (out[:, 0, 0, 1] - out[:, 0, 0, 0]) / (x[:, 0, 0, 1] - x[:, 0, 0, 0])
    assert torch.allclose(out, slope[:, None, None, None] * x + (out - slope[:, None, None, None] * x)[:, :, :1, :1],
                          atol=1e-5)
    assert (slope >= 0.5 - 1e-5).all() and (slope <= 1.5 + 1e-5).all()
    assert slope.std() > 0.1  # one factor per image


# --- LeCam -------------------------------------------------------------------------------------
def test_lecam_against_a_hand_computed_value():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    # ((1 + .5)² + (3 + .5)²) / 2 + ((-1 - 2)² + (0 - 2)²) / 2 = 7.25 + 6.5
    got = losses.lecam(real, fake, alpha_real=torch.tensor(2.0), alpha_fake=torch.tensor(-0.5))
    assert got.item() == pytest.approx(13.75)


def test_lecam_moving_averages_by_hand():
    ema = losses.LeCamEMA()
    assert ema.decay == 0.99
    ema.update(torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0]))
    # zero-debiased: after one update the averages are that batch's means
    assert ema.alpha_real.item() == pytest.approx(2.0) and ema.alpha_fake.item() == pytest.approx(-0.5)
    ema.update(torch.tensor([4.0]), torch.tensor([0.5]))
    w = 1 - 0.99 ** 2
    assert ema.alpha_real.item() == pytest.approx((0.99 * 0.01 * 2.0 + 0.01 * 4.0) / w, rel=1e-5)
    assert ema.alpha_fake.item() == pytest.approx((0.99 * 0.01 * -0.5 + 0.01 * 0.5) / w, rel=1e-5)
    # penalty(): update with this batch first, then R_LC against the updated averages
    real, fake = torch.tensor([2.0, 2.0]), torch.tensor([1.0])
    a_r = (0.99 ** 2 * 0.01 * 2.0 + 0.99 * 0.01 * 4.0 + 0.01 * 2.0) / (1 - 0.99 ** 3)
    a_f = (0.99 ** 2 * 0.01 * -0.5 + 0.99 * 0.01 * 0.5 + 0.01 * 1.0) / (1 - 0.99 ** 3)
    assert ema.penalty(real, fake).item() == pytest.approx((2.0 - a_f) ** 2 + (1.0 - a_r) ** 2, rel=1e-5)
    # the averages survive a state round trip
    state = ema.state_dict()
    back = losses.LeCamEMA()
    back.load_state_dict(state)
    assert back.alpha_real.item() == ema.alpha_real.item()


def test_config_refuses_bad_values():
    with pytest.raises(ValueError, match="lecam_weight cannot be negative"):
        TrainConfig(lecam_weight=-0.1)
    with pytest.raises(ValueError, match="diffaugment must be one of"):
        TrainConfig(diffaugment="flip")


# --- every method ------------------------------------------------------------------------------
# Method variants whose D losses differ in where the options enter.
CASES = [("gan", {}), ("bagan", {}), ("acgan", {}), ("acgan", {"adv_loss": "wgan-gp"}), ("bagan_gp", {}),
         ("bagan_gp", {"bagan_gp_variant": "wgan"}), ("aggan", {}), ("cagan", {}), ("cagan", {"cagan_mix_start": 0.0}),
         ("cagan", {"adv_loss": "wgan-gp", "cagan_reg": "wgan-gp"})]
IDS = [name + "".join(f"-{v}" for v in kw.values()) for name, kw in CASES]


def test_every_method_is_covered_and_lists_both_fields():
    assert {name for name, _ in CASES} == set(METHODS)
    for name, cls in METHODS.items():
        assert {"diffaugment", "lecam_weight"} <= set(cls.fields), name


def _build(name, kw, steps=3, **options):
    torch.manual_seed(0)  # network initialisation, as train.py does
    m = METHODS[name](tiny_config(method=name, **kw, **options), make_data(num_classes=3, size=16))
    for _ in range(m.pretrain_steps):
        m.pretrain_step()
    m.finish_pretrain()
    outs = [m.train_step() for _ in range(steps)]
    return m, outs


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_both_options_on_give_finite_losses_and_gradients_and_the_recorded_losses(name, kw, request):
    m, outs = _build(name, kw, diffaugment=POLICY, lecam_weight=0.3)
    got = (outs[-1]["d_loss"].item(), outs[-1]["g_loss"].item())
    assert got == pytest.approx(BOTH_ON[request.node.callspec.id], rel=1e-5, abs=1e-6), got  # BOTH_ON: below
    for out in outs:
        assert {"d_loss", "g_loss", "lecam"} <= set(out), sorted(out)
        for k, v in out.items():
            assert math.isfinite(v.item()), f"{name}.{k} = {v.item()}"
    g_grads = [p.grad for p in m.G.parameters() if p.grad is not None]
    d_grads = [p.grad for p in m.D.parameters() if p.grad is not None]
    assert g_grads and d_grads
    assert all(torch.isfinite(g).all() for g in g_grads + d_grads)
    assert "lecam" in m.state_attrs and torch.isfinite(torch.stack(
        [b for b in m.lecam.buffers()])).all()


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_every_image_d_trains_on_is_augmented_and_g_gradient_goes_through_it(name, kw):
    torch.manual_seed(0)
    m = METHODS[name](tiny_config(method=name, **kw, diffaugment=POLICY), make_data(num_classes=3, size=16))
    for _ in range(m.pretrain_steps):
        m.pretrain_step()
    m.finish_pretrain()
    mark = 0.0  # exact under any interpolation between two marked batches
    calls = []

    def spy(x):  # a recognisable "augmentation" that keeps the graph to its input
        calls.append(x.requires_grad)
        return torch.full_like(x, mark) + 0 * x

    m.augment = spy
    seen = []
    hooks = [d.register_forward_pre_hook(lambda mod, args: seen.append(bool((args[0] == mark).all())))
             for d in (m.D if isinstance(m.D, torch.nn.ModuleList) else [m.D])]
    m.train_step()
    for h in hooks:
        h.remove()
    assert True in calls and False in calls  # reals and detached fakes for D, fakes with a graph for G
    if name == "aggan":
        # D's update (real, fake) and the three offspring updates; the fitness measures on plain images.
        assert sum(seen) >= 5
    else:
        assert seen and all(seen), f"{name}: D saw {seen.count(False)} un-augmented batches of {len(seen)}"


# Losses after 3 steps of each case with both options off, recorded on main before the options existed
# (tiny_config, make_data(3 classes, 16x16), torch.manual_seed(0), IMBAGAN_THREADS=1). Should a method's
# maths change on purpose, re-record them; the options must never change them.
BEFORE = {
    "gan": (1.3685805797576904, 0.6884113550186157),
    "bagan": (1.3859267234802246, 1.3862318992614746),  # D: a full real batch + ceil(batch / n) fakes (official)
    "acgan": (3.61484694480896, 1.7952358722686768),
    "acgan-wgan-gp": (12.1104736328125, 1.0983597040176392),
    "bagan_gp": (11.810633659362793, 0.7246262431144714),
    "bagan_gp-wgan": (9.926119804382324, -0.0008176041301339865),
    "aggan": (3.5910797119140625, 0.4021475315093994),
    "cagan": (2.1694817543029785, 0.67154860496521),
    "cagan-0.0": (2.0181119441986084, 0.6677424907684326),
    "cagan-wgan-gp-wgan-gp": (1.1835601329803467, 0.012195109389722347),
}


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_both_options_off_change_nothing(name, kw, monkeypatch, request):
    def never(*a, **k):
        raise AssertionError("an option that is off was used")

    monkeypatch.setattr(augment, "diff_augment", never)
    monkeypatch.setattr(losses, "LeCamEMA", never)
    m, outs = _build(name, kw)
    m2, outs2 = _build(name, kw, diffaugment="none", lecam_weight=0.0)
    assert m.lecam is None and "lecam" not in m.state_attrs
    got = (outs[-1]["d_loss"].item(), outs[-1]["g_loss"].item())
    assert got == (outs2[-1]["d_loss"].item(), outs2[-1]["g_loss"].item())
    want = BEFORE[request.node.callspec.id]
    # The same machine gives the same bits; the tolerance only absorbs another CPU's kernels (a consumed
    # random number or an added term moves these losses by far more).
    assert got == pytest.approx(want, rel=1e-5, abs=1e-6), got


# The same losses with both options on (DiffAugment's paper policy, LeCam at 0.3), recorded on main before
# DiffAugment's entry into D moved into the base class (Method.run_D / seen_by_D): where it enters, and the order
# of its random draws, must not change a method's training.
BOTH_ON = {
    "gan": (1.3901655673980713, 0.7050609588623047),
    "bagan": (1.386403203010559, 1.3860752582550049),
    "acgan": (3.7213521003723145, 1.792980432510376),
    "acgan-wgan-gp": (12.120308876037598, 1.099609613418579),
    "bagan_gp": (11.71550178527832, 0.7223155498504639),
    "bagan_gp-wgan": (9.898820877075195, -0.0009995432337746024),
    "aggan": (3.5944669246673584, 1.8354179859161377),
    "cagan": (2.0876808166503906, 0.6583181023597717),
    "cagan-0.0": (1.9502108097076416, 0.6806723475456238),
    "cagan-wgan-gp-wgan-gp": (0.8529551029205322, -0.05323980748653412),
}


def test_diffaugment_enters_d_only_through_the_base_class():
    """A method file shows its paper's losses; the augmentation of D's input is the base class's (run_D,
    seen_by_D), so no method can forget it on one of its D calls or draw it in another order."""
    import inspect

    for name, cls in METHODS.items():
        src = inspect.getsource(inspect.getmodule(cls))
        assert "self.augment" not in src and "augment." not in src, f"{name} applies DiffAugment itself"


def _metrics(d):
    return {r["step"]: {k: v for k, v in r.items() if k not in ("time", "steps_per_s", "img_per_s")}
            for r in runs.read_metrics(d)}


@pytest.mark.parametrize("method", ["gan", "cagan"])
def test_resume_with_both_options_on_equals_an_uninterrupted_run(tmp_path, method):
    cfg = tiny_config(method=method, steps=8, tick_every=2, checkpoint_every=4, imbalance="step", ir=4.0,
                      diffaugment=POLICY, lecam_weight=0.3)
    whole = runs.create(cfg, tmp_path / "a")
    train.train(whole)
    split = runs.create(cfg, tmp_path / "b")
    ck = split / "checkpoint.pt"
    assert train.train(split, should_stop=lambda: ck.exists()) == "stopped"
    assert "lecam" in load_checkpoint(ck)["method"]
    assert train.train(split, resume=True) == "done"
    a, b = _metrics(whole), _metrics(split)
    later = [s for s in a if s > 4]
    assert later and all(a[s] == b[s] for s in later)
    assert all("lecam" in a[s] for s in later)
