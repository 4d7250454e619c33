"""Checks of a configuration that its JSON schema cannot express: numbers that are not finite, keys that
do not apply to a sample's kind, split fractions, shards and events, selections merged from two levels,
named samples, datasets, transfers and variants that exist, settings an integration method knows.

Each check returns a list of ``path: problem`` lines; :func:`lhcflow.config.validate_config` runs
:func:`non_finite_numbers` and :func:`sample_key_problems` on the config as written, the others after
the schema (which fills the defaults), and raises one :class:`~lhcflow.config.ConfigError` listing all.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping


def non_finite_numbers(config: Mapping) -> list[str]:
    """``path: .nan is not a number`` for every NaN or infinity in ``config`` (no key takes one)."""
    problems = []

    def walk(value, path):
        if isinstance(value, float) and not math.isfinite(value):
            text = ".nan" if math.isnan(value) else ("-.inf" if value < 0 else ".inf")
            problems.append(f"{path or '<top level>'}: {text} is not a finite number; NaN and infinities are "
                            "refused everywhere (leave an optional cut out or set it to null instead)")
        elif isinstance(value, Mapping):
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                walk(item, f"{path}.{index}")

    walk(config, "")
    return problems


# Keys of a sample (as written in the config) that each kind uses; any other key would be ignored.
SAMPLE_KEYS: dict[str, frozenset[str]] = {
    "pythia": frozenset({"kind", "n_events", "n_shards", "pythia", "jets", "selection", "cleaning"}),
    "lhe": frozenset({"kind", "file", "n_events", "n_shards", "pythia", "jets", "merging", "on_bad_event",
                      "selection", "cleaning"}),
    "root": frozenset({"kind", "files", "layout", "tree", "mapping", "cleaning", "cross_section_pb",
                       "generator", "selection"}),
}
# Pythia settings an LHE sample's shower uses: beams, process and mass window come from the file.
LHE_PYTHIA_KEYS = frozenset({"isr", "fsr", "mpi", "hadronization", "extra_settings"})
_WHY = {
    "file": "kind lhe showers a file",
    "files": "kind root reads files",
    "n_events": "kind root reads every event of its files",
    "n_shards": "a ROOT sample is read by one ingest job, in steps of ingest.chunk_size",
    "pythia": "kind root events are already generated",
    "jets": "kind root files carry their own jets (mapping.jet)",
    "merging": "merging applies to a multi-jet LHE file",
    "on_bad_event": "only an LHE file can hold bad events",
    "layout": "generated samples are written in lhcflow's own layout",
    "tree": "generated samples are written in lhcflow's own layout",
    "mapping": "generated samples are written in lhcflow's own layout",
    "cross_section_pb": "a generated sample's cross section is the generator's",
    "generator": "a generated sample records its generator itself",
}


def sample_key_problems(config: Mapping) -> list[str]:
    """Keys written in a sample that its kind would ignore (``file:`` on a ``kind: pythia`` sample,
    ``n_shards`` on a ROOT sample, a mass window in the ``pythia`` block of an LHE sample, ...).

    Runs on the config as written, before the schema fills defaults; malformed samples are left to the schema.
    """
    problems = []
    samples = config.get("samples")
    for name, sample in (samples.items() if isinstance(samples, Mapping) else ()):
        if not isinstance(sample, Mapping) or sample.get("kind") not in SAMPLE_KEYS:
            continue
        kind = sample["kind"]
        for key in sample:
            if key in SAMPLE_KEYS[kind] or not any(key in keys for keys in SAMPLE_KEYS.values()):
                continue  # allowed, or unknown everywhere (the schema names it)
            owners = " or ".join(k for k, keys in SAMPLE_KEYS.items() if key in keys)
            problems.append(f"samples.{name}.{key}: does not apply to a kind {kind} sample ({_WHY[key]}); "
                            f"remove it, or set kind {owners} if that is what the sample is")
        if kind == "lhe" and isinstance(sample.get("pythia"), Mapping):
            for key in sorted(set(sample["pythia"]) - LHE_PYTHIA_KEYS):
                problems.append(f"samples.{name}.pythia.{key}: does not apply to a kind lhe sample (beams, "
                                "process and mass window come from the LHE file); an LHE shower takes "
                                f"{', '.join(sorted(LHE_PYTHIA_KEYS))}")
    return problems


def reference_problems(config: Mapping, schema: Mapping) -> list[str]:
    """Cross-references the schema cannot express: named samples, models, variants and parameters exist."""
    samples = config.get("samples", {})
    problems = []

    def check(path: str, name: object) -> None:
        if name is not None and name not in samples:
            hint = difflib.get_close_matches(str(name), list(samples), n=1)
            more = f" (did you mean {hint[0]!r}?)" if hint else f" (samples: {sorted(samples)})"
            problems.append(f"{path}: unknown sample {name!r}{more}")

    if config.get("zjets", {}).get("enabled", True) and "zjets" in config:
        check("zjets.sample", config["zjets"].get("sample"))
    check("plots.reference", config.get("plots", {}).get("reference"))
    for name, task in config.get("hard_classifiers", {}).items():
        check(f"hard_classifiers.{name}.sample", task.get("sample"))
        if task.get("sample") in samples and samples[task["sample"]].get("kind") == "root":
            problems.append(f"hard_classifiers.{name}.sample: {task['sample']!r} is a ROOT sample; the hard-process "
                            "record exists only in samples lhcflow generates (kind pythia or lhe)")
    zjets, classifier = config.get("zjets", {}), config.get("classifier", {})
    if classifier.get("enabled") and classifier.get("models") is not None:
        models = zjets.get("models", {}) if zjets.get("enabled") else {}
        for model in classifier["models"]:
            if model not in models:
                off = "" if zjets.get("enabled") else "; the classifier evaluates zjets models, zjets is off"
                problems.append(_unknown("classifier.models", model, models) + off)
    problems += _nis_problems(config.get("nis", {}), schema)
    problems += _thj_problems(config.get("thj", {}))
    problems += _mem_problems(config.get("mem", {}), config.get("thj", {}))
    return problems


def count_problems(config: Mapping) -> list[str]:
    """Split fractions that sum to 1, no more shards than events, selections (global with a sample's or a
    hard classifier's overrides) that are not empty."""
    from lhcflow.config import sample_selection

    problems = []
    fractions = config.get("split", {}).get("fractions", {})
    total = math.fsum(fractions.values())
    if fractions and abs(total - 1.0) > 1e-9:
        listed = ", ".join(f"{k} {v:g}" for k, v in fractions.items())
        problems.append(f"split.fractions: {listed} sum to {total:.12g}, not 1; give fractions that sum to 1 "
                        "(they are not rescaled)")
    for name, sample in config.get("samples", {}).items():
        n_events, n_shards = sample.get("n_events"), sample.get("n_shards", 1)
        if sample["kind"] != "root" and n_events is not None and n_shards > n_events:
            problems.append(f"samples.{name}.n_shards: {n_shards} shards for {n_events} events would leave "
                            "shards empty; give n_shards <= n_events")
        problems += _selection_problems(f"samples.{name}.selection (merged with the global selection)",
                                        sample_selection(config, name))
    for name, task in config.get("hard_classifiers", {}).items():
        if task.get("sample") in config.get("samples", {}):
            merged = sample_selection(config, task["sample"])
            for kind, cuts in task.get("selection", {}).items():
                merged[kind] = {**merged.get(kind, {}), **cuts}
            where = f"hard_classifiers.{name}.selection (merged with its sample's)"
            problems += _selection_problems(where, merged)
    thj = config.get("thj", {})
    for name, sample in (thj.get("samples", {}).items() if thj.get("enabled") else ()):
        if sample["shards"] > sample["n_events"]:
            problems.append(f"thj.samples.{name}.shards: {sample['shards']} shards for {sample['n_events']} "
                            "events would leave shards empty; give shards <= n_events")
    return problems


def _selection_problems(where: str, selection: Mapping) -> list[str]:
    return [f"{where}: {kind}: min = {cuts['min']} is above max = {cuts['max']}, no event can pass; "
            "give min <= max"
            for kind, cuts in selection.items() if cuts.get("max") is not None and cuts["min"] > cuts["max"]]


def _unknown(where: str, value: str, known) -> str:
    hint = difflib.get_close_matches(str(value), list(known), n=1)
    more = f" (did you mean {hint[0]!r}?)" if hint else f" (known: {sorted(known)})"
    return f"{where}: unknown {value!r}{more}"


def _mem_problems(mem: Mapping, thj: Mapping) -> list[str]:
    """MEM datasets are tHj datasets, their test samples are that dataset's, transfers exist."""
    if not mem.get("enabled", True) or not mem.get("datasets"):
        return []
    if not thj.get("enabled", True):
        return ["mem: the MEM chain needs the tHj chain (thj.enabled: true)"]
    problems = []
    thj_datasets = thj.get("datasets", {})
    transfers = mem.get("transfers", {})
    for name, dataset in mem["datasets"].items():
        if name not in thj_datasets:
            problems.append(_unknown("mem.datasets", name, thj_datasets))
            continue
        for sample in dataset.get("test", []):
            if sample not in thj_datasets[name].get("test", []):
                problems.append(_unknown(f"mem.datasets.{name}.test", sample, thj_datasets[name].get("test", [])))
        for transfer in dataset.get("transfers", []):
            if transfer not in transfers:
                problems.append(_unknown(f"mem.datasets.{name}.transfers", transfer, transfers))
    diagnostics = mem.get("diagnostics", {})
    tests = sorted({s for dataset in mem["datasets"].values() for s in dataset.get("test", [])})
    if diagnostics.get("events", 0) > 0 and diagnostics.get("sample") not in tests:
        problems.append(_unknown("mem.diagnostics.sample", diagnostics.get("sample"), tests) + "; it must be "
                        "a test sample of a MEM dataset (or set mem.diagnostics.events: 0 for none)")
    for name, spec in transfers.items():
        if name in ("acceptance", "closure"):
            problems.append(f"mem.transfers.{name}: the name is reserved (results/<run>/mem/<dataset>/{name}/)")
        if spec.get("variable_jets") and spec.get("kind") not in ("transfermer", "transfusion"):
            problems.append(f"mem.transfers.{name}: variable_jets needs kind transfermer or transfusion")
        if spec.get("bayesian_replicas", 0) and spec.get("kind") != "binn":
            problems.append(f"mem.transfers.{name}: bayesian_replicas needs kind binn")
    return problems


def _thj_problems(thj: Mapping) -> list[str]:
    """Distribution samples exist and have a fixed α; integrator settings are known."""
    if not thj.get("enabled", True):
        return []
    samples = thj.get("samples", {})
    problems = []
    for name in thj.get("distributions", []):
        if name not in samples:
            hint = difflib.get_close_matches(str(name), list(samples), n=1)
            more = f" (did you mean {hint[0]!r}?)" if hint else f" (samples: {sorted(samples)})"
            problems.append(f"thj.distributions: unknown sample {name!r}{more}")
        elif samples[name].get("alpha_deg") is None:
            problems.append(f"thj.distributions: sample {name!r} has α uniform; list fixed-α samples")
    for name, dataset in thj.get("datasets", {}).items():
        for role, value in [("train", dataset.get("train"))] + [("test", t) for t in dataset.get("test", [])]:
            if value not in samples:
                hint = difflib.get_close_matches(str(value), list(samples), n=1)
                more = f" (did you mean {hint[0]!r}?)" if hint else f" (samples: {sorted(samples)})"
                problems.append(f"thj.datasets.{name}.{role}: unknown sample {value!r}{more}")
            elif (samples[value].get("alpha_deg") is None) != (role == "train"):
                problems.append(f"thj.datasets.{name}.{role}: sample {value!r} must have "
                                + ("α uniform (no alpha_deg)" if role == "train" else "a fixed alpha_deg"))
    problems += _pdf_problems("thj.process.pdf", thj.get("process", {}).get("pdf"))
    integrator = thj.get("integrator", {})
    if integrator.get("method") == "madnis":
        problems += _madnis_problems("thj.integrator.config", integrator.get("config", {}))
    return problems


def _nis_problems(nis: Mapping, schema: Mapping) -> list[str]:
    """Channel-figure and event variants exist; scanned parameters exist and take the scanned values;
    MadNIS couplings take their permutations. (The schema types each method's settings and each
    integrand's parameters.)"""
    problems = []
    experiments = nis.get("experiments", {}) if nis.get("enabled", True) else {}
    for name, exp in experiments.items():
        where = f"nis.experiments.{name}"
        for variant in exp.get("channel_figures", []):
            if exp["variants"].get(variant, {}).get("method") != "madnis":
                problems.append(f"{where}.channel_figures: {variant!r} is not a madnis variant")
        if exp["integrand"]["name"] == "drell_yan":
            problems += _pdf_problems(f"{where}.integrand.pdf", exp["integrand"].get("pdf"))
        for variant, spec in exp["variants"].items():
            if exp["integrand"]["name"] == "drell_yan":
                problems += _pdf_problems(f"{where}.variants.{variant}.integrand.pdf", spec.get("integrand", {}).get("pdf"))
            if spec["method"] == "madnis":
                problems += _madnis_problems(f"{where}.variants.{variant}.config", spec.get("config", {}))
        problems += _scan_problems(where, exp, schema)
    events = nis.get("events")
    if events and nis.get("enabled", True):
        exp = experiments.get(events["experiment"])
        if exp is None:
            problems.append(f"nis.events.experiment: unknown experiment {events['experiment']!r}")
        elif exp["variants"].get(events["variant"], {}).get("method") != "madnis" or \
                exp["integrand"]["name"] != "drell_yan":
            problems.append(f"nis.events.variant: {events['variant']!r} must be a madnis variant of a drell_yan experiment")
    return problems


# the schema's $defs that type an integrand's parameters and a method's settings
INTEGRAND_PARAMETERS = {"camel": "camel_parameters", "cut_camel": "camel_parameters",
                        "crossed_ring": "crossed_ring_parameters", "drell_yan": "drell_yan_parameters"}
METHOD_SETTINGS = {"flat": None, "vegas": "vegas_config", "madnis": "madnis_config"}


def _scan_problems(where: str, exp: Mapping, schema: Mapping) -> list[str]:
    """The scanned parameter is an integrand parameter (target integrand) or a setting of every variant's
    method (target config), and each scanned value is one it takes."""
    import jsonschema

    scan = exp.get("scan")
    if not scan:
        return []
    defs, parameter = schema["$defs"], scan["parameter"]
    if scan["target"] == "integrand":
        targets = {f"{exp['integrand']['name']} parameter": INTEGRAND_PARAMETERS[exp["integrand"]["name"]]}
    else:
        targets = {f"{spec['method']} setting (variant {v})": METHOD_SETTINGS[spec["method"]]
                   for v, spec in exp["variants"].items()}
    problems = []
    for what, definition in targets.items():
        properties = defs[definition]["properties"] if definition else {}
        known = {k for k in properties if k not in ("name", "preset")}
        if parameter not in known:
            unknown = _unknown(f"{where}.scan.parameter", parameter, known)
            problems.append(unknown.replace("unknown", f"unknown {what}", 1))
            continue
        check = jsonschema.Draft202012Validator({"$defs": defs, **defs[definition]["properties"][parameter]})
        for index, value in enumerate(scan["values"]):
            problems += [f"{where}.scan.values.{index}: {error.message} ({what} {parameter})"
                         for error in check.iter_errors(value)]
    return problems


def _madnis_problems(where: str, config: Mapping) -> list[str]:
    """Coupling and permutations that go together, once a preset is applied (as
    lhcflow.nis.madnis_wrapper.MadnisIntegrator checks them when it builds the flow)."""
    from lhcflow.nis.settings import DEFAULT_MADNIS_CONFIG, merge_settings

    merged = merge_settings(DEFAULT_MADNIS_CONFIG, dict(config))
    permutations = {"rqs": ("log", "exchange", "random"), "affine": ("soft", "exchange", "random")}
    problems = []
    if merged["permutations"] not in permutations[merged["coupling"]]:
        problems.append(f"{where}: permutations {merged['permutations']!r} do not go with coupling "
                        f"{merged['coupling']!r} (choose from {list(permutations[merged['coupling']])})")
    if merged["vegas_init"] and merged["coupling"] != "rqs":
        problems.append(f"{where}: vegas_init needs coupling 'rqs', not {merged['coupling']!r}")
    return problems


def _pdf_problems(path: str, name: str | None) -> list[str]:
    """A PDF set without a known LHAPDF id (the LHE files and the shower need it)."""
    from lhcflow.physics.pdf_sets import UnknownPDFSetError, pdf_set

    if name is None:
        return []
    try:
        pdf_set(name)
    except UnknownPDFSetError as err:
        return [f"{path}: {err}"]
    return []
