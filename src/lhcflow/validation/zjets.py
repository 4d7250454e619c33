"""Validation rows of the Z+jets generators (thesis Ch. 4): per Fig. 4.4 observable the bulk deviation of
generated and of classifier-reweighted events beside the Train/Truth floor of two independent samples
(§4.2.2), the weighted jet-multiplicity fractions against truth, and the classifier AUC (§4.4).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from lhcflow.validation.claims import Row, Target
from lhcflow.validation.outputs import find_outputs

# Targets at validation size (issue 15): generated pT, H_T and ΔR bulk deviations within 2x the floor;
# M_μμ, whose Z peak the networks smear (Fig. 4.10), within 2x after classifier reweighting.
FLOOR_FACTOR = 2.0
PEAK_OBSERVABLES = ("m_mu1mu2",)


def _base(name: str) -> str:
    """``j1_pt_1j`` -> ``j1_pt``: the observable without its exclusive-multiplicity suffix."""
    head, _, tail = name.rpartition("_")
    return head if tail.endswith("j") and tail[:-1].isdigit() else name


def rows(results_dir: str | Path, only: Iterable[str | Path] | None = None) -> list[Row]:
    out: list[Row] = []
    for path in find_outputs(results_dir, "zjets/*/metrics.json", only):
        model = path.parent.name
        metrics = json.loads(path.read_text())
        classifier_paths = find_outputs(results_dir, f"classifier/{model}/metrics.json", only)
        classifier = json.loads(classifier_paths[0].read_text()) if classifier_paths else None
        out += list(_bulk(model, metrics, classifier))
        out += list(_multiplicities(model, metrics))
        if classifier is not None:
            out.append(Row("zjets", model, "classifier AUC, truth vs generated (held-out halves)", classifier["auc"],
                           Target.info(), "§4.4, Fig. 4.10",
                           note="0.5 for a perfect generator; the thesis quotes no AUC"))
    return out


def _bulk(model: str, metrics: Mapping, classifier: Mapping | None) -> Iterator[Row]:
    n = f"{metrics['n_generated']} generated, {metrics['n_truth']} truth, {metrics['n_train']} train events"
    for name, row in metrics["bulk_deviation"].items():
        peak = _base(name) in PEAK_OBSERVABLES
        yield Row("zjets", model, f"bulk |Gen/Truth − 1|, {name}", row["generated"],
                  Target.info() if peak else Target.at_most_times(FLOOR_FACTOR), "Fig. 4.4",
                  reference=row["train"], reference_label="Train/Truth floor",
                  note=n + ("; M_μμ is judged after reweighting" if peak else ""))
    if classifier is None or "bulk_deviation" not in classifier:
        return
    held = f"held-out halves: {classifier['n_generated']} generated, {classifier['n_truth']} truth events"
    for name, row in classifier["bulk_deviation"].items():
        yield Row("zjets", model, f"bulk |Gen·w/Truth − 1| after reweighting, {name}", row["reweighted"],
                  Target.at_most_times(FLOOR_FACTOR), "Fig. 4.10, §4.4", reference=row["train"],
                  reference_label="Train/Truth floor", note=f"{held}; unweighted generated: {row['generated']:.3g}")


def _multiplicities(model: str, metrics: Mapping) -> Iterator[Row]:
    """Weighted fraction of each jet multiplicity, generated against truth, and the magic-weight closure.

    The chain draws n with the training fractions; with the magic transformation the weights are then
    normalised per multiplicity to them (:func:`~lhcflow.zjets.magic.normalise_multiplicities`), so the
    generated fraction is the training one and carries the training sample's error only. The closure
    ⟨⟨f⟩_n f̄⟩ before that normalisation is the generator's own test (1 if it learned p_f of Eq 4.8)."""
    weights = metrics.get("multiplicity_weights") or {}
    closure = metrics.get("magic_closure") or {}
    gen, truth, train = (weights.get(k) or {} for k in ("generated", "truth", "train"))
    for n in sorted(set(gen) & set(truth), key=int):
        g, t = gen[n], truth[n]
        train_error = (train.get(n) or {}).get("error", 0.0)
        err = train_error if closure else math.hypot(g["error"], train_error)
        note = ("Σw of the multiplicity / Σw; normalised per multiplicity to the training fraction, whose error "
                "it carries" if closure else "Σw of the multiplicity / Σw; error of generated and training sums")
        yield Row("zjets", model, f"weighted fraction of Z + {n} jet{'' if str(n) == '1' else 's'}", g["fraction"],
                  Target.sigma(3), "Eq. 4.9, Fig. 4.4", error=err, reference=t["fraction"], reference_error=t["error"],
                  reference_label="truth", note=note)
    for n in sorted(closure, key=int):
        if str(n) == "1":
            continue  # f = 1 for one jet: the closure is 1 by construction
        c = closure[n]
        yield Row("zjets", model, f"magic-weight closure ⟨⟨f⟩_n f̄⟩, Z + {n} jets", c["mean"], Target.info(),
                  "Eq. 4.7-4.9", error=c["error"], reference=1.0, reference_label="learned p_f",
                  note=f"{c['events']} generated events; above 1 the generator over-populates small ΔR_jj, "
                       "where f is small; normalised out of the fractions")
