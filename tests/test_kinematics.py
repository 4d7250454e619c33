"""lhcflow.physics.kinematics against independent references: ``vector``'s own conversions, closed forms
(a momentum built from its polar angle, particles along the beam axis and in the transverse plane), the
IEEE remainder for angles, and the φ = ±π seam. Float64 tolerances are a few ulp of the inputs, times
E²/m² for masses (E² − p² cancels); float32 ones are float32's resolution."""

from __future__ import annotations

import math

import awkward as ak
import numpy as np
import pytest
import torch
import vector

from lhcflow.physics import kinematics as K


def _momenta(n, seed, massless=False):
    """(n, 4) (E, px, py, pz) with |η| < 4 and m in [1, 200] GeV (or m = 0)."""
    rng = np.random.default_rng(seed)
    p = rng.normal(0.0, 100.0, (n, 3))
    m = np.zeros(n) if massless else rng.uniform(1.0, 200.0, n)
    return np.column_stack([np.sqrt((p**2).sum(1) + m**2), p]), m


def test_forward_agrees_with_vector():
    p4, m = _momenta(20_000, 1)
    ref = vector.array({"E": p4[:, 0], "px": p4[:, 1], "py": p4[:, 2], "pz": p4[:, 3]})
    kin = K.pt_eta_phi_mass(*p4.T)
    assert np.allclose(kin["pt"], ref.pt, rtol=1e-15, atol=0)
    assert np.allclose(kin["eta"], ref.eta, rtol=1e-14, atol=1e-15)
    assert np.allclose(kin["phi"], ref.phi, rtol=0, atol=1e-15)
    tol = 1e-15 * p4[:, 0] ** 2 / m  # δm = δ(m²)/2m, δ(m²) ~ ulp(E²)
    assert (np.abs(kin["mass"] - ref.mass) <= 4 * tol).all()
    assert (np.abs(kin["mass"] - m) <= 4 * tol).all()
    assert np.array_equal(K.to_ptetaphim(p4), np.stack([kin[k] for k in K.PTETAPHIM], -1))


def test_closed_form_from_polar_angle():
    """p = |p| (sin θ cos φ, sin θ sin φ, cos θ) with θ = 2 atan(e^−η) (Eq 2.18-2.19) has pseudorapidity η."""
    rng = np.random.default_rng(2)
    eta0, phi0 = rng.uniform(-6, 6, 5000), rng.uniform(-np.pi, np.pi, 5000)
    p_abs, m = rng.uniform(1, 1000, 5000), rng.uniform(0, 50, 5000)
    theta = 2 * np.arctan(np.exp(-eta0))
    p_t = p_abs * np.sin(theta)
    px, py, pz = p_t * np.cos(phi0), p_t * np.sin(phi0), p_abs * np.cos(theta)
    kin = K.pt_eta_phi_mass(np.sqrt(p_abs**2 + m**2), px, py, pz)
    assert np.allclose(kin["eta"], eta0, rtol=0, atol=1e-12)
    assert np.allclose(kin["phi"], phi0, rtol=0, atol=1e-14)
    assert np.allclose(kin["pt"], p_abs / np.cosh(eta0), rtol=1e-14)
    transverse = K.pt_eta_phi_mass(np.array([5.0]), np.array([3.0]), np.array([4.0]), np.array([0.0]))
    expected = [5.0, 0.0, pytest.approx(math.atan(4 / 3), rel=1e-15), 0.0]
    assert [transverse[k][0] for k in K.PTETAPHIM] == expected


def test_beam_axis_and_zero_momentum():
    """pT = 0: η = ±∞ by the sign of pz (θ = 0, π), η = 0 for p = 0, φ = 0 whatever zeros' signs."""
    e = np.array([5.0, 5.0, 2.0, 0.0, 7.0])
    px, py = np.array([0.0, -0.0, 0.0, 0.0, -0.0]), np.array([0.0, 0.0, -0.0, 0.0, -0.0])
    pz = np.array([3.0, -3.0, 0.0, 0.0, 7.0])
    kin = K.pt_eta_phi_mass(e, px, py, pz)
    assert kin["eta"].tolist() == [math.inf, -math.inf, 0.0, 0.0, math.inf]
    assert kin["phi"].tolist() == [0.0] * 5 and not np.signbit(kin["phi"]).any()
    assert kin["mass"].tolist() == [4.0, 4.0, 2.0, 0.0, 0.0]
    t = K.to_ptetaphim(torch.tensor(np.column_stack([e, px, py, pz])))
    assert t[:, 1].tolist() == kin["eta"].tolist() and t[:, 2].tolist() == [0.0] * 5
    # the inverse: pT = 0 at finite η is a particle at rest in the transverse plane; at |η| = ∞ it has none
    back = K.to_four_momenta(np.array([[0.0, 1.3, 2.0, 4.0], [0.0, math.inf, 0.0, 4.0]]))
    assert back[0].tolist() == [4.0, 0.0, 0.0, 0.0] and np.isnan(back[1, [0, 3]]).all()


def test_phi_at_the_seam():
    """φ = ±π: atan2(±0, x < 0) is π, never −π; angles wrap to (−π, π]."""
    kin = K.pt_eta_phi_mass(np.full(2, 5.0), np.array([-3.0, -3.0]), np.array([0.0, -0.0]), np.zeros(2))
    assert kin["phi"].tolist() == [math.pi, math.pi]
    assert K.to_ptetaphim(torch.tensor([[5.0, -3.0, -0.0, 0.0]], dtype=torch.float64))[0, 2].item() == math.pi
    assert K.to_ptetaphim(torch.tensor([[5.0, -3.0, -0.0, 0.0]]))[0, 2].item() == np.float32(math.pi)
    assert K.to_ptetaphim(np.float32([[5.0, -3.0, -0.0, 0.0]]))[0, 2] == np.float32(math.pi)
    for a in (math.pi, -math.pi, 3 * math.pi, -3 * math.pi):
        assert K.wrap_angle(a) == pytest.approx(math.pi, abs=1e-15)
    assert K.wrap_angle(torch.tensor([-math.pi], dtype=torch.float64)).item() == math.pi
    # across the seam: φ = ±3.1 are 2π − 6.2 apart, as vector's ΔR says too
    eta1, phi1, eta2, phi2 = np.array([0.3]), np.array([3.1]), np.array([-0.2]), np.array([-3.1])
    expected = math.hypot(0.5, 2 * math.pi - 6.2)
    assert K.delta_r(eta1, phi1, eta2, phi2)[0] == pytest.approx(expected, rel=1e-14)
    a = vector.obj(pt=1.0, eta=0.3, phi=3.1)
    assert a.deltaR(vector.obj(pt=2.0, eta=-0.2, phi=-3.1)) == pytest.approx(expected, rel=1e-14)


def test_wrap_angle_is_the_ieee_remainder_and_exact_inside():
    rng = np.random.default_rng(3)
    a = rng.uniform(-40, 40, 20_000)
    ref = np.array([math.remainder(x, 2 * math.pi) for x in a])  # in [−π, π]; −π never occurs here
    assert np.allclose(K.wrap_angle(a), ref, rtol=0, atol=1e-13)
    inside = rng.uniform(-math.pi, math.pi, 20_000)
    assert np.array_equal(K.wrap_angle(inside), inside)
    assert np.array_equal(K.wrap_angle(torch.as_tensor(inside)).numpy(), inside)
    assert np.array_equal(K.delta_phi(inside, 0.0), inside)
    wrapped = K.wrap_angle(a.astype(np.float32))
    assert wrapped.dtype == np.float32 and np.allclose(wrapped, ref, atol=1e-5)


def test_round_trips_with_vectors_inverse():
    """(pT, η, φ, m) -> (E, p) by vector -> (pT, η, φ, m), and (E, p) -> (pT, η, φ, m) -> (E, p)."""
    rng = np.random.default_rng(4)
    n = 10_000
    x = np.column_stack([rng.uniform(1, 500, n), rng.uniform(-5, 5, n), rng.uniform(-np.pi, np.pi, n),
                         rng.uniform(0, 100, n)])
    x[::2, 3] = 0.0  # massless half
    back = K.to_ptetaphim(K.to_four_momenta(x))
    assert np.allclose(back[:, :3], x[:, :3], rtol=1e-13, atol=1e-13)
    e = K.to_four_momenta(x)[:, 0]
    massive = x[:, 3] > 0
    assert (np.abs(back[massive, 3] - x[massive, 3]) <= 8e-16 * e[massive] ** 2 / x[massive, 3]).all()
    assert (back[~massive, 3] <= 1e-7 * e[~massive]).all()  # m of a massless momentum: rounding of E² − p²
    p4, _ = _momenta(10_000, 5)
    assert np.allclose(K.to_four_momenta(K.to_ptetaphim(p4)), p4, rtol=1e-13, atol=1e-11)


def test_massless_momenta_give_zero_mass_not_nan():
    p4, _ = _momenta(20_000, 6, massless=True)
    m = K.pt_eta_phi_mass(*p4.T)["mass"]
    assert np.isfinite(m).all() and (m >= 0).all() and (m <= 1e-7 * p4[:, 0]).all()
    assert (m == 0).mean() > 0.3  # E² − p² < 0 by rounding in about half the events: clamped to 0


def test_float32_and_torch_inputs():
    p4, _ = _momenta(20_000, 7)
    ref = K.to_ptetaphim(p4)
    f32 = K.to_ptetaphim(p4.astype(np.float32))
    assert f32.dtype == np.float32
    assert np.allclose(f32[:, [0, 2]], ref[:, [0, 2]], rtol=1e-6, atol=1e-6)
    assert np.allclose(f32[:, 1], ref[:, 1], atol=1e-5)
    t64 = K.to_ptetaphim(torch.as_tensor(p4))
    assert np.allclose(t64.numpy(), ref, rtol=1e-15, atol=1e-13)
    t32 = K.to_ptetaphim(torch.as_tensor(p4, dtype=torch.float32))
    assert t32.dtype == torch.float32
    assert np.allclose(t32.numpy()[:, [0, 2]], ref[:, [0, 2]], rtol=1e-6, atol=1e-6)


def test_torch_gradients_are_the_closed_form_jacobian():
    """∂pT/∂px = px/pT, ∂η/∂pz = 1/|p|, ∂φ/∂px = −py/pT² (autograd through the tensor path)."""
    p4, _ = _momenta(100, 8)
    t = torch.tensor(p4, requires_grad=True)
    out = K.to_ptetaphim(t)
    e, px, py, pz = p4.T
    pt, p_abs = np.hypot(px, py), np.sqrt(px**2 + py**2 + pz**2)
    for column, (k, expected) in ((0, (1, px / pt)), (1, (3, 1 / p_abs)), (2, (1, -py / pt**2))):
        (grad,) = torch.autograd.grad(out[:, column].sum(), t, retain_graph=True)
        assert np.allclose(grad[:, k].numpy(), expected, rtol=1e-12)


def test_jagged_awkward_arrays_match_flat_arrays():
    p4, _ = _momenta(1000, 9)
    counts = np.random.default_rng(9).multinomial(1000, np.full(300, 1 / 300))
    jagged = K.pt_eta_phi_mass(*(ak.unflatten(p4[:, k], counts) for k in range(4)))
    flat = K.pt_eta_phi_mass(*p4.T)
    for key in K.PTETAPHIM:
        assert ak.num(jagged[key]).tolist() == counts.tolist()
        assert np.array_equal(ak.to_numpy(ak.flatten(jagged[key])), flat[key])
