"""The self-supervised peers of the benchmark (benchmarks/peers/): their maths, and a smoke fit."""

import copy
import inspect

import numpy as np
import pytest
import torch

import peers
from c2s_denoise.engine import GDSMLoss, GDSMStep
from c2s_denoise.metrics import psnr
from c2s_denoise.physics.phantom import brain_phantom
from peers import (
    PEERS,
    BlindSpotLoss,
    Neighbor2NeighborLoss,
    Noise2CleanLoss,
    Noise2SelfLoss,
    Noise2VoidLoss,
    Noisier2NoiseLoss,
    R2RLoss,
    UNetWithoutSkip,
    blind_spot_mask,
    denoise_peer,
    make_peer,
    make_peer_network,
    neighbor_pair_indices,
    neighbor_subsample,
    train_peer,
)


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _gaussian_scene(s: float, sigma: float, n: int = 400_000, seed: int = 0):
    """Clean ``x ~ N(0, s^2)`` and ``y = x + sigma n`` as (1, 1, n/500, 500) float64 tensors."""
    g = _generator(seed)
    x = s * torch.randn((1, 1, n // 500, 500), generator=g, dtype=torch.float64)
    return x, x + sigma * torch.randn(x.shape, generator=g, dtype=torch.float64)


def _slope(target: torch.Tensor, regressor: torch.Tensor) -> float:
    """Least-squares slope of ``target ~ b * regressor`` (zero-mean variables)."""
    return float((target * regressor).sum() / regressor.square().sum())


# ------------------------------------------------------------------------------------------- R2R
def test_r2r_recorruption_statistics_and_conditional_mean():
    s, sigma, alpha = 0.5, 0.2, 0.5
    x, y = _gaussian_scene(s, sigma)
    y_hat, y_bar = R2RLoss(alpha=alpha).pair(y, torch.tensor([sigma], dtype=torch.float64), _generator(1))
    # y_hat - y = alpha sigma z and y_bar - y = -sigma z / alpha
    assert float((y_hat - y).std()) == pytest.approx(alpha * sigma, rel=0.01)
    assert float((y_bar - y).std()) == pytest.approx(sigma / alpha, rel=0.01)
    torch.testing.assert_close((y_hat - y) / alpha, -(y_bar - y) * alpha)
    # the noises of y_hat and y_bar are uncorrelated (sigma^2 - sigma^2 = 0), hence independent
    noise_hat, noise_bar = y_hat - x, y_bar - x
    correlation = float((noise_hat * noise_bar).mean() / (noise_hat.std() * noise_bar.std()))
    assert abs(correlation) < 0.01
    # so E[y_bar | y_hat] = E[x | y_hat]: for a Gaussian prior both regressions have the MMSE slope
    mmse_slope = s**2 / (s**2 + sigma**2 * (1 + alpha**2))
    assert _slope(y_bar, y_hat) == pytest.approx(mmse_slope, abs=0.01)
    assert _slope(x, y_hat) == pytest.approx(mmse_slope, abs=0.01)


def test_r2r_inference_averages_recorrupted_inputs():
    y = torch.randn(2, 1, 8, 8, generator=_generator(0))
    sigma = torch.tensor([0.1, 0.2])
    identity = lambda x, s: x  # noqa: E731
    at_y = R2RLoss(n_samples=0).estimate(identity, y, sigma, _generator(1))
    torch.testing.assert_close(at_y, y)
    averaged = R2RLoss(alpha=0.5, n_samples=4).estimate(identity, y, sigma, _generator(1))
    g = _generator(1)
    expected = sum(y + 0.5 * sigma.view(-1, 1, 1, 1) * torch.randn(y.shape, generator=g) for _ in range(4)) / 4
    torch.testing.assert_close(averaged, expected)


# ------------------------------------------------------------------------------------------- Noisier2Noise
@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_noisier2noise_target_and_inference_on_gaussian_closed_form(alpha):
    s, sigma = 0.5, 0.2
    x, y = _gaussian_scene(s, sigma)
    loss = Noisier2NoiseLoss(alpha=alpha)
    z, target = loss.pair(y, torch.tensor([sigma], dtype=torch.float64), _generator(1))
    assert target is y
    assert float((z - y).std()) == pytest.approx(alpha * sigma, rel=0.01)
    # the least-squares f(z) = b z fitted on (z, y) is E[y | z]
    b = _slope(y, z)
    assert b == pytest.approx((s**2 + sigma**2) / (s**2 + sigma**2 * (1 + alpha**2)), abs=0.01)
    # and the correction ((1 + a^2) f(z) - z) / a^2 is E[x | z]: a linear map with the MMSE slope
    estimate = loss.combine(b * z, z)
    mmse_slope = s**2 / (s**2 + sigma**2 * (1 + alpha**2))
    assert _slope(estimate, z) == pytest.approx(mmse_slope, abs=0.01)
    assert _slope(x, z) == pytest.approx(mmse_slope, abs=0.01)
    if alpha == 1.0:
        torch.testing.assert_close(estimate, 2 * b * z - z)


@pytest.mark.parametrize("alpha", [1.0, 0.7])
def test_noisier2noise_is_gdsm_with_fixed_tau_and_zero_target(alpha):
    """GDSM loss at tau = alpha sigma, sigma_tg = 0, with h = the Noisier2Noise estimate == N2N loss."""
    g = _generator(0)
    y, f = torch.randn(3, 1, 6, 6, generator=g), torch.randn(3, 1, 6, 6, generator=g)
    sigma = torch.tensor([0.1, 0.2, 0.3])
    loss = Noisier2NoiseLoss(alpha=alpha)
    z, _ = loss.pair(y, sigma, g)
    gdsm = GDSMLoss()(loss.combine(f, z), z, y, alpha * sigma, sigma, torch.zeros(3))
    torch.testing.assert_close(gdsm, (f - y).square().mean())


# ------------------------------------------------------------------------------------------- blind spot
@pytest.mark.parametrize("shared", [True, False])
def test_blind_spot_mask_has_one_pixel_per_cell(shared):
    mask = blind_spot_mask((3, 16, 24), 4, shared_offset=shared, generator=_generator(0))
    assert mask.shape == (3, 1, 16, 24) and mask.dtype == torch.bool
    cells = mask[:, 0].reshape(3, 4, 4, 6, 4).sum(dim=(2, 4))
    assert (cells == 1).all()
    positions = mask[:, 0].reshape(3, 4, 4, 6, 4).permute(0, 1, 3, 2, 4).reshape(3, 24, 16).float().argmax(-1)
    same_position_everywhere = bool((positions == positions[:, :1]).all())
    assert same_position_everywhere == shared


@pytest.mark.parametrize("loss", [Noise2SelfLoss(), Noise2VoidLoss(spacing=4)], ids=["interpolate", "neighbour"])
def test_masked_values_never_reach_the_input(loss):
    y = torch.randn(2, 1, 20, 20, generator=_generator(0))
    masked_input, mask = loss.mask(y, _generator(1))
    assert 0 < int(mask.sum()) < mask.numel() // 10
    # the unmasked pixels are untouched, the masked ones replaced
    torch.testing.assert_close(masked_input[~mask.expand_as(y)], y[~mask.expand_as(y)])
    assert not torch.isclose(masked_input[mask.expand_as(y)], y[mask.expand_as(y)]).all()
    # changing the original values at the masked positions does not change the masked input
    changed = torch.where(mask, y + 100.0 * torch.randn(y.shape, generator=_generator(2)), y)
    again, mask_again = loss.mask(changed, _generator(1))
    assert torch.equal(mask, mask_again)
    torch.testing.assert_close(again, masked_input)


def test_interpolation_is_the_donut_mean_and_neighbour_stays_in_its_window():
    y = torch.arange(400, dtype=torch.float64).reshape(1, 1, 20, 20) ** 1.5  # distinct values
    interpolated, mask = Noise2SelfLoss().mask(y, _generator(3))
    interior = [(r, c) for r, c in mask[0, 0].nonzero().tolist() if 1 <= r < 19 and 1 <= c < 19]
    row, col = interior[len(interior) // 2]
    window = y[0, 0, row - 1 : row + 2, col - 1 : col + 2]
    weights = torch.tensor([[0.5, 1, 0.5], [1, 0, 1], [0.5, 1, 0.5]], dtype=torch.float64)
    assert float(interpolated[0, 0, row, col]) == pytest.approx(float((weights * window).sum() / weights.sum()))

    loss = BlindSpotLoss(spacing=4, shared_offset=False, replacement="neighbour", radius=2)
    replaced, mask = loss.mask(y, _generator(4))
    values = y[0, 0]
    for row, col in mask[0, 0].nonzero().tolist():
        source = (values == replaced[0, 0, row, col]).nonzero()
        assert len(source) == 1
        source_row, source_col = source[0].tolist()
        assert 0 < max(abs(source_row - row), abs(source_col - col)) <= 2
        assert not bool(mask[0, 0, source_row, source_col])


@pytest.mark.parametrize("loss", [Noise2SelfLoss(), Noise2VoidLoss(spacing=4)], ids=["interpolate", "neighbour"])
def test_blind_spot_loss_only_counts_masked_pixels(loss):
    y = torch.randn(2, 1, 16, 16, generator=_generator(0))
    sigma = torch.tensor([0.1, 0.1])
    _, mask = loss.mask(y, _generator(5))
    base = lambda x, s: 0.5 * x  # noqa: E731
    spoiled = lambda x, s: 0.5 * x + 1e3 * (~mask).to(x.dtype)  # noqa: E731
    value = loss(base, y, sigma, _generator(5), 1.0)
    torch.testing.assert_close(loss(spoiled, y, sigma, _generator(5), 1.0), value)
    masked_input, _ = loss.mask(y, _generator(5))
    expected = (0.5 * masked_input - y)[mask.expand_as(y)].square().mean()
    torch.testing.assert_close(value, expected)


def test_noise2self_j_invariant_inference_never_sees_the_centre():
    y = torch.randn(1, 1, 12, 12, generator=_generator(0))
    loss = Noise2SelfLoss()
    identity = lambda x, s: x  # noqa: E731
    estimate = loss.estimate(identity, y, torch.tensor([0.1]), _generator(0))
    # identity network + J-invariant reconstruction = interpolation of every pixel from its neighbours
    changed = y.clone()
    changed[0, 0, 5, 7] += 10.0
    estimate_changed = loss.estimate(identity, changed, torch.tensor([0.1]), _generator(0))
    assert float(estimate_changed[0, 0, 5, 7]) == pytest.approx(float(estimate[0, 0, 5, 7]))
    assert not torch.allclose(estimate_changed[0, 0, 4:7, 6:9], estimate[0, 0, 4:7, 6:9])


# ------------------------------------------------------------------------------------------- Neighbor2Neighbor
def test_neighbor_subsampler_picks_two_adjacent_pixels_of_each_cell():
    batch, height, width = 4, 10, 14
    first, second = neighbor_pair_indices((batch, height // 2, width // 2), _generator(0))
    code = torch.arange(height * width, dtype=torch.float32).reshape(1, 1, height, width).expand(batch, 2, -1, -1)
    g1, g2 = neighbor_subsample(code, first), neighbor_subsample(code, second)
    assert g1.shape == g2.shape == (batch, 2, height // 2, width // 2)
    rows1, cols1 = g1.long() // width, g1.long() % width
    rows2, cols2 = g2.long() // width, g2.long() % width
    cell_rows = torch.arange(height // 2).view(1, 1, -1, 1)
    cell_cols = torch.arange(width // 2).view(1, 1, 1, -1)
    for rows, cols in ((rows1, cols1), (rows2, cols2)):
        assert torch.equal(rows // 2, cell_rows.expand_as(rows)) and torch.equal(cols // 2, cell_cols.expand_as(cols))
    assert ((rows1 - rows2).abs() + (cols1 - cols2).abs() == 1).all()  # different, adjacent, not diagonal
    pairs = set(zip(first.flatten().tolist(), second.flatten().tolist()))
    assert pairs == {(0, 1), (0, 2), (1, 0), (1, 3), (2, 0), (2, 3), (3, 1), (3, 2)}
    odd = neighbor_subsample(torch.zeros(1, 1, 7, 9), first[:1, :3, :4])
    assert odd.shape == (1, 1, 3, 4)


def test_neighbor2neighbor_loss_of_the_identity_is_the_neighbour_difference():
    y = torch.randn(2, 1, 8, 8, generator=_generator(0))
    sigma = torch.tensor([0.1, 0.1])
    value = Neighbor2NeighborLoss(gamma=2.0, ramp=False)(lambda x, s: x, y, sigma, _generator(1), 1.0)
    first, second = neighbor_pair_indices((2, 4, 4), _generator(1))
    expected = (neighbor_subsample(y, first) - neighbor_subsample(y, second)).square().mean()
    torch.testing.assert_close(value, expected)  # the regulariser is 0 for the identity


# ------------------------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def tiny_data():
    clean = np.stack([brain_phantom((64, 64), seed=seed) for seed in range(6)])
    noisy = clean + 0.1 * np.random.default_rng(0).standard_normal(clean.shape)
    return clean, noisy


def test_registry_and_argument_errors(tiny_data):
    clean, noisy = tiny_data
    assert set(PEERS) == {"noise2self", "noise2void", "r2r", "neighbor2neighbor", "noisier2noise", "noise2clean"}
    assert isinstance(make_peer("r2r", alpha=0.3), R2RLoss)
    with pytest.raises(ValueError, match="unknown peer"):
        make_peer("noise2nothing")
    with pytest.raises(ValueError, match="clean"):
        train_peer(Noise2CleanLoss(), make_peer_network(width=4, depth=1), noisy, 0.1, max_iter=1)
    with pytest.raises(ValueError, match="grid"):
        BlindSpotLoss(shared_offset=False, j_invariant_inference=True)


def test_a_peer_is_the_engine_step_loss_itself(tiny_data, monkeypatch):
    # the peers' __call__ has the engine's StepLoss signature, the one of GDSMStep.__call__
    step_parameters = inspect.signature(GDSMStep.__call__).parameters.values()
    for cls in PEERS.values():
        parameters = inspect.signature(cls.__call__).parameters.values()
        assert [(p.kind, p.default) for p in parameters] == [(p.kind, p.default) for p in step_parameters]
    # and train_peer hands the peer itself to train_network, as the loss_step
    _, noisy = tiny_data
    seen = {}

    def fake_train_network(network, images, noise_levels, **kwargs):
        seen.update(kwargs, images=images)
        return "trained"

    monkeypatch.setattr(peers.training, "train_network", fake_train_network)
    loss = Neighbor2NeighborLoss()
    assert train_peer(loss, make_peer_network(width=4, depth=1), noisy, 0.1, max_iter=3) == "trained"
    assert seen["loss_step"] is loss and not seen["config"].divergence_guard and seen["config"].max_iter == 3
    loss = Noise2CleanLoss()
    train_peer(loss, make_peer_network(width=4, depth=1), noisy, 0.1, clean=2 * noisy, max_iter=3)
    assert seen["loss_step"] is loss and seen["config"].divergence_guard
    torch.testing.assert_close(seen["images"][0], torch.from_numpy(np.stack([noisy[0], 2 * noisy[0]])).float())


def test_peers_that_collapse_at_c2s_learning_rate_train_at_their_own(tiny_data, monkeypatch):
    # issue 20: at C2S's peak 5e-3, 8000-step Noise2Void and Neighbor2Neighbor fits collapse to
    # c_skip * y (benchmarks/results/peer_collapse.md); train_peer gives them 2.5e-3 unless told
    _, noisy = tiny_data
    seen = {}

    def fake_train_network(network, images, noise_levels, **kwargs):
        seen.update(kwargs)

    monkeypatch.setattr(peers.training, "train_network", fake_train_network)
    expected = {"noise2void": 2.5e-3, "neighbor2neighbor": 2.5e-3, "r2r": 5e-3, "noise2self": 5e-3}
    for name, learning_rate in expected.items():
        loss = make_peer(name)
        train_peer(loss, make_peer_network(width=4, depth=1, skip=loss.identity_skip), noisy, 0.1, max_iter=3)
        assert seen["config"].learning_rate == pytest.approx(learning_rate), name
    train_peer(Noise2VoidLoss(), make_peer_network(width=4, depth=1), noisy, 0.1, max_iter=3, learning_rate=1e-3)
    assert seen["config"].learning_rate == pytest.approx(1e-3)


def test_training_is_deterministic_under_a_seed(tiny_data):
    _, noisy = tiny_data
    curves = []
    for _ in range(2):
        network = make_peer_network(width=4, depth=2, seed=3)
        result = train_peer(R2RLoss(), network, noisy, 0.1, max_iter=4, batch_size=2, patch_size=16, seed=7)
        curves.append(result.loss_curve)
    assert curves[0] == curves[1]


# Neighbor2Neighbor's total loss is not comparable across networks near the identity (its
# regulariser vanishes there), so its smoke test scores the reconstruction term (gamma = 0).
SMOKE = {
    "noise2self": (Noise2SelfLoss(), Noise2SelfLoss()),
    "noise2void": (Noise2VoidLoss(), Noise2VoidLoss()),
    "r2r": (R2RLoss(), R2RLoss()),
    "neighbor2neighbor": (Neighbor2NeighborLoss(), Neighbor2NeighborLoss(gamma=0.0)),
    "noisier2noise": (Noisier2NoiseLoss(), Noisier2NoiseLoss()),
    "noise2clean": (Noise2CleanLoss(), Noise2CleanLoss()),
}


@pytest.mark.parametrize("name", list(SMOKE))
def test_smoke_training_lowers_the_loss(name, tiny_data):
    clean, noisy = tiny_data
    loss, criterion = SMOKE[name]
    network = make_peer_network(width=8, depth=2, seed=0)
    initial = copy.deepcopy(network).eval()
    result = train_peer(loss, network, noisy, 0.1, clean=clean, max_iter=150, batch_size=8, patch_size=32, seed=0)
    assert result.n_iter == 150 and len(result.loss_curve) == 150

    noisy_batch = torch.from_numpy(noisy[:, None]).float()
    clean_batch = torch.from_numpy(clean[:, None]).float()
    sigma = torch.full((len(noisy),), 0.1)

    patches = torch.cat([noisy_batch, clean_batch], dim=1) if criterion.needs_clean else noisy_batch

    def evaluate(net):  # same masks / noise for both networks: a paired comparison
        with torch.no_grad():
            return float(criterion(net, patches, sigma, _generator(123), 1.0))

    assert evaluate(result.network) < 0.95 * evaluate(initial)
    denoised = denoise_peer(loss, result.network, noisy[:2], 0.1, seed=0)
    assert denoised.shape == (2, 64, 64) and denoised.dtype == np.float64 and np.isfinite(denoised).all()


# ------------------------------------------------------------------------------------------- issue 13
def test_noise2self_network_has_no_identity_skip_path():
    # the U-Net's preconditioning copies c_skip * x to the output: at a masked pixel, the
    # neighbours' mean; Noise2Self's network must not, or training stalls at the local mean
    assert make_peer("noise2self").identity_skip is False
    assert make_peer("noise2void").identity_skip and make_peer("r2r").identity_skip
    x = torch.rand(2, 1, 16, 16, generator=_generator(0))
    sigma = torch.tensor([0.1, 0.1])
    with_skip = make_peer_network(width=4, depth=2, seed=0)
    without = make_peer_network(width=4, depth=2, seed=0, skip=make_peer("noise2self").identity_skip)
    assert isinstance(without, UNetWithoutSkip) and not isinstance(with_skip, UNetWithoutSkip)
    for network in (with_skip, without.network):
        torch.nn.init.zeros_(network.head[1].weight)
        torch.nn.init.zeros_(network.head[1].bias)
    with torch.no_grad():
        assert torch.allclose(with_skip(x, sigma), 0.25 / (0.25 + 0.01) * x)  # the skip path
        assert torch.equal(without(x, sigma), torch.zeros_like(x))  # nothing but the backbone
    # same parameters (and initialisation) as the U-Net, only the preconditioning differs
    assert [p.shape for p in without.parameters()] == [p.shape for p in with_skip.parameters()]


def test_trained_noise2self_beats_the_local_mean(tiny_data):
    # sanity check of the skip-free network: it learns more than the neighbours' mean. (On this
    # sharp-edged phantom the old network with the skip path learns too; the stall at the local
    # mean of issue 13 shows on the smooth MNI152 slices, see the test above and
    # benchmarks/results/compare_quick_gaussian_sigma25_noise2self_fixed.md.)
    clean, noisy = tiny_data
    loss = Noise2SelfLoss()
    network = make_peer_network(width=8, depth=2, seed=0, skip=loss.identity_skip)
    trained = train_peer(loss, network, noisy, 0.1, max_iter=300, batch_size=8, patch_size=32, seed=0)
    identity = lambda x, s: x  # noqa: E731  (J-invariant identity = the neighbours' mean)
    local_mean = denoise_peer(loss, identity, noisy, 0.1)
    denoised = denoise_peer(loss, trained.network, noisy, 0.1)
    gain = psnr(denoised, clean, range_=1.0) - psnr(local_mean, clean, range_=1.0)
    assert gain > 0.25, gain  # 0.48 dB after 300 steps
