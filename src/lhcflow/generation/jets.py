"""Anti-kT jet clustering (FastJet, awkward interface; thesis Eq. 4.2) and truth b-tagging.

Truth b-tag definition: a jet is b-tagged when at least one weakly decaying
B hadron (the last B-hadron copy in its decay chain, i.e. one with no
B-hadron daughter; bottomonia excluded) with pT > 5 GeV lies within
Delta R < R (the jet radius) of the jet axis.
"""

from __future__ import annotations

import awkward as ak
import fastjet
import numpy as np

from lhcflow.physics.kinematics import delta_r, pt_eta_phi_mass

B_HADRON_PT_MIN_GEV = 5.0


def jet_config(cfg: dict | None) -> dict:
    """Jet definition from the config's ``jets`` block (``radius``, ``pt_min_gev``, ``abs_eta_max``)."""
    cfg = cfg or {}
    return {
        "algorithm": "antikt",
        "radius": float(cfg.get("radius", 0.4)),
        "pt_min_gev": float(cfg.get("pt_min_gev", 20.0)),
        "abs_eta_max": None if cfg.get("abs_eta_max") is None else float(cfg["abs_eta_max"]),
    }


def cluster_jets(particles: ak.Array, radius: float = 0.4, pt_min: float = 20.0,
                 abs_eta_max: float | None = None) -> ak.Array:
    """Cluster jagged ``px, py, pz, E`` records into pT-ordered jets (pt, eta, phi, mass)."""
    inputs = ak.zip({f: ak.values_astype(particles[f], np.float64) for f in ("px", "py", "pz", "E")})
    definition = fastjet.JetDefinition(fastjet.antikt_algorithm, radius)
    raw = fastjet.ClusterSequence(inputs, definition).inclusive_jets(min_pt=pt_min)
    jets = ak.zip(pt_eta_phi_mass(raw.E, raw.px, raw.py, raw.pz))
    if abs_eta_max is not None:
        jets = jets[abs(jets.eta) < abs_eta_max]
    return jets[ak.argsort(jets.pt, ascending=False)]


def jet_rates(particles: ak.Array, n_max: int = 3, radius: float = 1.0) -> np.ndarray:
    """Differential jet rates: sqrt(d_{n,n+1}) in GeV for n = 0 ... n_max - 1, per event (n_events, n_max).

    d_{n,n+1} is the kT-measure at which the exclusive kT algorithm (FastJet ``kt_algorithm``,
    d_ij = min(pT_i², pT_j²) ΔR_ij²/R², d_iB = pT_i²) merges n + 1 jets into n; it is 0 for an
    event with fewer than n + 1 particles. The merging-validation observable of MLM and CKKW-L.
    """
    inputs = ak.zip({f: ak.values_astype(particles[f], np.float64) for f in ("px", "py", "pz", "E")})
    sequence = fastjet.ClusterSequence(inputs, fastjet.JetDefinition(fastjet.kt_algorithm, radius))
    rates = [ak.to_numpy(sequence.exclusive_dmerge_max(n)) for n in range(n_max)]
    return np.sqrt(np.maximum(np.stack(rates, axis=1), 0.0))


def btag_jets(jets: ak.Array, b_hadrons: ak.Array, radius: float) -> ak.Array:
    """Boolean per jet: any B hadron (eta, phi records) within Delta R < radius."""
    pairs = ak.cartesian({"j": jets, "b": b_hadrons}, nested=True)
    dr = delta_r(pairs.j.eta, pairs.j.phi, pairs.b.eta, pairs.b.phi)
    return ak.any(dr < radius, axis=-1)


def is_b_hadron(pdg_id: np.ndarray) -> np.ndarray:
    """True for hadrons containing a b quark (bottomonia excluded)."""
    a = np.abs(pdg_id)
    q1, q2, q3 = (a // 1000) % 10, (a // 100) % 10, (a // 10) % 10
    baryon = q1 == 5
    meson = (q1 == 0) & (q2 == 5) & (q3 != 5)
    return (baryon | meson) & (a < 1_000_000)


def is_c_hadron(pdg_id: np.ndarray) -> np.ndarray:
    """True for hadrons whose heaviest quark is c (charmonia and cc diquarks excluded)."""
    a = np.abs(pdg_id)
    q1, q2, q3 = (a // 1000) % 10, (a // 100) % 10, (a // 10) % 10
    baryon = (q1 == 4) & (q3 != 0)
    meson = (q1 == 0) & (q2 == 4) & (q3 != 4)
    return (baryon | meson) & (a < 1_000_000)


def hadron_flavour(jets: ak.Array, b_hadrons: ak.Array, c_hadrons: ak.Array, radius: float) -> ak.Array:
    """Truth flavour per jet: 5 with a B hadron within Delta R < radius, else 4 with a C hadron, else 0."""
    is_b = btag_jets(jets, b_hadrons, radius)
    is_c = btag_jets(jets, c_hadrons, radius)
    return ak.where(is_b, 5, ak.where(is_c, 4, 0))
