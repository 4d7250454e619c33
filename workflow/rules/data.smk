# The data layer: generate or shower events in shards, then ingest every sample into the
# canonical format (train/val/test HDF5 + cut flow).


rule generate_shard:
    """One shard of a generated sample: Pythia 8 (kind pythia) or Pythia 8 showering an LHE file
    (kind lhe), FastJet anti-kT jets, written to a NanoAOD-like ROOT ntuple with uproot."""
    message:
        "Generate shard {wildcards.shard} of sample {wildcards.sample}"
    input:
        generation_input,
    output:
        root=f"{RESULTS}/generation/{{sample}}/shard{{shard}}.root",
        meta=f"{RESULTS}/generation/{{sample}}/shard{{shard}}.json",
    log:
        f"{RESULTS}/logs/generate/{{sample}}/shard{{shard}}.log",
    params:
        cfg=sample_cfg,
        seed=lambda w: stage_seed("generate", w.sample, w.shard),
    threads: 1
    resources:
        mem_mb=config["resources"]["generate_mem_mb"],
        runtime=runtime_min(config["resources"]["generate_runtime_min"]),
    conda:
        "../../envs/generation.yaml"
    script:
        "../scripts/generate.py"


rule ingest:
    """Map a sample's ROOT files onto the canonical format, apply the object selection, and
    split the events into train/val/test by a seeded hash."""
    message:
        "Ingest sample {wildcards.sample}: selection, split, canonical HDF5"
    input:
        unpack(ingest_input),
    output:
        train=f"{RESULTS}/data/{{sample}}/train.h5",
        val=f"{RESULTS}/data/{{sample}}/val.h5",
        test=f"{RESULTS}/data/{{sample}}/test.h5",
        cutflow=f"{RESULTS}/data/{{sample}}/cutflow.json",
    log:
        f"{RESULTS}/logs/ingest/{{sample}}.log",
    params:
        cfg=sample_cfg,
        selection=lambda w: sample_selection(config, w.sample),
        split=lambda w: {"fractions": config["split"]["fractions"], "seed": stage_seed("split", w.sample)},
        chunk_size=config["ingest"]["chunk_size"],
    threads: 1
    resources:
        mem_mb=config["resources"]["ingest_mem_mb"],
        runtime=runtime_min(config["resources"]["ingest_runtime_min"]),
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/ingest.py"


rule run_info:
    """Provenance of the run: resolved config, package versions, git commit, seeds."""
    message:
        "Record the run's provenance"
    output:
        f"{RESULTS}/run_info.json",
    log:
        f"{RESULTS}/logs/run_info.log",
    params:
        config=config,
    threads: 1
    resources:
        mem_mb=500,
        runtime=runtime_min(5),
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/run_info.py"


rule data_all:
    input:
        [expand([rules.ingest.output.train, rules.ingest.output.val, rules.ingest.output.test], sample=s)
         for s in config["samples"]],
        rules.run_info.output,
