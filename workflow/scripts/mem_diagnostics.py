"""Fig 6.13: MEM integration with samplers trained on true pairs or on the learned transfer, without and with VEGAS."""
import torch

from lhcflow.logs import log_to, snakemake_log
from lhcflow.mem.stages import DiagnosticsSettings, diagnostics_stage
from lhcflow.training.termination import exit_on_sigterm

torch.set_num_threads(snakemake.threads)
with log_to(snakemake_log(snakemake)) as log, exit_on_sigterm():
    p, inp = snakemake.params, snakemake.input
    settings = DiagnosticsSettings.from_config({"process": p.process, "integration": p.integration,
                                                "n_events": p.n_events, "seed": p.seed, "device": p.device})
    samplers = dict(zip(("true_pairs", "transfer"), inp.samplers))
    result = diagnostics_stage(settings, paired=list(inp.paired), transfer=inp.transfer, samplers=samplers,
                               fiducial=inp.fiducial,
                               acceptance=inp.acceptance[0] if inp.acceptance else None,
                               multiplicity=inp.multiplicity[0] if inp.multiplicity else None,
                               out_json=snakemake.output.json, out_figure=snakemake.output.figure,
                               checkpoint_dir=p.checkpoint_dir)
    for label, row in result.setups.items():
        log.info("%s: %s", label, row)
