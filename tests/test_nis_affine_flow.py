"""Affine-coupling flow with soft permutations (thesis Eq 3.47/3.48, Tab A.4) and its MadNIS wiring."""

from __future__ import annotations

import pytest
import torch

from lhcflow.nis.affine_flow import AffineCouplingFlow
from lhcflow.nis.madnis_wrapper import MadnisIntegrator
from lhcflow.nis.run import run_madnis
from lhcflow.nis.toys import toy_integrand

CROSSED_RING_AFFINE = {"coupling": "affine", "permutations": "soft", "blocks": 6, "units": 16, "layers": 2,
                       "batch_size": 512, "steps": 150}


def random_flow(dims: int = 2, channels: int = 3, permutations: str = "soft", scale: float = 0.05,
                seed: int = 0) -> AffineCouplingFlow:
    """A float64 flow away from the identity: every parameter perturbed by N(0, scale²)."""
    torch.manual_seed(seed)
    flow = AffineCouplingFlow(dims, channels=channels, blocks=4, layers=2, units=16,
                              permutations=permutations, seed=seed).double()
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(scale * torch.randn_like(p))
    return flow


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("permutations", ["soft", "exchange", "random"])
def test_density_is_normalised_on_the_unit_hypercube(dims, permutations):
    flow = random_flow(dims, permutations=permutations)
    x = torch.rand((100_000, dims), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        for channel in range(3):
            q = flow.prob(x, channel=channel)
            assert not torch.allclose(q, torch.ones_like(q), atol=1e-3)  # not the identity
            assert q.mean().item() == pytest.approx(1.0, abs=5 * q.std().item() / len(q) ** 0.5)


def test_sample_log_prob_matches_log_prob_and_stays_inside():
    flow = random_flow()
    channels = torch.randint(0, 3, (2000,), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        x, log_q, q = flow.sample(2000, channel=channels, return_log_prob=True, return_prob=True)
        assert x.dtype == torch.float64 and x.shape == (2000, 2)
        assert torch.all((x > 0) & (x < 1))
        torch.testing.assert_close(flow.log_prob(x, channel=channels), log_q, rtol=0, atol=1e-9)
        torch.testing.assert_close(q, log_q.exp())
        # a flow pushed far into the Gaussian tails still gives points strictly inside (0, 1)
        far = random_flow(scale=1.0)
        x_far = far.sample(2000, channel=channels)
        assert torch.all((x_far > 0) & (x_far < 1))
        assert torch.isfinite(far.log_prob(x_far, channel=channels)).all()


def test_transform_is_invertible():
    flow = random_flow(3)
    x = torch.rand((500, 3), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    channels = torch.randint(0, 3, (500,), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        z, log_det = flow.transform(x, channels)
        x_back, log_det_back = flow.transform(z, channels, inverse=True)
    torch.testing.assert_close(x_back, x, rtol=0, atol=1e-10)
    torch.testing.assert_close(log_det_back, -log_det, rtol=0, atol=1e-9)


def test_log_det_matches_numerical_jacobian_in_2d():
    flow = random_flow(2, channels=1, scale=0.2)
    x = 0.05 + 0.9 * torch.rand((64, 2), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    h = 1e-6
    with torch.no_grad():
        _, log_det = flow.transform(x, 0)
        # central differences: column k of every point's Jacobian dz/dx
        columns = [(flow.transform(x + h * e, 0)[0] - flow.transform(x - h * e, 0)[0]) / (2 * h)
                   for e in torch.eye(2, dtype=torch.float64)]
    numeric = torch.linalg.slogdet(torch.stack(columns, dim=2)).logabsdet
    torch.testing.assert_close(log_det, numeric, rtol=0, atol=1e-6)


def test_channels_are_independent_and_channel_formats_agree():
    flow = random_flow(2, channels=3)
    gen = torch.Generator().manual_seed(6)
    counts = [40, 0, 60]
    x = torch.rand((100, 2), generator=gen, dtype=torch.float64)
    index = torch.repeat_interleave(torch.arange(3), torch.tensor(counts))
    with torch.no_grad():
        by_list = flow.log_prob(x, channel=counts)
        shuffle = torch.randperm(100, generator=gen)
        by_tensor = flow.log_prob(x[shuffle], channel=index[shuffle])
        torch.testing.assert_close(by_tensor, by_list[shuffle])
        torch.testing.assert_close(flow.log_prob(x[:40], channel=0), by_list[:40])
        torch.testing.assert_close(flow.log_prob(x[40:], channel=2), by_list[40:])
        even = flow.log_prob(x[:99], channel=None)
        torch.testing.assert_close(even, flow.log_prob(x[:99], channel=[33, 33, 33]))
        # changing channel 0's parameters leaves channels 1 and 2 untouched
        before = [flow.log_prob(x, channel=c) for c in range(3)]
        for mlp in flow.subnets:
            mlp.biases[-1][0].add_(0.5)
        after = [flow.log_prob(x, channel=c) for c in range(3)]
    assert not torch.allclose(before[0], after[0])
    torch.testing.assert_close(before[1], after[1], rtol=0, atol=0)
    torch.testing.assert_close(before[2], after[2], rtol=0, atol=0)


def test_identity_at_initialisation_and_state_reproduces_permutations():
    flow = AffineCouplingFlow(2, channels=2, seed=0).double()
    x = torch.rand((200, 2), generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(flow.log_prob(x, channel=[100, 100]), x.new_zeros(200))
        trained = random_flow(2, channels=2, seed=0)
        other = AffineCouplingFlow(2, channels=2, blocks=4, layers=2, units=16, seed=99).double()
        assert not torch.equal(other.rotations, trained.rotations)
        other.load_state_dict(trained.state_dict())
        torch.testing.assert_close(other.log_prob(x, channel=1), trained.log_prob(x, channel=1))


def test_madnis_affine_settings_are_validated():
    ring = toy_integrand("crossed_ring", channels="ring_line")
    with pytest.raises(ValueError, match="coupling"):
        MadnisIntegrator(ring, {"coupling": "spline"})
    with pytest.raises(ValueError, match="permutations"):
        MadnisIntegrator(ring, {"coupling": "affine", "permutations": "log"})
    with pytest.raises(ValueError, match="permutations"):
        MadnisIntegrator(ring, {"coupling": "rqs", "permutations": "soft"})
    with pytest.raises(ValueError, match="vegas_init"):
        MadnisIntegrator(ring, {"preset": "table_a4", "vegas_init": {"iterations": 2}})
    assert isinstance(MadnisIntegrator(ring, {"preset": "table_a4"}).integrator.flow, AffineCouplingFlow)


def test_crossed_ring_affine_madnis_integral_and_save_load(tmp_path):
    ring = toy_integrand("crossed_ring", channels="ring_flat", prior="uniform")
    result = run_madnis(ring, 20_000, CROSSED_RING_AFFINE, seed=0, progress=False)
    assert abs(result.integral - result.exact) < 5 * result.error, result
    integ = result.integrator
    assert isinstance(integ.integrator.flow, AffineCouplingFlow) and integ.integrator.step == 150

    loaded = MadnisIntegrator.load(integ.save(tmp_path / "affine.pt"), ring)
    r = torch.rand((1000, 2), generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    channels = torch.arange(1000) % 2
    with torch.no_grad():
        expected = integ.integrator.flow.log_prob(r, channel=channels)
        reloaded = loaded.integrator.flow.log_prob(r, channel=channels)
    torch.testing.assert_close(reloaded, expected, rtol=0, atol=0)
    a, b = integ.sample_weighted(2000, seed=5), loaded.sample_weighted(2000, seed=5)
    assert torch.equal(a.x, b.x) and torch.equal(a.weights, b.weights)
