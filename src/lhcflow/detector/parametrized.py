"""Parametrized detector response after the Delphes CMS card (thesis §6.1, detector stage).

Every number is a parameter whose default is taken from ``cards/delphes_card_CMS.tcl`` of Delphes 3
(the card module in brackets); a config's ``detector.parameters`` block overrides them per object,
and an unknown key raises :class:`~lhcflow.detector.DetectorConfigError` naming it.

Photons [ECal, PhotonEfficiency, PhotonIsolation]
    Every stable photon is a candidate. Its energy is smeared with the ECal resolution
    σ_E = f(η) √((0.008 E)² + 0.11² E/GeV + (0.40 GeV)²), with f = 1 + 0.64 η² for |η| ≤ 1.5 and
    f = 2.16 + 5.6 (|η| − 2)² for 1.5 < |η| ≤ 2.5. Efficiency 0.95 (|η| ≤ 1.5) or 0.85
    (1.5 < |η| ≤ 2.5) for pT > 10 GeV, zero otherwise. Isolated when the scalar pT sum of the other
    visible particles with pT > 0.5 GeV within ΔR < 0.5 is below 0.12 pT.
Muons [MuonTrackingEfficiency, MuonMomentumSmearing, MuonEfficiency, MuonIsolation]
    pT smeared by σ_pT/pT = √(a² + (b pT)²) with (a, b/GeV⁻¹) = (0.01, 1.0e-4), (0.015, 1.5e-4),
    (0.025, 3.5e-4) for |η| ≤ 0.5, ≤ 1.5, ≤ 2.5. Efficiency = tracking (0.99 for |η| ≤ 1.5, 0.98
    beyond, pT > 1 GeV) × identification (0.95 for 10 GeV < pT ≤ 1 TeV, times exp(0.5 − 5·10⁻⁴ pT/GeV)
    above) inside the |η| < 2.4 tracker acceptance. Isolated when the cone sum (ΔR < 0.5) is < 0.25 pT.
Jets [FastJetFinder, HCal]
    anti-kT on all visible stable particles within |η| < 5 except the isolated photons and muons,
    R = 0.4 as in the thesis (the card uses 0.5). The card has no jet smearing of its own (jets
    inherit the tower resolutions); here the jet four-momentum is scaled by 1 + N(0, σ_E/E) with the
    card's HCal formula σ_E/E = √(0.050² + 1.50²/(E/GeV)). Jets are kept above pT = 20 GeV
    (JetPTMin), clustered from 10 GeV so that smearing moves jets across the threshold both ways.
b-tagging [BTagging]
    Flavour from hadrons (the card uses partons): b with a weakly decaying B hadron (pT > 5 GeV)
    within ΔR < 0.4, else c with a C hadron, else light. Tag probability
    ε_b = 0.85 tanh(0.0025 pT) · 25/(1 + 0.063 pT), ε_c = 0.25 tanh(0.018 pT)/(1 + 0.0013 pT),
    ε_light = 0.01 + 3.8·10⁻⁵ pT (pT in GeV), inside |η| < 2.4 only.

Not modelled: charged-hadron tracking efficiency, calorimeter granularity, pile-up, electrons,
taus, missing ET and the card's jet energy scale correction.

Random numbers are counter-based: each draw is a hash (splitmix64, as for the ingestion splits) of
the seed, the kind of draw, the event number and the object's index in its event, so an event's
response depends on the seed and the event alone, not on how events are batched or sharded.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import awkward as ak
import numpy as np

from lhcflow.data.ingest import split_uniform
from lhcflow.detector import DetectorConfigError, TruthEvents
from lhcflow.generation import jets as jetlib
from lhcflow.physics import kinematics

NEUTRINOS = (12, 14, 16)
# kinds of random draws (hash streams); a Gaussian uses its stream and the next one
PHOTON_ENERGY, PHOTON_FOUND, MUON_PT, MUON_FOUND, JET_ENERGY, JET_TAG = 1, 3, 4, 6, 7, 9

DEFAULT_PARAMETERS: dict[str, dict] = {
    "photon": {
        "pt_min_gev": 10.0,
        "abs_eta_max": 2.5,
        "barrel_abs_eta_max": 1.5,
        "efficiency_barrel": 0.95,
        "efficiency_endcap": 0.85,
        "energy_constant": 0.008,
        "energy_stochastic_sqrt_gev": 0.11,
        "energy_noise_gev": 0.40,
        "barrel_eta_shape": [1.0, 0.64],  # f = a + b η²
        "endcap_eta_shape": [2.16, 5.6, 2.0],  # f = a + b (|η| - c)²
        "isolation_delta_r": 0.5,
        "isolation_pt_min_gev": 0.5,
        "isolation_pt_ratio_max": 0.12,
    },
    "muon": {
        "pt_min_gev": 10.0,
        "abs_eta_max": 2.4,
        "barrel_abs_eta_max": 1.5,
        "tracking_efficiency_barrel": 0.99,
        "tracking_efficiency_endcap": 0.98,
        "efficiency": 0.95,
        "high_pt_gev": 1000.0,
        "high_pt_falloff_per_gev": 5.0e-4,
        "resolution_abs_eta_edges": [0.5, 1.5, 2.5],
        "resolution_constant": [0.01, 0.015, 0.025],
        "resolution_slope_per_gev": [1.0e-4, 1.5e-4, 3.5e-4],
        "isolation_delta_r": 0.5,
        "isolation_pt_min_gev": 0.5,
        "isolation_pt_ratio_max": 0.25,
    },
    "jet": {
        "radius": 0.4,
        "cluster_pt_min_gev": 10.0,
        "pt_min_gev": 20.0,
        "abs_eta_max": 5.0,
        "energy_constant": 0.050,
        "energy_stochastic_sqrt_gev": 1.50,
    },
    "btag": {
        "abs_eta_max": 2.4,
        "delta_r": 0.4,
        "hadron_pt_min_gev": 5.0,
        "b_efficiency": [0.85, 0.0025, 25.0, 0.063],  # a tanh(b pT) c / (1 + d pT)
        "c_mistag": [0.25, 0.018, 1.0, 0.0013],  # same form
        "light_mistag": [0.01, 3.8e-5],  # a + b pT
    },
}


def detector_parameters(overrides: Mapping | None = None) -> dict:
    """Defaults merged with ``overrides`` (nested per object); unknown keys raise naming the key."""
    merged = copy.deepcopy(DEFAULT_PARAMETERS)
    for group, values in (overrides or {}).items():
        if group not in merged:
            raise DetectorConfigError(f"detector.parameters.{group}: unknown object "
                                      f"(allowed: {', '.join(merged)})")
        if not isinstance(values, Mapping):
            raise DetectorConfigError(f"detector.parameters.{group}: expected a mapping, got {values!r}")
        for key, value in values.items():
            if key not in merged[group]:
                raise DetectorConfigError(f"detector.parameters.{group}.{key}: unknown parameter "
                                          f"(allowed: {', '.join(merged[group])})")
            default = merged[group][key]
            bad_list = not isinstance(value, (list, tuple)) or len(value) != len(default)
            if isinstance(default, list) and bad_list:
                raise DetectorConfigError(f"detector.parameters.{group}.{key}: expected a list of "
                                          f"{len(default)} numbers, got {value!r}")
            merged[group][key] = list(map(float, value)) if isinstance(default, list) else float(value)
    return merged


# --------------------------------------------------------------------------- response functions


def photon_energy_resolution(energy, eta, p: Mapping) -> np.ndarray:
    """Absolute photon energy resolution σ_E [GeV] (ECal formula with its η shape)."""
    energy, abs_eta = np.asarray(energy, float), np.abs(np.asarray(eta, float))
    a, b = p["barrel_eta_shape"]
    c, d, e = p["endcap_eta_shape"]
    shape = np.where(abs_eta <= p["barrel_abs_eta_max"], a + b * abs_eta**2, c + d * (abs_eta - e) ** 2)
    core = np.sqrt((p["energy_constant"] * energy) ** 2 + p["energy_stochastic_sqrt_gev"] ** 2 * energy
                   + p["energy_noise_gev"] ** 2)
    return shape * core


def photon_efficiency(pt, eta, p: Mapping) -> np.ndarray:
    """Photon reconstruction efficiency (barrel/endcap plateau above the pT threshold)."""
    pt, abs_eta = np.asarray(pt, float), np.abs(np.asarray(eta, float))
    plateau = np.where(abs_eta <= p["barrel_abs_eta_max"], p["efficiency_barrel"], p["efficiency_endcap"])
    return np.where((pt > p["pt_min_gev"]) & (abs_eta <= p["abs_eta_max"]), plateau, 0.0)


def muon_pt_resolution(pt, eta, p: Mapping) -> np.ndarray:
    """Relative muon pT resolution σ_pT/pT in |η| bins; zero outside the last edge (no track)."""
    pt, abs_eta = np.asarray(pt, float), np.abs(np.asarray(eta, float))
    edges = np.asarray(p["resolution_abs_eta_edges"])
    region = np.minimum(np.searchsorted(edges, abs_eta, side="left"), len(edges) - 1)
    a = np.asarray(p["resolution_constant"])[region]
    b = np.asarray(p["resolution_slope_per_gev"])[region]
    return np.where(abs_eta <= edges[-1], np.hypot(a, b * pt), 0.0)


def muon_efficiency(pt, eta, p: Mapping) -> np.ndarray:
    """Muon efficiency: tracking × identification inside the tracker acceptance."""
    pt, abs_eta = np.asarray(pt, float), np.abs(np.asarray(eta, float))
    tracking = np.where(abs_eta <= p["barrel_abs_eta_max"], p["tracking_efficiency_barrel"],
                        p["tracking_efficiency_endcap"])
    falloff = np.exp(np.minimum(0.0, p["high_pt_falloff_per_gev"] * (p["high_pt_gev"] - pt)))
    ident = p["efficiency"] * falloff
    return np.where((pt > p["pt_min_gev"]) & (abs_eta <= p["abs_eta_max"]), tracking * ident, 0.0)


def jet_energy_resolution(energy, p: Mapping) -> np.ndarray:
    """Relative jet energy resolution σ_E/E (HCal formula)."""
    energy = np.maximum(np.asarray(energy, float), 1e-9)
    return np.sqrt(p["energy_constant"] ** 2 + p["energy_stochastic_sqrt_gev"] ** 2 / energy)


def _tanh_form(pt, coeffs) -> np.ndarray:
    a, b, c, d = coeffs
    return a * np.tanh(b * pt) * c / (1.0 + d * pt)


def tag_probability(pt, eta, flavour, p: Mapping) -> np.ndarray:
    """b-tag probability per jet from its truth flavour (5, 4, else light) and pT, |η| < abs_eta_max."""
    pt, abs_eta, flavour = np.asarray(pt, float), np.abs(np.asarray(eta, float)), np.asarray(flavour)
    light = p["light_mistag"][0] + p["light_mistag"][1] * pt
    prob = np.where(flavour == 5, _tanh_form(pt, p["b_efficiency"]),
                    np.where(flavour == 4, _tanh_form(pt, p["c_mistag"]), light))
    return np.where(abs_eta < p["abs_eta_max"], np.clip(prob, 0.0, 1.0), 0.0)


# --------------------------------------------------------------------------- the detector


def _object_keys(numbers: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per object of jagged lists: (event number, index in its event) packed into one uint64."""
    event = np.repeat(np.arange(len(counts)), counts)
    within = np.arange(len(event)) - np.repeat(np.cumsum(counts) - counts, counts)
    return (np.asarray(numbers, np.uint64)[event] << np.uint64(24)) | within.astype(np.uint64)


class CounterRandom:
    """Uniform and Gaussian numbers keyed by (seed, stream, object key): see the module docstring."""

    def __init__(self, seed: int):
        self.seed = int(seed)

    def uniform(self, stream: int, keys: np.ndarray) -> np.ndarray:
        return split_uniform(self.seed, stream, keys)

    def normal(self, stream: int, keys: np.ndarray) -> np.ndarray:
        """Box-Muller from the uniforms of ``stream`` and ``stream + 1``."""
        radius = np.sqrt(-2.0 * np.log1p(-self.uniform(stream, keys)))
        return radius * np.cos(2.0 * np.pi * self.uniform(stream + 1, keys))


def _flat_particles(truth: TruthEvents) -> dict:
    particles = truth.particles
    counts = ak.to_numpy(ak.num(particles))
    names = ("px", "py", "pz", "E", "pdgId", "origin")
    flat = {name: ak.to_numpy(ak.flatten(particles[name])) for name in names}
    flat.update(kinematics.pt_eta_phi_mass(flat["E"], flat["px"], flat["py"], flat["pz"]))
    flat["event"] = np.repeat(np.arange(len(counts)), counts)
    flat["index"] = np.arange(len(flat["event"]))
    flat["key"] = _object_keys(truth.numbers, counts)
    flat["counts"] = counts
    return flat


def _jagged(flat: dict, mask: np.ndarray, values: dict) -> ak.Array:
    counts = np.bincount(flat["event"][mask], minlength=len(flat["counts"]))
    return ak.unflatten(ak.zip(values), counts)


def _mask(flat: dict, idx: np.ndarray) -> np.ndarray:
    mask = np.zeros(len(flat["event"]), bool)
    mask[idx] = True
    return mask


def _isolated(flat: dict, visible: np.ndarray, idx: np.ndarray, found: np.ndarray, pt: np.ndarray,
              p: Mapping) -> np.ndarray:
    """Per candidate ``idx``: found and relatively isolated (cone sum below a fraction of its pT)."""
    cone = _cone_sums(flat, _mask(flat, idx[found]), visible, p["isolation_delta_r"],
                      p["isolation_pt_min_gev"])
    keep = found.copy()
    keep[found] = cone < p["isolation_pt_ratio_max"] * pt[found]
    return keep


def _cone_sums(flat: dict, candidates: np.ndarray, visible: np.ndarray, delta_r: float,
               pt_min: float) -> np.ndarray:
    """Scalar pT sum of visible particles (pT > pt_min) within ΔR of each candidate, itself excluded."""
    fields = ("index", "eta", "phi", "pt")
    cands = _jagged(flat, candidates, {k: flat[k][candidates] for k in fields[:3]})
    around = visible & (flat["pt"] > pt_min)
    others = _jagged(flat, around, {k: flat[k][around] for k in fields})
    pairs = ak.cartesian({"c": cands, "o": others}, nested=True)
    dr = kinematics.delta_r(pairs.c.eta, pairs.c.phi, pairs.o.eta, pairs.o.phi)
    inside = (dr < delta_r) & (pairs.c.index != pairs.o.index)
    return ak.to_numpy(ak.flatten(ak.sum(ak.where(inside, pairs.o.pt, 0.0), axis=-1)))


class ParametrizedDetector:
    """Photons, muons and b-tagged jets from stable particles; see the module docstring."""

    def __init__(self, parameters: Mapping | None = None, seed: int = 0):
        self.parameters = detector_parameters(parameters)
        self.random = CounterRandom(seed)

    def simulate(self, truth: TruthEvents) -> dict[str, ak.Array]:
        """Reconstructed ``Photon``, ``Muon`` and ``Jet`` records (Delphes branch names) per event."""
        flat = _flat_particles(truth)
        visible = ~np.isin(np.abs(flat["pdgId"]), NEUTRINOS)
        photons, photon_idx = self._photons(flat, visible)
        muons, muon_idx = self._muons(flat, visible)
        jet_in = visible & (np.abs(flat["eta"]) < self.parameters["jet"]["abs_eta_max"])
        jet_in[photon_idx] = False
        jet_in[muon_idx] = False
        jets = self._jets(flat, jet_in, truth)
        return {"Photon": photons, "Muon": muons, "Jet": jets}

    def _photons(self, flat: dict, visible: np.ndarray) -> tuple[ak.Array, np.ndarray]:
        p = self.parameters["photon"]
        idx = np.flatnonzero(flat["pdgId"] == 22)
        eta = flat["eta"][idx]
        gauss = self.random.normal(PHOTON_ENERGY, flat["key"][idx])
        smeared = flat["E"][idx] + gauss * photon_energy_resolution(flat["E"][idx], eta, p)
        energy = np.maximum(smeared, 0.0)
        efficiency = photon_efficiency(energy / np.cosh(eta), eta, p)
        found = self.random.uniform(PHOTON_FOUND, flat["key"][idx]) < efficiency
        keep = _isolated(flat, visible, idx, found, energy / np.cosh(eta), p)
        idx, energy, eta = idx[keep], energy[keep], eta[keep]
        values = {"PT": energy / np.cosh(eta), "Eta": eta, "Phi": flat["phi"][idx], "E": energy,
                  "Origin": flat["origin"][idx]}
        return _by_pt(_jagged(flat, _mask(flat, idx), values)), idx

    def _muons(self, flat: dict, visible: np.ndarray) -> tuple[ak.Array, np.ndarray]:
        p = self.parameters["muon"]
        idx = np.flatnonzero(np.abs(flat["pdgId"]) == 13)
        true_pt, eta = flat["pt"][idx], flat["eta"][idx]
        gauss = self.random.normal(MUON_PT, flat["key"][idx])
        pt = np.maximum(true_pt * (1.0 + gauss * muon_pt_resolution(true_pt, eta, p)), 0.0)
        found = self.random.uniform(MUON_FOUND, flat["key"][idx]) < muon_efficiency(pt, eta, p)
        keep = _isolated(flat, visible, idx, found, pt, p)
        idx, pt, eta = idx[keep], pt[keep], eta[keep]
        values = {"PT": pt, "Eta": eta, "Phi": flat["phi"][idx],
                  "Charge": np.where(flat["pdgId"][idx] > 0, -1, 1), "Origin": flat["origin"][idx]}
        return _by_pt(_jagged(flat, _mask(flat, idx), values)), idx

    def _jets(self, flat: dict, jet_in: np.ndarray, truth: TruthEvents) -> ak.Array:
        p, pb = self.parameters["jet"], self.parameters["btag"]
        parts = _jagged(flat, jet_in, {"px": flat["px"][jet_in], "py": flat["py"][jet_in],
                                       "pz": flat["pz"][jet_in], "E": flat["E"][jet_in]})
        raw = jetlib.cluster_jets(parts, p["radius"], p["cluster_pt_min_gev"])
        counts = ak.to_numpy(ak.num(raw))
        pt, eta, phi, mass = (ak.to_numpy(ak.flatten(raw[k])) for k in ("pt", "eta", "phi", "mass"))
        energy = np.sqrt((pt * np.cosh(eta)) ** 2 + mass**2)
        keys = _object_keys(truth.numbers, counts)  # jets in clustering (pT) order
        gauss = self.random.normal(JET_ENERGY, keys)
        scale = np.maximum(1.0 + gauss * jet_energy_resolution(energy, p), 0.0)
        jets = ak.unflatten(ak.zip({"pt": pt * scale, "eta": eta, "phi": phi, "mass": mass * scale,
                                    "key": keys}), counts)
        jets = jets[(jets.pt > p["pt_min_gev"]) & (abs(jets.eta) < p["abs_eta_max"])]
        b_hadrons, c_hadrons = (h[h.pt > pb["hadron_pt_min_gev"]] for h in (truth.b_hadrons, truth.c_hadrons))
        flavour = jetlib.hadron_flavour(jets, b_hadrons, c_hadrons, pb["delta_r"])
        n = ak.num(jets)
        flat_jets = {k: ak.to_numpy(ak.flatten(jets[k])) for k in ("pt", "eta", "phi", "mass")}
        flat_flavour = ak.to_numpy(ak.flatten(flavour))
        prob = tag_probability(flat_jets["pt"], flat_jets["eta"], flat_flavour, pb)
        tagged = self.random.uniform(JET_TAG, ak.to_numpy(ak.flatten(jets.key))) < prob
        values = {"PT": flat_jets["pt"], "Eta": flat_jets["eta"], "Phi": flat_jets["phi"],
                  "Mass": flat_jets["mass"], "BTag": tagged.astype(np.uint32), "Flavor": flat_flavour}
        return _by_pt(ak.unflatten(ak.zip(values), n))


def _by_pt(objects: ak.Array) -> ak.Array:
    return objects[ak.argsort(objects.PT, axis=1, ascending=False)]


__all__ = ["DEFAULT_PARAMETERS", "CounterRandom", "ParametrizedDetector", "detector_parameters",
           "photon_energy_resolution", "photon_efficiency", "muon_pt_resolution", "muon_efficiency",
           "jet_energy_resolution", "tag_probability"]
