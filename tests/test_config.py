"""Configuration schema: defaults, typo detection, paths in messages, and the shipped configs."""

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lhcflow.config import ConfigError, load_config, sample_selection, validate_config
from lhcflow.seeds import MAX_SEED, derive_seed

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def default_config():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml"])
def test_shipped_configs_validate(name):
    config = load_config(REPO / "config" / name)
    assert config["samples"]
    for sample in config["samples"].values():
        assert sample["jets"] == {"radius": 0.4, "pt_min_gev": 20.0, "abs_eta_max": None}


def test_defaults_are_filled(default_config):
    config = validate_config(default_config)
    pythia = config["samples"]["zjets_pythia"]["pythia"]
    assert pythia["sqrt_s_gev"] == 13000.0 and pythia["isr"] and pythia["mpi"] and pythia["hadronization"]
    assert config["split"]["fractions"] == {"train": 0.45, "val": 0.1, "test": 0.45}
    assert config["selection"]["muons"]["opposite_charge"] is True
    # validation does not modify its input
    assert "pythia" not in default_config["samples"]["zjets_pythia"]


def test_typo_is_reported_with_path_and_suggestion(default_config):
    bad = copy.deepcopy(default_config)
    bad["samples"]["zjets_pythia"]["n_event"] = 10
    with pytest.raises(ConfigError, match=r"samples\.zjets_pythia: unknown key 'n_event' \(did you mean 'n_events'\?\)"):
        validate_config(bad, source="my.yaml")


def test_wrong_type_and_missing_required_key(default_config):
    bad = copy.deepcopy(default_config)
    bad["samples"]["zjets_pythia"]["n_shards"] = "two"
    del bad["samples"]["zjets_mg5_ckkwl"]["file"]
    with pytest.raises(ConfigError) as info:
        validate_config(bad, source="my.yaml")
    message = str(info.value)
    assert "my.yaml: samples.zjets_pythia.n_shards: 'two' is not of type 'integer'" in message
    assert "samples.zjets_mg5_ckkwl: 'file' is a required property" in message


def test_unknown_sample_kind(default_config):
    bad = copy.deepcopy(default_config)
    bad["samples"]["zjets_pythia"]["kind"] = "sherpa"
    with pytest.raises(ConfigError, match=r"samples\.zjets_pythia\.kind: 'sherpa' is not one of"):
        validate_config(bad)


def test_missing_empty_and_bad_yaml_files_give_one_line_with_file_and_line(tmp_path):
    with pytest.raises(ConfigError, match=r"^configuration file .*nope.yaml does not exist$"):
        load_config(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("run: x\nsamples: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken.yaml:3:1: not valid YAML: while parsing a flow sequence"):
        load_config(broken)
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match=r"empty.yaml: the file is empty"):
        load_config(empty)
    listed = tmp_path / "list.yaml"
    listed.write_text("- run: x\n")
    with pytest.raises(ConfigError, match=r"list.yaml: the top level is a list, not a mapping"):
        load_config(listed)
    for path in (tmp_path / "nope.yaml", broken, empty, listed):
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert "\n" not in str(info.value)


def test_duplicate_keys_are_refused_with_both_lines(tmp_path):
    text = (REPO / "config" / "config.yaml").read_text()
    path = tmp_path / "dup.yaml"
    path.write_text(text.replace("    n_events: 40000\n", "    n_events: 40000\n    n_events: 4\n", 1))
    line = text.splitlines().index("    n_events: 40000") + 1
    with pytest.raises(ConfigError, match=rf"dup.yaml:{line + 1}:5: samples.zjets_pythia.n_events: duplicate key 'n_events' \(first at line {line}\)"):
        load_config(path)
    # a second block of the same name, deeper in the file
    path.write_text(text + "\nsamples:\n  other: {kind: pythia, n_events: 10}\n")
    with pytest.raises(ConfigError, match=r"dup.yaml:\d+:1: samples: duplicate key 'samples'"):
        load_config(path)


def test_merge_keys_and_aliases_are_not_duplicates():
    from lhcflow.strict_yaml import parse_yaml

    text = "base: &b {a: 1, b: 2}\nuse:\n  <<: *b\n  a: 3\nsame: *b\n"
    assert parse_yaml(text) == {"base": {"a": 1, "b": 2}, "use": {"a": 3, "b": 2}, "same": {"a": 1, "b": 2}}


@pytest.mark.parametrize("text, value", [("1e-3", 1e-3), ("1.0e-3", 1e-3), ("1e6", 1e6), ("1.0e6", 1e6),
                                         ("-2.5E+2", -250.0), (".5", 0.5), ("3.", 3.0), ("1_000.5", 1000.5),
                                         ("10", 10), ("'1e-3'", "1e-3"), ("yes", True), (".inf", float("inf"))])
def test_numbers_are_yaml_1_2_numbers(text, value):
    """PyYAML (YAML 1.1) reads 1e-3 and 1.0e6 as strings; the config reader reads them as numbers."""
    from lhcflow.strict_yaml import parse_yaml

    parsed = parse_yaml(f"x: {text}")["x"]
    assert parsed == value and type(parsed) is type(value)


def test_config_files_merge_as_snakemake_merges_them(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("run: a\nseed: 3\nplots: {format: pdf}\n")
    second.write_text("run: b\nplots: {reference: null}\n")
    config = load_config([first, second], overrides={"seed": 4})
    assert config["run"] == "b" and config["seed"] == 4 and config["plots"] == {"format": "pdf", "reference": None}


def test_sample_selection_merges_overrides(default_config):
    config = validate_config(default_config)
    cms = sample_selection(config, "cms2010_dimuon")
    assert cms["jets"]["min"] == 0 and cms["jets"]["keep"] == 3 and cms["jets"]["pt_min_gev"] == 20.0
    assert sample_selection(config, "zjets_pythia")["jets"]["min"] == 1


def test_derived_seeds_are_stable_and_distinct():
    a = derive_seed(7, "generate", "zjets", 0)
    assert a == derive_seed(7, "generate", "zjets", 0)
    seeds = {derive_seed(7, "generate", "zjets", i) for i in range(1000)}
    assert len(seeds) == 1000 and all(0 < s < MAX_SEED for s in seeds)
    assert derive_seed(8, "generate", "zjets", 0) != a


def _snakemake(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "snakemake", *args], check=False, cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_workflow_dry_run_lists_every_stage():
    result = _snakemake("-n", "--forceall", "--quiet", "rules")
    assert result.returncode == 0, result.stderr
    for rule in ("generate_shard", "ingest", "control_plots", "compare_samples", "cutflow_table", "run_info",
                 "merging_plots"):
        assert rule in result.stdout + result.stderr


def test_workflow_refuses_config_typo(tmp_path, default_config):
    bad = copy.deepcopy(default_config)
    bad["samples"]["zjets_pythia"]["pythia"] = {"sqrt_s": 13000}
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(bad))
    result = _snakemake("-n", "--configfile", str(path))
    assert result.returncode != 0
    assert "samples.zjets_pythia.pythia: unknown key 'sqrt_s' (did you mean 'sqrt_s_gev'?)" in result.stderr + result.stdout


def test_thj_cross_references(default_config):
    bad = copy.deepcopy(default_config)
    bad["thj"]["distributions"] = ["alpha00", "train"]
    with pytest.raises(ConfigError) as info:
        validate_config(bad)
    message = str(info.value)
    assert "thj.distributions: unknown sample 'alpha00' (did you mean 'alpha0'?)" in message
    assert "thj.distributions: sample 'train' has α uniform" in message
    bad = copy.deepcopy(default_config)
    bad["thj"]["integrator"]["config"]["iteration"] = 3
    with pytest.raises(ConfigError, match=r"thj.integrator.config: unknown key 'iteration' \(did you mean 'iterations'\?\)"):
        validate_config(bad)
    bad = copy.deepcopy(default_config)
    bad["thj"]["samples"]["alpha0"]["alpha_deg"] = 270
    with pytest.raises(ConfigError, match=r"thj.samples.alpha0.alpha_deg: 270 is greater than the maximum of 180"):
        validate_config(bad)


def test_mem_cross_references(default_config):
    bad = copy.deepcopy(default_config)
    bad["mem"]["datasets"]["leptonic"]["test"] = ["alpha0", "alpha46"]
    bad["mem"]["datasets"]["leptonic"]["transfers"] = ["cin"]
    bad["mem"]["datasets"]["hadronic"] = {}
    bad["mem"]["transfers"]["acceptance"] = {"kind": "cinn", "variable_jets": True}
    with pytest.raises(ConfigError) as info:
        validate_config(bad)
    message = str(info.value)
    assert "mem.datasets.leptonic.test: unknown 'alpha46' (did you mean 'alpha45'?)" in message
    assert "mem.datasets.leptonic.transfers: unknown 'cin' (did you mean 'cinn'?)" in message
    assert "mem.datasets: unknown 'hadronic'" in message
    assert "mem.transfers.acceptance: the name is reserved" in message
    assert "mem.transfers.acceptance: variable_jets needs kind transfermer or transfusion" in message
    bad = copy.deepcopy(default_config)
    bad["mem"]["transfers"]["cinn"]["kind"] = "cinm"
    with pytest.raises(ConfigError, match=r"mem.transfers.cinn.kind"):
        validate_config(bad)


def test_installed_package_validates_configs_without_a_checkout(tmp_path):
    """The schema is package data: a wheel of lhcflow holds it, and lhcflow installed from that wheel
    validates a config from a directory that is no checkout."""
    import importlib.metadata
    import zipfile

    from packaging.version import Version

    if Version(importlib.metadata.version("setuptools")) < Version("77"):
        pytest.skip("building the wheel offline needs setuptools >= 77 (pyproject's build requirement)")
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(REPO)], check=True,
                   capture_output=True, timeout=300)
    (wheel,) = wheels.glob("lhcflow-*.whl")
    assert "lhcflow/schemas/config.schema.yaml" in zipfile.ZipFile(wheel).namelist()
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True,
                   capture_output=True, timeout=300)
    check = ("import sys, lhcflow, yaml; from lhcflow.config import validate_config; "
             f"assert lhcflow.__file__.startswith({str(target)!r}), lhcflow.__file__; "
             f"validate_config(yaml.safe_load(open({str(REPO / 'config' / 'config.yaml')!r}))); print('valid')")
    run = subprocess.run([sys.executable, "-c", check], check=False, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(target)})
    assert run.returncode == 0 and run.stdout.strip() == "valid", run.stderr


def test_counts_written_as_numbers_are_ints_and_fractions_are_refused(default_config):
    good = copy.deepcopy(default_config)
    good["samples"]["zjets_pythia"]["n_events"] = 1e6  # what the reader makes of `n_events: 1e6`
    good["thj"]["samples"]["train"]["n_events"] = 2.0e4
    config = validate_config(good)
    assert type(config["samples"]["zjets_pythia"]["n_events"]) is int
    assert config["samples"]["zjets_pythia"]["n_events"] == 1_000_000
    assert type(config["thj"]["samples"]["train"]["n_events"]) is int
    bad = copy.deepcopy(default_config)
    bad["samples"]["zjets_pythia"]["n_events"] = 1000000.5
    with pytest.raises(ConfigError, match=r"samples.zjets_pythia.n_events: 1000000.5 is not a whole number"):
        validate_config(bad)
    bad["samples"]["zjets_pythia"]["n_events"] = 1e25
    with pytest.raises(ConfigError, match=r"n_events: 1e\+25 is greater than the maximum of 1e\+10; at most 1e10"):
        validate_config(bad)


def test_ordered_pairs_count_a_left_out_key_with_its_default(default_config):
    bad = copy.deepcopy(default_config)
    bad["samples"]["zjets_pythia"]["pythia"] = {"mll_max_gev": 40.0}  # default mll_min_gev 50
    with pytest.raises(ConfigError, match=r"pythia: mll_min_gev = 50.0 is not below mll_max_gev = 40.0"):
        validate_config(bad)
    bad["samples"]["zjets_pythia"]["pythia"] = {"mll_min_gev": 60.0, "mll_max_gev": 60.0}
    with pytest.raises(ConfigError, match=r"the range is empty"):
        validate_config(bad)


def test_every_min_max_pair_of_the_schema_is_ordered():
    """Sibling keys that differ only by min <-> max (mll_min_gev/mll_max_gev, min/max, n_min/n_max,
    min_iterations/max_iterations) are listed in their object's orderedPairs."""
    import re

    from lhcflow.config import load_schema

    def objects(node):
        if isinstance(node, dict):
            if isinstance(node.get("properties"), dict):
                yield node
            for value in node.values():
                yield from objects(value)
        elif isinstance(node, list):
            for value in node:
                yield from objects(value)

    found = 0
    for obj in objects(load_schema()):
        names = set(obj["properties"])
        ordered = {(low, high) for low, high, _ in obj.get("orderedPairs", [])}
        for name in names:
            partner = re.sub(r"(^|_)min(_|$)", r"\1max\2", name)
            if partner != name and partner in names:
                found += 1
                assert (name, partner) in ordered, f"{name}/{partner} not in orderedPairs of {sorted(names)}"
    assert found >= 4


def test_sample_kind_keys_cover_the_schema():
    """Every key of the sample schema belongs to at least one kind, and LHE showers take only the Pythia
    switches (no beams, process or mass window)."""
    from lhcflow.config import load_schema
    from lhcflow.config_checks import LHE_PYTHIA_KEYS, SAMPLE_KEYS

    schema = load_schema()["$defs"]
    assert set().union(*SAMPLE_KEYS.values()) == set(schema["sample"]["properties"])
    assert LHE_PYTHIA_KEYS < set(schema["pythia"]["properties"])
    assert not LHE_PYTHIA_KEYS & {"sqrt_s_gev", "processes", "pthat_min_gev", "mll_min_gev", "mll_max_gev"}


def test_paper_split_without_validation_events_is_allowed(default_config):
    """val may be 0 (config/paper.yaml): the generators then keep their last epoch; train and test may not."""
    config = copy.deepcopy(default_config)
    config["split"] = {"fractions": {"train": 0.5, "val": 0.0, "test": 0.5}}
    assert validate_config(config)["split"]["fractions"]["val"] == 0.0


# ------------------------------------------------------------------ the schema types the blocks code consumes
# Each typed block lists the keys its consumer takes; these tests keep the two in step.


def _defs():
    from lhcflow.config import load_schema

    return load_schema()["$defs"]


def _parameters(function) -> set[str]:
    import inspect

    return set(inspect.signature(function).parameters) - {"self"}


def test_integrator_settings_are_the_integrators():
    from lhcflow.nis.madnis_wrapper import ACTIVATIONS
    from lhcflow.nis.settings import DEFAULT_MADNIS_CONFIG, DEFAULT_VEGAS_CONFIG, DEFAULT_VEGAS_INIT, PRESETS

    defs = _defs()
    assert set(defs["vegas_config"]["properties"]) == set(DEFAULT_VEGAS_CONFIG)
    madnis = defs["madnis_config"]["properties"]
    assert set(madnis) == set(DEFAULT_MADNIS_CONFIG) | {"preset"}
    assert set(madnis["vegas_init"]["properties"]) == set(DEFAULT_VEGAS_INIT)
    assert set(madnis["preset"]["enum"]) == set(PRESETS)
    assert set(madnis["activation"]["enum"]) == set(ACTIVATIONS)


def test_integrand_parameters_are_the_builders_arguments():
    from lhcflow.nis.drell_yan import DIAGRAMS, drell_yan_integrand
    from lhcflow.nis.toys import CROSSED_RING_SETUPS, PRIOR_NAMES, camel_integrand, crossed_ring_integrand

    defs = _defs()
    assert set(defs["camel_parameters"]["properties"]) - {"name"} == _parameters(camel_integrand)
    assert set(defs["crossed_ring_parameters"]["properties"]) - {"name"} == _parameters(crossed_ring_integrand)
    assert set(defs["drell_yan_parameters"]["properties"]) - {"name"} == _parameters(drell_yan_integrand) - {"ew", "device"}
    assert set(defs["crossed_ring_parameters"]["properties"]["prior"]["enum"]) == set(PRIOR_NAMES)
    assert set(defs["drell_yan_parameters"]["properties"]["channels"]["items"]["enum"]) == set(DIAGRAMS)
    pattern = defs["crossed_ring_parameters"]["properties"]["channels"]["anyOf"][0]["pattern"]
    import re

    assert all(re.match(pattern, setup) for setup in CROSSED_RING_SETUPS)


def test_thj_blocks_are_the_showers_selections_and_detectors():
    from lhcflow.detector.parametrized import DEFAULT_PARAMETERS
    from lhcflow.thj.reco import SELECTION_DEFAULTS
    from lhcflow.thj.shower import DETECTOR_KEYS, SHOWER_DEFAULTS, W_DECAYS

    defs = _defs()
    assert set(defs["thj_shower"]["properties"]) == set(SHOWER_DEFAULTS)
    assert set(defs["thj_shower"]["properties"]["w_decay"]["enum"]) == set(W_DECAYS)
    assert set(defs["thj_selection"]["properties"]) == set(SELECTION_DEFAULTS)
    detector = defs["detector"]
    assert set(detector["properties"]["kind"]["enum"]) == set(DETECTOR_KEYS)
    assert set(detector["then"]["properties"]) == DETECTOR_KEYS["delphes"]
    assert set(detector["else"]["properties"]) == DETECTOR_KEYS["parametrized"]
    groups = defs["detector_parameters"]["properties"]
    assert set(groups) == set(DEFAULT_PARAMETERS)
    for group, values in DEFAULT_PARAMETERS.items():
        assert set(groups[group]["properties"]) == set(values), group
        for key, default in values.items():
            if isinstance(default, list):
                assert groups[group]["properties"][key]["minItems"] == len(default) == groups[group]["properties"][key]["maxItems"]


def test_network_blocks_are_constructor_arguments():
    from lhcflow.classifier import ClassifierConfig
    from lhcflow.mem.transfer import TRANSFORMER_HEADS, TRANSFORMER_KEYS
    from lhcflow.mem.transformer import TransferTransformer
    from lhcflow.models import ConditionalCFM, ConditionalINN

    defs = _defs()
    assert set(defs["inn_network"]["properties"]) <= _parameters(ConditionalINN.__init__)
    assert set(defs["binn_network"]["properties"]) <= _parameters(ConditionalINN.__init__)
    assert set(defs["cfm_network"]["properties"]) <= _parameters(ConditionalCFM.__init__)
    # transformer kinds: each key maps to an argument of the transformer or of the kind's head, and back
    assert set(TRANSFORMER_KEYS.values()) <= _parameters(TransferTransformer.__init__)
    for kind, (head, keys) in TRANSFORMER_HEADS.items():
        assert set(keys.values()) <= _parameters(head.__init__), kind
        assert set(defs[f"{kind}_network"]["properties"]) == set(TRANSFORMER_KEYS) - {"n_extra_max"} | set(keys)
    assert not {k for k in defs["transfermer_network"]["properties"] if k.startswith("cfm_")}
    assert not {"subnet_layers", "subnet_hidden", "bins", "bayesian"} & set(defs["transfusion_network"]["properties"])
    fields = set(ClassifierConfig.__dataclass_fields__)
    assert set(defs["classifier_network"]["properties"]) | set(defs["classifier_training"]["properties"]) <= fields


def test_mem_settings_on_the_workflow_path_come_from_the_schema(default_config):
    """MemSettings' own defaults (vegas off, a 36-point alpha grid) differ from the schema's (vegas on, 5
    points): the schema fills every MemSettings field of mem.integration and of mem.closure.mem, so the
    workflow passes them all and no MemSettings default is used."""
    from dataclasses import fields

    import numpy as np

    from lhcflow.mem.closure import DEFAULT_CLOSURE_CONFIG, closure_config
    from lhcflow.mem.integration import MemSettings

    config = validate_config(default_config)
    settings_keys = {f.name for f in fields(MemSettings)} - {"seed", "alpha_grid"} | {"alpha_grid_deg"}
    integration = {k: v for k, v in config["mem"]["integration"].items() if k != "chunk_size"}
    assert set(integration) == settings_keys
    settings = MemSettings.from_dict(integration)
    assert settings.vegas is True and np.allclose(settings.alpha_grid, np.radians([-90, -45, 0, 45, 90]))
    closure = config["mem"]["closure"]
    assert set(closure["mem"]) == settings_keys
    # the closure runs as before the schema carried its settings: DEFAULT_CLOSURE_CONFIG over MemSettings' defaults
    assert {k: v for k, v in closure.items() if k not in ("enabled", "mem")} == {
        **{k: v for k, v in DEFAULT_CLOSURE_CONFIG.items() if k not in ("mem", "figure_format")},
        **{k: v for k, v in default_config["mem"]["closure"].items() if k != "mem"}}
    before = MemSettings.from_dict(closure_config({"mem": default_config["mem"]["closure"]["mem"]})["mem"])
    assert MemSettings.from_dict(closure["mem"]) == before
    assert before.vegas is False and len(before.alpha_grid) == 36
    empty = validate_config({"mem": {"closure": {}}})["mem"]["closure"]["mem"]
    assert MemSettings.from_dict(empty) == MemSettings.from_dict(DEFAULT_CLOSURE_CONFIG["mem"])


def test_command_line_check_names_file_and_line(tmp_path):
    """python -m lhcflow.config: what Snakemake's own --configfile reader cannot say (invalid YAML: where)."""
    broken = tmp_path / "broken.yaml"
    broken.write_text((REPO / "config" / "config.yaml").read_text().replace("    n_shards: 4\n", "      n_shards: 4\n"))
    run = subprocess.run([sys.executable, "-m", "lhcflow.config", str(broken)], check=False, capture_output=True,
                         text=True, timeout=120, cwd=REPO)
    assert run.returncode == 1 and f"lhcflow: {broken}:11:" in run.stderr and "not valid YAML" in run.stderr, run.stderr
    run = subprocess.run([sys.executable, "-m", "lhcflow.config", "config/config.yaml"], check=False,
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert run.returncode == 0 and run.stdout.strip() == "config/config.yaml: valid", run.stderr
