"""Numerical correctness of VVP and GDT: analytic answers, naive reference, finite differences."""

from __future__ import annotations

import pytest
import torch

from atlasgrn.probes import gdt, vvp
from atlasgrn.probes.reference import gdt_naive, vvp_naive
from tests.probe_models import LinearGeneModel, ProbeTransformer

CTX = list(range(1, 25))
SRC = [3, 5, 7, 11, 24]
TGT = [5, 2, 9, 11, 20, 1]
READINGS = ("uniform", "source")
# the naive reference costs one forward(+backward) per entry: compare on a smaller block
SRC_N = [3, 11, 24]
TGT_N = [5, 11, 20]
LEV_N = [0.0, 1.3, 4.5]


@pytest.fixture(scope="module")
def linear() -> LinearGeneModel:
    return LinearGeneModel(vocab_size=40, seed=1)


@pytest.fixture(scope="module")
def net64() -> ProbeTransformer:
    return ProbeTransformer(vocab_size=40, d_model=32, n_layers=2, n_heads=4, d_ff=64, seed=3)


@pytest.fixture(scope="module")
def net32() -> ProbeTransformer:
    return ProbeTransformer(vocab_size=40, d_model=32, n_layers=2, n_heads=4, d_ff=64, seed=4,
                            dtype=torch.float32)


def _w_block(model: LinearGeneModel, src: list[int], tgt: list[int]) -> torch.Tensor:
    """W[j, i] arranged [source, target]."""
    return model.W.detach()[tgt][:, src].T


# -- analytic: a linear model has Jacobian W ----------------------------------------------------
@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("uniform_mode", ["vjp", "jvp"])
def test_gdt_of_linear_model_is_w_ji_at_every_level(linear, reading, uniform_mode):
    feats = gdt(linear, CTX, SRC, TGT, reading=reading, uniform_mode=uniform_mode)
    assert feats.shape == (len(SRC), len(TGT), len(linear.config.values.gdt_levels))
    expected = _w_block(linear, SRC, TGT)[:, :, None].expand_as(feats)
    torch.testing.assert_close(feats, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("reading", READINGS)
def test_gdt_of_linear_model_with_profile_background_is_w_ji(linear, reading):
    profile = torch.linspace(0.2, 3.0, len(CTX), dtype=torch.float64)
    feats = gdt(linear, CTX, SRC, TGT, reading=reading, background=profile)
    expected = _w_block(linear, SRC, TGT)[:, :, None].expand_as(feats)
    torch.testing.assert_close(feats, expected, rtol=0, atol=1e-12)


def test_vvp_of_linear_model_is_dose_times_w_ji(linear):
    grid = torch.tensor([0.0, 0.5, 2.0, 5.5], dtype=torch.float64)
    feats = vvp(linear, CTX, SRC, TGT, grid=grid, background=0.25)
    expected = _w_block(linear, SRC, TGT)[:, :, None] * (grid - 0.25)[None, None, :]
    torch.testing.assert_close(feats, expected, rtol=0, atol=1e-12)


def test_vvp_of_linear_model_with_profile_background_uses_each_sources_own_background(linear):
    profile = torch.linspace(0.2, 3.0, len(CTX), dtype=torch.float64)
    grid = torch.tensor([1.0, 4.0], dtype=torch.float64)
    feats = vvp(linear, CTX, SRC, TGT, grid=grid, background=profile)
    b_src = profile[[CTX.index(s) for s in SRC]]
    expected = _w_block(linear, SRC, TGT)[:, :, None] * (grid[None, :] - b_src[:, None])[:, None, :]
    torch.testing.assert_close(feats, expected, rtol=0, atol=1e-12)


# -- exact AD against central differences of the model itself -----------------------------------
def _model_central_difference(model, reading: str, levels: list[float], b: float,
                              h: float = 1e-5) -> torch.Tensor:
    """d M_j / d v_i by central differences, written out independently of the probe code."""
    ids = torch.tensor(CTX)[None]
    pos = {g: k for k, g in enumerate(CTX)}
    out = torch.empty(len(SRC), len(TGT), len(levels), dtype=torch.float64)
    with torch.no_grad():
        for k, a in enumerate(levels):
            for s, i in enumerate(SRC):
                fill = a if reading == "uniform" else b
                cell = torch.full((len(CTX),), fill, dtype=torch.float64)
                cell[pos[i]] = a
                plus, minus = cell.clone(), cell.clone()
                plus[pos[i]] += h
                minus[pos[i]] -= h
                diff = (model(ids, plus[None]) - model(ids, minus[None]))[0] / (2 * h)
                out[s, :, k] = diff[[pos[j] for j in TGT]]
    return out


@pytest.mark.parametrize("reading", READINGS)
def test_exact_gdt_equals_central_differences_of_the_model_fp64(net64, reading):
    levels = [0.3, 1.7, 4.2]
    exact = gdt(net64, CTX, SRC, TGT, levels=levels, reading=reading, background=0.1)
    fd = _model_central_difference(net64, reading, levels, b=0.1)
    cross = torch.tensor([[i != j for j in TGT] for i in SRC])
    assert exact[cross].abs().min() > 0  # a nonzero cross-gene signal is being compared
    torch.testing.assert_close(exact, fd, rtol=1e-6, atol=1e-9)


# -- vectorised probes against the naive per-pair reference -------------------------------------
@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("uniform_mode", ["vjp", "jvp"])
def test_gdt_equals_naive_per_pair_reference_fp64(net64, reading, uniform_mode):
    fast = gdt(net64, CTX, SRC_N, TGT_N, LEV_N, reading=reading, uniform_mode=uniform_mode,
               max_batch=2)
    slow = gdt_naive(net64, CTX, SRC_N, TGT_N, LEV_N, reading=reading)
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("reading", READINGS)
def test_gdt_with_profile_background_equals_naive_reference(net64, reading):
    profile = torch.rand(len(CTX), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    fast = gdt(net64, CTX, SRC_N, TGT_N, LEV_N, reading=reading, background=profile * 3)
    slow = gdt_naive(net64, CTX, SRC_N, TGT_N, LEV_N, reading=reading, background=profile * 3)
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-13)


def test_vvp_equals_naive_per_pair_reference_fp64(net64):
    profile = torch.rand(len(CTX), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for background in (None, profile):
        fast = vvp(net64, CTX, SRC_N, TGT_N, LEV_N, background=background, max_batch=2)
        slow = vvp_naive(net64, CTX, SRC_N, TGT_N, LEV_N, background=background)
        torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("reading", READINGS)
def test_fp32_probes_equal_naive_reference_to_fp32_tolerance(net32, reading):
    fast = gdt(net32, CTX, SRC_N, TGT_N, LEV_N, reading=reading)
    slow = gdt_naive(net32, CTX, SRC_N, TGT_N, LEV_N, reading=reading)
    assert fast.dtype == torch.float32
    torch.testing.assert_close(fast.double(), slow, rtol=1e-4, atol=2e-7)
    torch.testing.assert_close(vvp(net32, CTX, SRC_N, TGT_N, LEV_N).double(),
                               vvp_naive(net32, CTX, SRC_N, TGT_N, LEV_N), rtol=1e-4, atol=2e-7)


# -- properties ---------------------------------------------------------------------------------
def test_vvp_at_a_grid_value_equal_to_the_background_is_zero(net32):
    b = net32.config.values.background
    feats = vvp(net32, CTX, SRC, TGT, grid=[b, 2.0], background=b)
    assert feats[:, :, 0].abs().max() <= 1e-6
    assert feats[:, :, 1].abs().max() > 1e-4


def test_features_are_finite_across_the_whole_value_range(net32):
    space = net32.config.values
    edges = [space.min, space.max, 0.5 * (space.min + space.max)]
    for background in (space.min, space.max):
        assert torch.isfinite(vvp(net32, CTX, SRC, TGT, grid=edges, background=background)).all()
        for reading in READINGS:
            feats = gdt(net32, CTX, SRC, TGT, levels=edges, reading=reading, background=background)
            assert torch.isfinite(feats).all()


def test_outputs_follow_the_given_source_and_target_order_with_repeats(net64):
    full = gdt(net64, CTX, SRC, TGT, reading="source")
    order_s, order_t = [4, 0, 0, 2], [5, 1, 1, 3]
    picked = gdt(net64, CTX, [SRC[k] for k in order_s], [TGT[k] for k in order_t],
                 reading="source")
    torch.testing.assert_close(picked, full[order_s][:, order_t], rtol=0, atol=1e-14)


def test_chunking_does_not_change_results_beyond_round_off(net64):
    one = vvp(net64, CTX, SRC, TGT, LEV_N, max_batch=1)
    many = vvp(net64, CTX, SRC, TGT, LEV_N, memory_budget_bytes=1 << 30)
    torch.testing.assert_close(one, many, rtol=1e-12, atol=1e-14)
    g1 = gdt(net64, CTX, SRC, TGT, LEV_N, reading="uniform", max_batch=1)
    g2 = gdt(net64, CTX, SRC, TGT, LEV_N, reading="uniform", max_batch=64)
    torch.testing.assert_close(g1, g2, rtol=1e-12, atol=1e-14)


def test_two_runs_are_bit_identical_on_cpu(net32):
    for fn in (lambda: vvp(net32, CTX, SRC, TGT, max_batch=8),
               lambda: gdt(net32, CTX, SRC, TGT, reading="uniform"),
               lambda: gdt(net32, CTX, SRC, TGT, reading="source", max_batch=8),
               lambda: gdt(net32, CTX, SRC, TGT, reading="source", method="fd")):
        assert torch.equal(fn(), fn())


# -- the finite-difference option ---------------------------------------------------------------
@pytest.mark.parametrize("reading", READINGS)
def test_fd_matches_exact_within_1e_6_relative_in_fp64(net64, reading):
    exact = gdt(net64, CTX, SRC, TGT, reading=reading)
    fd = gdt(net64, CTX, SRC, TGT, reading=reading, method="fd")
    err = (fd - exact).norm() / exact.norm()
    assert err < 1e-6


@pytest.mark.parametrize("reading", READINGS)
def test_fd_matches_exact_cross_gene_gradients_within_3_percent_in_fp32(net32, reading):
    """The stated fp32 FD tolerance: relative L2 error of the cross-gene (i != j) entries < 3%."""
    exact = gdt(net32, CTX, SRC, TGT, reading=reading).double()
    fd = gdt(net32, CTX, SRC, TGT, reading=reading, method="fd").double()
    cross = torch.tensor([[i != j for j in TGT] for i in SRC])
    err = (fd - exact)[cross].norm() / exact[cross].norm()
    assert err < 3e-2


def test_fd_with_a_bad_step_is_measurably_worse(net32):
    """Guards the default step: a 100x smaller step loses cross-gene signal in fp32 round-off."""
    exact = gdt(net32, CTX, SRC, TGT, reading="source").double()
    cross = torch.tensor([[i != j for j in TGT] for i in SRC])

    def err(h):
        fd = gdt(net32, CTX, SRC, TGT, reading="source", method="fd", fd_step=h).double()
        return float((fd - exact)[cross].norm() / exact[cross].norm())

    assert err(None) < err(6e-4)


# -- precision: probes run fp32 unless bf16 is asked for (models/precision.py) ---------------
def test_model_autocast_is_the_models_default_but_yields_to_full_precision():
    from atlasgrn.models.precision import full_precision, wants_model_autocast

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert wants_model_autocast(cuda, True)
    assert not wants_model_autocast(cuda, False)
    assert not wants_model_autocast(cpu, True)
    with full_precision():
        assert not wants_model_autocast(cuda, True)
    assert wants_model_autocast(cuda, True)  # restored on exit


@pytest.mark.parametrize("probe", ["vvp", "gdt"])
def test_probe_calls_run_inside_full_precision(linear, probe):
    """An H100 run showed bf16 VVP features only 0.71-correlated with fp32: probes must opt out."""
    from atlasgrn.models.precision import wants_model_autocast

    seen: list[bool] = []
    original = linear.forward

    def recording_forward(ids, values):
        seen.append(wants_model_autocast(torch.device("cuda"), True))
        return original(ids, values)

    linear.forward = recording_forward  # instance attribute: nn.Module.__call__ dispatches here
    try:
        (vvp if probe == "vvp" else gdt)(linear, CTX, SRC, TGT)
    finally:
        del linear.forward
    assert seen and not any(seen)
