"""A corpus of broken configs, each config/config.yaml with one small edit, refused at config load with
its file and key path in the message; a handful also through ``snakemake -n``, which must stop before
scheduling (exit status != 0, the key path on stderr, no results/ directory). Positive cases: the shipped
configs validate, and exponents (1e-3, 1e6) are read as numbers.

The silent-wrong and late-failing configs of issue 17 are here: reversed ranges ran M_mumu from 138 to
524 GeV, duplicate keys ran 4 events, split fractions were rescaled, typos in untyped blocks were
ignored, keys of another sample kind were ignored, an unknown diagnostics sample dropped its job,
``run: '..'`` wrote into the repository, 1e25 events started a run, NaN cuts failed as "no event passes".
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from lhcflow.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[1]
BASE = (REPO / "config" / "config.yaml").read_text()


def edit(*pairs: tuple[str, str], append: str = "") -> Callable[[str], str]:
    """Replace each ``old`` (which must occur exactly once) by ``new``, then append ``append``."""

    def apply(text: str) -> str:
        for old, new in pairs:
            assert text.count(old) == 1, f"corpus edit: {old!r} occurs {text.count(old)} times"
            text = text.replace(old, new)
        return text + append

    return apply


@dataclass(frozen=True)
class Broken:
    name: str
    category: str
    change: Callable[[str], str]
    path: str | None           # the key path the message names (None: a YAML syntax error, file and line)
    says: str = ""             # and a fragment of what it says


PYTHIA = "    kind: pythia\n    n_events: 40000\n    n_shards: 4\n"
ROOT = "    layout: flat\n"
LHE = "    file: ../shared/data/mg5_zjets_ckkwl_7tev_zmumu.lhe.gz\n"
INN = "      network: {n_blocks: 8, hidden: 128, layers_per_block: 2, bins: 16}\n      training: {epochs: 50"
MEM_INTEGRATION = "target_rel_error: 0.05"
CROSSED_VEGAS = "integrand: {channels: ring_line, prior: optimal}, config: {iterations: 5"
DY_SCAN = "scan: {parameter: zprime_width, values: [0.0005, 0.5, 50.0]"

CORPUS = [
    # --- YAML: duplicate keys (the last one used to win), syntax, empty
    Broken("duplicate_n_events", "yaml", edit((PYTHIA, PYTHIA.replace("40000\n", "40000\n    n_events: 4\n"))),
           "samples.zjets_pythia.n_events", "duplicate key 'n_events' (first at line 10)"),
    Broken("duplicate_samples_block", "yaml", edit(append="\nsamples:\n  other: {kind: pythia, n_events: 10}\n"),
           "samples", "duplicate key 'samples'"),
    Broken("duplicate_in_flow_mapping", "yaml", edit((INN, INN.replace("hidden: 128,", "hidden: 128, hidden: 64,"))),
           "zjets.models.inn.network.hidden", "duplicate key 'hidden'"),
    Broken("yaml_syntax", "yaml", edit(("plots:\n  reference: zjets_pythia\n", "plots:\n  reference: [zjets_pythia\n")),
           None, "not valid YAML"),
    Broken("yaml_bad_indent", "yaml", edit(("    n_shards: 4\n", "      n_shards: 4\n")), None, "not valid YAML"),
    Broken("empty_file", "yaml", lambda text: "# " + text.replace("\n", "\n# "), None, "the file is empty"),
    # --- reversed or empty ranges
    Broken("mll_reversed", "range", edit((PYTHIA, PYTHIA + "    pythia: {mll_min_gev: 150, mll_max_gev: 50}\n")),
           "samples.zjets_pythia.pythia", "mll_min_gev = 150 is not below mll_max_gev = 50"),
    Broken("mll_empty", "range", edit((PYTHIA, PYTHIA + "    pythia: {mll_min_gev: 91, mll_max_gev: 91}\n")),
           "samples.zjets_pythia.pythia", "the range is empty"),
    Broken("mll_below_default_min", "range", edit((PYTHIA, PYTHIA + "    pythia: {mll_max_gev: 40}\n")),
           "samples.zjets_pythia.pythia", "mll_min_gev = 50.0 is not below mll_max_gev = 40"),
    Broken("selection_reversed", "range", edit(append="\nselection:\n  muons: {min: 2, max: 2, keep: 2}\n"
                                                      "  jets: {min: 3, max: 1, keep: 3}\n"),
           "selection.jets", "min = 3 is above max = 1"),
    Broken("sample_selection_empty_when_merged", "range",
           edit(("    selection:\n      jets: {min: 0}\n", "    selection:\n      jets: {min: 0}\n      muons: {max: 1}\n")),
           "samples.cms2010_dimuon.selection", "muons: min = 2 is above max = 1"),
    Broken("hard_classifier_selection_empty", "range",
           edit(("      jets: {abs_eta_max: 2.4}\n", "      jets: {abs_eta_max: 2.4, max: 0}\n")),
           "hard_classifiers.zjets_acceptance.selection", "jets: min = 1 is above max = 0"),
    Broken("multiplicity_classes_reversed", "range", edit(("    n_min: 1\n    n_max: 3\n", "    n_min: 3\n    n_max: 1\n")),
           "hard_classifiers.zjets_multiplicity", "n_min = 3 is above n_max = 1"),
    Broken("mem_iterations_reversed", "range", edit(("min_iterations: 2, max_iterations: 4", "min_iterations: 5, max_iterations: 4")),
           "mem.integration", "min_iterations = 5 is above max_iterations = 4"),
    Broken("one_cycle_reversed", "range", edit(("lr_start: 1.0e-4, lr_max: 1.0e-3}\n    binn:", "lr_start: 1.0e-2, lr_max: 1.0e-3}\n    binn:")),
           "zjets.models.inn.training", "lr_start = 0.01 is above lr_max = 0.001"),
    Broken("camel_box_reversed", "range", edit(("integrand: {channels: flat}}\n        flat_half",
                                                "integrand: {channels: flat, box: [6, 0]}}\n        flat_half")),
           "nis.experiments.camel.variants.flat_uniform.integrand.box", "must increase strictly"),
    # --- NaN and infinities
    Broken("pt_cut_nan", "nan", edit((PYTHIA, PYTHIA + "    jets: {pt_min_gev: .nan}\n")),
           "samples.zjets_pythia.jets.pt_min_gev", ".nan is not a finite number"),
    Broken("target_error_inf", "nan", edit((MEM_INTEGRATION, "target_rel_error: .inf")),
           "mem.integration.target_rel_error", ".inf is not a finite number"),
    Broken("scan_value_nan", "nan", edit((DY_SCAN, DY_SCAN.replace("0.5,", ".nan,"))),
           "nis.experiments.drell_yan_width.scan.values.1", ".nan is not a finite number"),
    # --- counts
    Broken("more_shards_than_events", "count", edit(("    n_events: 40000\n    n_shards: 4\n", "    n_events: 3\n    n_shards: 4\n")),
           "samples.zjets_pythia.n_shards", "4 shards for 3 events"),
    Broken("thj_more_shards_than_events", "count", edit(("alpha0: {alpha_deg: 0, n_events: 1000}", "alpha0: {alpha_deg: 0, n_events: 1000, shards: 2000}")),
           "thj.samples.alpha0.shards", "2000 shards for 1000 events"),
    Broken("absurd_event_count", "count", edit(("n_events: 40000", "n_events: 1e25")),
           "samples.zjets_pythia.n_events", "greater than the maximum of 1e+10; at most 1e10 events"),
    Broken("fractional_event_count", "count", edit(("n_events: 40000", "n_events: 1000000.5")),
           "samples.zjets_pythia.n_events", "1000000.5 is not a whole number"),
    Broken("null_event_count_pythia", "count", edit(("n_events: 40000", "n_events: null")),
           "samples.zjets_pythia.n_events", "null is not allowed: kind pythia generates n_events events"),
    Broken("null_event_count_thj", "count", edit(("alpha0: {alpha_deg: 0, n_events: 1000}", "alpha0: {alpha_deg: 0, n_events: null}")),
           "thj.samples.alpha0.n_events", "null is not allowed here"),
    Broken("fractional_shards", "count", edit(("    n_shards: 4\n", "    n_shards: 2.5\n")),
           "samples.zjets_pythia.n_shards", "2.5 is not a whole number"),
    Broken("absurd_nis_events", "count", edit(("variant: madnis_mg5, n_events: 5000}", "variant: madnis_mg5, n_events: 1e11}")),
           "nis.events.n_events", "at most 1e10 events"),
    Broken("event_count_as_text", "count", edit(("n_events: 40000", "n_events: '40000'")),
           "samples.zjets_pythia.n_events", "is not of type 'integer', 'null'"),
    # --- split fractions
    Broken("split_not_one", "split", edit(append="\nsplit:\n  fractions: {train: 0.1, val: 0.1, test: 0.1}\n"),
           "split.fractions", "sum to 0.3, not 1"),
    Broken("split_zero_train", "split", edit(append="\nsplit:\n  fractions: {train: 0, val: 0.5, test: 0.5}\n"),
           "split.fractions.train", "less than or equal to the minimum of 0"),
    # --- keys that do not apply to the sample's kind
    Broken("file_on_pythia", "kind", edit((PYTHIA, PYTHIA + "    file: events.lhe\n")),
           "samples.zjets_pythia.file", "does not apply to a kind pythia sample"),
    Broken("layout_on_pythia", "kind", edit((PYTHIA, PYTHIA + "    layout: nanoaod\n")),
           "samples.zjets_pythia.layout", "does not apply to a kind pythia sample"),
    Broken("on_bad_event_on_pythia", "kind", edit((PYTHIA, PYTHIA + "    on_bad_event: skip\n")),
           "samples.zjets_pythia.on_bad_event", "does not apply to a kind pythia sample"),
    Broken("shards_on_root", "kind", edit((ROOT, ROOT + "    n_shards: 4\n")),
           "samples.cms2010_dimuon.n_shards", "does not apply to a kind root sample"),
    Broken("merging_on_root", "kind", edit((ROOT, ROOT + "    merging: {scheme: none}\n")),
           "samples.cms2010_dimuon.merging", "does not apply to a kind root sample"),
    Broken("mapping_on_lhe", "kind", edit((LHE, LHE + "    mapping: {jet: {pt: Jet_pt}}\n")),
           "samples.zjets_mg5_ckkwl.mapping", "does not apply to a kind lhe sample"),
    Broken("mass_window_on_lhe", "kind", edit((LHE, LHE + "    pythia: {mll_min_gev: 60}\n")),
           "samples.zjets_mg5_ckkwl.pythia.mll_min_gev", "come from the LHE file"),
    # --- references to what does not exist
    Broken("diagnostics_sample_undefined", "reference", edit(("diagnostics: {sample: alpha0,", "diagnostics: {sample: alpha7,")),
           "mem.diagnostics.sample", "it must be a test sample of a MEM dataset"),
    Broken("thj_train_undefined", "reference", edit(("      train: train\n", "      train: trian\n")),
           "thj.datasets.leptonic.train", "unknown sample 'trian' (did you mean 'train'?)"),
    Broken("thj_test_undefined", "reference", edit(("      test: [alpha0, alpha45, alpha90, alpha135, alpha180]\n",
                                                    "      test: [alpha0, alpha46, alpha90, alpha135, alpha180]\n")),
           "thj.datasets.leptonic.test", "unknown sample 'alpha46'"),
    Broken("thj_distribution_undefined", "reference", edit(("distributions: [alpha0,", "distributions: [alpha00,")),
           "thj.distributions", "unknown sample 'alpha00'"),
    Broken("plots_reference_undefined", "reference", edit(("plots:\n  reference: zjets_pythia\n", "plots:\n  reference: zjets_pythai\n")),
           "plots.reference", "unknown sample 'zjets_pythai'"),
    Broken("zjets_sample_undefined", "reference", edit(("zjets:\n  sample: zjets_pythia\n", "zjets:\n  sample: zjet_pythia\n")),
           "zjets.sample", "unknown sample 'zjet_pythia'"),
    Broken("hard_classifier_sample_undefined", "reference",
           edit(("    kind: acceptance\n    sample: zjets_pythia\n", "    kind: acceptance\n    sample: zjets_pythia8\n")),
           "hard_classifiers.zjets_acceptance.sample", "unknown sample 'zjets_pythia8'"),
    Broken("classifier_model_undefined", "reference", edit(("classifier:\n", "classifier:\n  models: [inn, cfn]\n")),
           "classifier.models", "unknown 'cfn' (did you mean 'cfm'?)"),
    Broken("mem_transfer_undefined", "reference", edit(("transfers: [cinn]}", "transfers: [cin]}")),
           "mem.datasets.leptonic.transfers", "unknown 'cin' (did you mean 'cinn'?)"),
    Broken("mem_test_not_in_thj_dataset", "reference", edit(("leptonic: {test: [alpha0, alpha45, alpha90]", "leptonic: {test: [alpha0, alpha45, alpha60]")),
           "mem.datasets.leptonic.test", "unknown 'alpha60'"),
    Broken("nis_events_variant_undefined", "reference", edit(("variant: madnis_mg5, n_events: 5000}", "variant: madnis_mg6, n_events: 5000}")),
           "nis.events.variant", "must be a madnis variant"),
    # --- run names that are not one safe directory name
    Broken("run_parent_directory", "run", edit(("run: default ", "run: '..' ")), "run", "one directory name under results/"),
    Broken("run_with_slash", "run", edit(("run: default ", "run: a/b ")), "run", "one directory name under results/"),
    Broken("run_empty", "run", edit(("run: default ", "run: '' ")), "run", "one directory name under results/"),
    Broken("run_hidden", "run", edit(("run: default ", "run: .hidden ")), "run", "one directory name under results/"),
    Broken("sample_name_with_space", "run", edit(("  zjets_pythia:\n    kind: pythia", "  zjets pythia:\n    kind: pythia")),
           "samples", "'zjets pythia' is not allowed; names are letters, digits and _"),
    # --- typos in blocks that used to be free-form (ignored, or failing only at job time)
    Broken("mem_acceptance_network_typo", "typed", edit(("  acceptance:\n    network: {hidden: 64", "  acceptance:\n    network: {hiden: 64")),
           "mem.acceptance.network", "unknown key 'hiden' (did you mean 'hidden'?)"),
    Broken("mem_acceptance_training_typo", "typed", edit(("    training: {epochs: 20, batch_size: 512, lr: 1.0e-3}\n  sampling:",
                                                          "    training: {epoch: 20, batch_size: 512, lr: 1.0e-3}\n  sampling:")),
           "mem.acceptance.training", "unknown key 'epoch' (did you mean 'epochs'?)"),
    Broken("mem_transfer_network_of_another_kind", "typed",
           edit(("      network: {n_blocks: 6, hidden: 64, layers_per_block: 3, bins: 10}\n      training: {epochs: 30, batch_size: 256, lr_start: 3.0e-4, lr_max: 1.0e-3}\n  acceptance:",
                 "      network: {n_blocks: 6, hidden: 64, layers_per_block: 3, bins: 10, heads: 4}\n      training: {epochs: 30, batch_size: 256, lr_start: 3.0e-4, lr_max: 1.0e-3}\n  acceptance:")),
           "mem.transfers.cinn.network", "unknown key 'heads'"),
    Broken("sampling_network_cfm_key", "typed", edit(("    variant: transfer\n    network: {n_blocks: 6,", "    variant: transfer\n    network: {steps: 20, n_blocks: 6,")),
           "mem.sampling.network", "unknown key 'steps'"),
    Broken("zjets_network_of_another_kind", "typed", edit((INN, INN.replace("bins: 16}", "bins: 16, steps: 30}"))),
           "zjets.models.inn.network", "unknown key 'steps'"),
    Broken("w_decay_typo", "typed", edit(("shower: {w_decay: leptonic,", "shower: {w_decay: leptonik,")),
           "thj.datasets.leptonic.shower.w_decay", "'leptonik' is not one of ['leptonic', 'hadronic']"),
    Broken("thj_selection_typo", "typed", edit(("      train: train\n", "      train: train\n      selection: {jet_pt_min: 30}\n")),
           "thj.datasets.leptonic.selection", "unknown key 'jet_pt_min' (did you mean 'jet_pt_min_gev'?)"),
    Broken("detector_kind_typo", "typed", edit(("detector: {kind: parametrized}", "detector: {kind: parametrised}")),
           "thj.detector.kind", "'parametrised' is not one of"),
    Broken("detector_parameter_typo", "typed", edit(("detector: {kind: parametrized}", "detector: {kind: parametrized, parameters: {jet: {pt_min: 25}}}")),
           "thj.detector.parameters.jet", "unknown key 'pt_min' (did you mean 'pt_min_gev'?)"),
    Broken("delphes_without_card", "typed", edit(("detector: {kind: parametrized}", "detector: {kind: delphes}")),
           "thj.detector", "'card' is a required property"),
    Broken("nis_channel_typo", "typed", edit((CROSSED_VEGAS, CROSSED_VEGAS.replace("ring_line", "ring_lien"))),
           "nis.experiments.crossed_ring.variants.vegas_ring_line.integrand.channels", "'ring_lien' is not valid here"),
    Broken("nis_drell_yan_channel_typo", "typed", edit(("two_fixed: {method: madnis, label: \"2 channels, fixed α\", integrand: {channels: [photon, z]}",
                                                        "two_fixed: {method: madnis, label: \"2 channels, fixed α\", integrand: {channels: [photon, zed]}")),
           "nis.experiments.drell_yan_width.variants.two_fixed.integrand.channels.1", "'zed' is not one of"),
    Broken("nis_integrand_parameter_typo", "typed", edit(("integrand: {name: cut_camel, a1: 0.5}", "integrand: {name: cut_camel, a_1: 0.5}")),
           "nis.experiments.cut_camel.integrand", "unknown key 'a_1' (did you mean 'a1'?)"),
    Broken("vegas_setting_typo", "typed", edit((CROSSED_VEGAS, CROSSED_VEGAS.replace("iterations", "iteration"))),
           "nis.experiments.crossed_ring.variants.vegas_ring_line.config", "unknown key 'iteration' (did you mean 'iterations'?)"),
    Broken("thj_integrator_setting_typo", "typed", edit(("config: {iterations: 6, samples_per_iteration: 20000}", "config: {iteration: 6, samples_per_iteration: 20000}")),
           "thj.integrator.config", "unknown key 'iteration' (did you mean 'iterations'?)"),
    Broken("scan_parameter_typo", "typed", edit((DY_SCAN, DY_SCAN.replace("zprime_width", "zprime_widht"))),
           "nis.experiments.drell_yan_width.scan.parameter", "unknown drell_yan parameter 'zprime_widht'"),
    Broken("madnis_permutations_of_another_coupling", "typed",
           edit(("config: {coupling: affine, permutations: soft, blocks: 6, epochs: 5, batches_per_epoch: 40",
                 "config: {coupling: affine, permutations: log, blocks: 6, epochs: 5, batches_per_epoch: 40")),
           "nis.experiments.crossed_ring.variants.madnis_flat.config", "permutations 'log' do not go with coupling 'affine'"),
    Broken("closure_typo", "typed", edit(("    scan_events: 400\n", "    scan_event: 400\n")),
           "mem.closure", "unknown key 'scan_event' (did you mean 'scan_events'?)"),
    Broken("top_level_typo", "typed", edit(("plots:\n", "plot:\n")), "<top level>", "unknown key 'plot' (did you mean 'plots'?)"),
]

# a handful through `snakemake -n` (each costs a Snakemake start): one per kind of check
THROUGH_SNAKEMAKE = ["duplicate_n_events", "mll_reversed", "absurd_event_count", "file_on_pythia",
                     "run_parent_directory", "diagnostics_sample_undefined", "split_not_one"]


def test_the_corpus_is_large_and_covers_every_category():
    assert len(CORPUS) >= 40
    assert len({b.name for b in CORPUS}) == len(CORPUS)
    assert {b.category for b in CORPUS} == {"yaml", "range", "nan", "count", "split", "kind", "reference", "run",
                                            "typed"}
    assert set(THROUGH_SNAKEMAKE) <= {b.name for b in CORPUS}


def _write(tmp_path: Path, broken: Broken) -> Path:
    text = broken.change(BASE)
    assert text != BASE
    path = tmp_path / f"{broken.name}.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("broken", CORPUS, ids=lambda b: b.name)
def test_broken_config_is_refused_at_load_with_its_key_path(broken, tmp_path):
    path = _write(tmp_path, broken)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    if broken.path is None:
        assert re.search(rf"{re.escape(str(path))}:\d+:\d+: ", message) or f"{path}: " in message, message
    else:
        # the problem is reported at the key path, after the file name (and for YAML errors its line)
        assert re.search(rf"{re.escape(str(path))}(:\d+:\d+)?: {re.escape(broken.path)}(?!\w)", message), message
    assert broken.says in message, message


def _snakemake(workdir: Path, config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", "-n", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
                           "--configfile", str(config)], check=False, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("name", THROUGH_SNAKEMAKE)
def test_broken_config_stops_snakemake_before_scheduling(name, tmp_path):
    broken = next(b for b in CORPUS if b.name == name)
    config = _write(tmp_path, broken)
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = _snakemake(workdir, config)
    assert result.returncode != 0
    assert broken.path in result.stderr and broken.says in result.stderr, result.stderr
    assert f"{config.name}" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Building DAG" not in result.stdout + result.stderr  # stopped before any job was scheduled
    assert not (workdir / "results").exists() and not (tmp_path / "results").exists()


# ---------------------------------------------------------------------------------------------- positive


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml", *sorted(
    str(p.relative_to(REPO / "config")) for p in (REPO / "config" / "validation").glob("*.yaml"))])
def test_shipped_configs_validate(name):
    config = load_config(REPO / "config" / name)
    assert config["run"]


def test_exponents_are_numbers(tmp_path):
    """1e-3 and 1e6 written as numbers: YAML 1.1 reads 1e-3 and 1.0e6 as strings, the config reader as
    numbers; a count written 4e4 is the integer 40000."""
    path = tmp_path / "exponents.yaml"
    path.write_text(edit(("n_events: 40000", "n_events: 4e4"), (MEM_INTEGRATION, "target_rel_error: 5e-2"),
                         ("  training: {epochs: 30, batch_size: 512, lr: 1.0e-3}\n",
                          "  training: {epochs: 30, batch_size: 512, lr: 1e-3}\n"))(BASE))
    config, reference = load_config(path), load_config(REPO / "config" / "config.yaml")
    assert config == reference
    assert type(config["samples"]["zjets_pythia"]["n_events"]) is int
    assert config["classifier"]["training"]["lr"] == 1e-3 and config["mem"]["integration"]["target_rel_error"] == 0.05
    path.write_text(edit(("n_events: 40000", "n_events: 1e6"))(BASE))
    assert load_config(path)["samples"]["zjets_pythia"]["n_events"] == 1_000_000
