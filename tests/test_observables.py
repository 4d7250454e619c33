"""Observables against independent formulae, Lorentz invariance, and the plotting path."""

import numpy as np
import pytest

from lhcflow.data.events import EventBatch, ObjectType, SampleInfo, write_events
from lhcflow.physics.observables import control_observables, pair_delta_r, pair_mass, scalar_ht
from lhcflow.plots.distributions import compare_samples, fill_histograms

MU = 0.1056583755


def dimuon_batch(n, rng):
    batch = EventBatch.empty(n, 3)
    batch.type[:, :2] = ObjectType.MUON
    batch.type[:, 2] = ObjectType.JET
    batch.pt[:] = rng.uniform(20, 100, (n, 3))
    batch.eta[:] = rng.uniform(-2.5, 2.5, (n, 3))
    batch.phi[:] = rng.uniform(-np.pi, np.pi, (n, 3))
    batch.mass[:, :2] = MU
    batch.mass[:, 2] = rng.uniform(0, 20, n)
    return batch


def cartesian(pt, eta, phi, m):
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return np.sqrt(px**2 + py**2 + pz**2 + m**2), px, py, pz


def test_pair_mass_matches_cartesian_formula():
    rng = np.random.default_rng(0)
    b = dimuon_batch(500, rng)
    p1 = cartesian(*(np.float64(getattr(b, f)[:, 0]) for f in ("pt", "eta", "phi", "mass")))
    p2 = cartesian(*(np.float64(getattr(b, f)[:, 1]) for f in ("pt", "eta", "phi", "mass")))
    e, px, py, pz = (a + c for a, c in zip(p1, p2))
    expected = np.sqrt(e**2 - px**2 - py**2 - pz**2)
    mass, mask = pair_mass(b, 0, 1)
    assert mask.all()
    np.testing.assert_allclose(mass, expected, rtol=1e-5)


def test_pair_mass_is_boost_invariant():
    """A longitudinal boost shifts all rapidities equally; for massless-ish objects η ≈ y, so the
    invariant mass of a muon pair (m_μ ≪ pT) must be unchanged up to O(m²/pT²)."""
    rng = np.random.default_rng(1)
    b = dimuon_batch(200, rng)
    mass, _ = pair_mass(b, 0, 1)
    b.eta[:, :2] += 0.7
    boosted, _ = pair_mass(b, 0, 1)
    np.testing.assert_allclose(boosted, mass, rtol=1e-4)


def test_delta_r_wraps_phi_and_ht_sums_jets():
    b = EventBatch.empty(1, 3)
    b.type[0] = [ObjectType.JET, ObjectType.JET, ObjectType.NONE]
    b.pt[0] = [50.0, 30.0, 0.0]
    b.eta[0] = [0.5, -0.5, 0.0]
    b.phi[0] = [3.0, -3.0, 0.0]
    dr, mask = pair_delta_r(b, 0, 1)
    assert mask[0] and dr[0] == pytest.approx(np.hypot(1.0, 2 * np.pi - 6.0), rel=1e-6)
    assert not pair_delta_r(b, 0, 2)[1][0]
    assert scalar_ht(b)[0][0] == pytest.approx(80.0)


def test_control_observables_for_zjets_layout():
    names = [o.name for o in control_observables(["mu1", "mu2", "j1", "j2", "j3"])]
    for expected in ("mu1_pt", "mu2_eta", "j3_phi", "m_mu1mu2", "dR_j1j2", "dR_j1j3", "dR_j2j3", "ht", "n_jets"):
        assert expected in names


def test_histograms_weighted_and_plots_written(tmp_path):
    rng = np.random.default_rng(2)
    b = dimuon_batch(1000, rng)
    b.weight[:] = 2.0
    info = SampleInfo(slots=["mu1", "mu2", "j1"])
    write_events(tmp_path / "a.h5", b, info)
    write_events(tmp_path / "b.h5", dimuon_batch(800, rng), info)
    obs = control_observables(info.slots)
    hists = fill_histograms([tmp_path / "a.h5"], obs, chunk_size=128)
    assert hists["mu1_pt"].sum(flow=True).value == pytest.approx(2000.0)
    written = compare_samples({"a": [tmp_path / "a.h5"], "b": [tmp_path / "b.h5"]}, tmp_path / "plots", reference="a")
    assert {p.name for p in written} >= {"mu1_pt.png", "m_mu1mu2.png", "n_jets.png"}
    assert all(p.stat().st_size > 1000 for p in written)
