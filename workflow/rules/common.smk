# Shared by every file of workflow/rules: the config sections of each chain, the figure format, sample
# lookups, per-stage seeds, resource requests and the path helpers of the rules' inputs. This file reads
# only the config and the Snakefile's RESULTS; the rule files read this file and nothing defined after
# them. The path helpers name the files of a stage through its own output pattern,
# rules.<name>.output.<file>, so a path is written once, in the rule that makes it; they are called
# after that rule is defined (from input functions, or from later rules).
from lhcflow.config import sample_selection
from lhcflow.nis.settings import experiment_seeds
from lhcflow.seeds import derive_seed

FMT = config["plots"]["format"]

# The chains' config sections and what they enable.
ZJ = config["zjets"]
ZJ_MODELS = list(ZJ["models"]) if ZJ["enabled"] else []
ZJ_BAYESIAN = [m for m in ZJ_MODELS if ZJ["models"][m]["kind"] == "binn"]
CL = config["classifier"]
CL_MODELS = (CL["models"] if CL["models"] is not None else ZJ_MODELS) if CL["enabled"] else []
HC = config["hard_classifiers"]
NIS = config["nis"]
NIS_EXPERIMENTS = NIS["experiments"] if NIS["enabled"] else {}
THJ = config["thj"]
THJ_SAMPLES = THJ["samples"] if THJ["enabled"] else {}
THJ_DATASETS = THJ["datasets"] if THJ["enabled"] else {}
MEM = config["mem"]
MEM_DATASETS = MEM["datasets"] if MEM["enabled"] and THJ["enabled"] else {}
MEM_DEVICE = MEM["device"]
# (dataset, transfer) of every MEM analysis
MEM_ANALYSES = [(d, t) for d in MEM_DATASETS for t in MEM_DATASETS[d]["transfers"]]


def sample_cfg(wildcards):
    return config["samples"][wildcards.sample]


def stage_seed(*labels):
    return derive_seed(config["seed"], *labels)


def runtime_min(minutes):
    """Runtime request in minutes that grows with the attempt: a job killed at its time limit
    (SLURM TIMEOUT) and resubmitted by --retries asks for 2x, 3x the time; a training resumes
    from its checkpoint, so the longer attempt finishes what the first one started."""
    return lambda wildcards, attempt: minutes * attempt


def gpus(device="auto"):
    """GPUs of a torch job: resources.train_gpu, none when the stage is configured for the CPU."""
    return config["resources"]["train_gpu"] if device != "cpu" else 0


def fill(pattern, **wildcards):
    """The one file of an output pattern (rules.<name>.output.<file>) with `wildcards` filled in;
    wildcards not given stay in the pattern, for the job that uses it to fill."""
    (path,) = expand(pattern, allow_missing=True, **wildcards)
    return path


# Data (data.smk, plots.smk)
def generation_input(wildcards):
    """The LHE file a sample of kind lhe showers; a Pythia sample reads none."""
    cfg = sample_cfg(wildcards)
    return [cfg["file"]] if cfg["kind"] == "lhe" else []


def shard_files(sample, output):
    """Every shard of a generated sample (generate_shard): its ntuples (output root) or their metadata
    (meta)."""
    n = config["samples"][sample]["n_shards"]
    return expand(getattr(rules.generate_shard.output, output), sample=sample, shard=range(n))


def ingest_input(wildcards):
    cfg = sample_cfg(wildcards)
    if cfg["kind"] == "root":
        return {"roots": cfg["files"], "metas": []}
    return {"roots": shard_files(wildcards.sample, "root"), "metas": shard_files(wildcards.sample, "meta")}


def merged_lhe_samples():
    """LHE samples showered with merging (MLM or CKKW-L, from their headers): merging-validation figures."""
    from lhcflow.generation.merging import sample_merging

    return [name for name, cfg in config["samples"].items()
            if cfg["kind"] == "lhe" and sample_merging(cfg).scheme != "none"]


# Z+jets and its classifier metric (zjets.smk, classifier.smk)
def zjets_data(split):
    """A canonical split (train, val, test) of the Z+jets sample (ingest)."""
    return fill(getattr(rules.ingest.output, split), sample=ZJ["sample"])


# Hard-process classifiers (classifier.smk)
def hard_selection(task):
    """A hard classifier's selection: its sample's selection with the task's overrides."""
    base = sample_selection(config, HC[task]["sample"])
    for kind, cuts in HC[task].get("selection", {}).items():
        base[kind] = {**base.get(kind, {}), **cuts}
    return base


def hard_input(wildcards):
    """The generated shards (ntuples and metadata) of the task's sample."""
    sample = HC[wildcards.task]["sample"]
    return {"roots": shard_files(sample, "root"), "metas": shard_files(sample, "meta")}


# Neural importance sampling (nis.smk)
def nis_points(experiment):
    scan = NIS["experiments"][experiment].get("scan")
    return list(range(len(scan["values"]))) if scan else [0]


def nis_run_files(experiment):
    """The results of every run (nis_run) of an experiment: variants x scan points x seeds."""
    return expand(rules.nis_run.output.result, experiment=experiment,
                  variant=NIS["experiments"][experiment]["variants"], point=nis_points(experiment),
                  seed=range(experiment_seeds(NIS, experiment)))


def nis_states(experiment, variant):
    """Trained states (nis_run) of one variant at the first scan point, one per seed."""
    return expand(rules.nis_run.output.state, experiment=experiment, variant=variant, point=0,
                  seed=range(experiment_seeds(NIS, experiment)))


# tHj (thj.smk)
def thj_hard_files(sample, output):
    """Every shard of one hard tHj sample (thj_hard_events): its events as LHE (output lhe) or HDF5 (h5),
    or their stats."""
    n = THJ["samples"][sample]["shards"]
    return expand(getattr(rules.thj_hard_events.output, output), thj_sample=sample, shard=range(n))


def thj_paired_files(dataset, sample):
    """Every paired shard (thj_paired) of one hard tHj sample in one reco dataset."""
    n = THJ["samples"][sample]["shards"]
    return expand(rules.thj_paired.output.h5, dataset=dataset, thj_sample=sample, shard=range(n))


# ML-MEM (mem.smk)
def mem_train_files(wildcards):
    """Paired shards of the dataset's training sample."""
    return thj_paired_files(wildcards.dataset, THJ["datasets"][wildcards.dataset]["train"])


def mem_test_paired(wildcards):
    """Paired shards of each test sample of a MEM dataset, sample -> files (shard counts may differ)."""
    return {s: thj_paired_files(wildcards.dataset, s) for s in MEM_DATASETS[wildcards.dataset]["test"]}


def mem_test_paired_files(wildcards):
    return [f for files in mem_test_paired(wildcards).values() for f in files]


def mem_transfer_spec(wildcards):
    spec = MEM["transfers"][wildcards.transfer]
    return {**spec, "n_extra_max": MEM["multiplicity"]["n_max"]} if spec["variable_jets"] else spec


def mem_acceptance_model(wildcards):
    """The acceptance classifier (mem_acceptance_train) an integration uses; none where
    mem.acceptance.use is false."""
    model = fill(rules.mem_acceptance_train.output.model, dataset=wildcards.dataset)
    return [model] if MEM["acceptance"]["use"] else []


def mem_multiplicity_model(wildcards):
    """The multiplicity classifier (mem_multiplicity_train) of a transfer network with a variable number
    of jets; none for a fixed number."""
    model = fill(rules.mem_multiplicity_train.output.model, dataset=wildcards.dataset)
    return [model] if MEM["transfers"][wildcards.transfer]["variable_jets"] else []


def mem_integrals(wildcards, output="h5"):
    """The integrals (mem_integrate, output h5) or their stats of every test sample of a MEM dataset."""
    return expand(getattr(rules.mem_integrate.output, output), dataset=wildcards.dataset,
                  transfer=wildcards.transfer, thj_sample=MEM_DATASETS[wildcards.dataset]["test"])
