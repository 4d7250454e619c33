# lhcflow: generative-network methods for LHC physics as a reproducible workflow.
#   snakemake --cores 2                      # default config/config.yaml
#   snakemake --cores 2 --configfile config/paper.yaml
#   snakemake --report report.html           # HTML report with every figure and its caption
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

# The workflow runs the library from this checkout, also inside conda envs and SLURM jobs.
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])))

from lhcflow.config import ConfigError, load_config  # noqa: E402

# config/config.yaml is the default; a --configfile given on the command line replaces it
# (rather than being merged into it, which would mix the default samples into every run).
# Snakemake has read the files with its own YAML loader (a duplicate key silently wins, `1e-3` is a
# string); lhcflow reads them again strictly (a duplicate key or a YAML error stops with the file and
# line), merges them and the --config overrides as Snakemake does, validates the result (filling the
# schema's defaults) and checks the inputs it names, all before any job is scheduled: a typo stops the
# run here, and so does an input that cannot work (a glob matching no file, an LHE header whose merging
# the config contradicts).
_files = [os.path.relpath(p) if not os.path.relpath(p).startswith("..") else str(p)
          for p in workflow.overwrite_configfiles] or ["config/config.yaml"]
try:
    _validated = load_config(_files, overrides=workflow.config_settings.config)
except ConfigError as err:
    # Snakemake prints a WorkflowError raised while it reads the Snakefile on stdout: the problems go to
    # stderr, where every other lhcflow error goes, and the WorkflowError points there
    print(f"lhcflow: {err}", file=sys.stderr)
    raise WorkflowError(f"{' + '.join(_files)}: invalid configuration; its problems, each with its file and "
                        "key path, are listed on stderr under 'lhcflow: invalid configuration'") from None
if not workflow.overwrite_configfiles:
    workflow.configfile("config/config.yaml")
config.clear()
config.update(_validated)

RUN = config["run"]
RESULTS = f"results/{RUN}"

# The report's front page: the validation table of the run once the `validation` rule has written it
# (workflow/rules/validation.smk), otherwise the workflow description alone.
_FRONT_PAGE = Path(RESULTS) / "validation" / "front_page.rst"
report: str(_FRONT_PAGE.resolve()) if _FRONT_PAGE.exists() else "workflow/report/workflow.rst"

wildcard_constraints:
    sample="|".join(config["samples"]),
    shard=r"\d+",
    split="train|val|test",
    model=r"[A-Za-z0-9_]+",
    net="1|2|3",
    frac=r"[0-9.]+",
    task=r"[A-Za-z0-9_]+",
    experiment=r"[A-Za-z0-9_]+",
    variant=r"[A-Za-z0-9_]+",
    point=r"\d+",
    seed=r"\d+",
    thj_sample=r"[A-Za-z0-9_]+",
    dataset=r"[A-Za-z0-9_]+",
    transfer="|".join(config["mem"]["transfers"]) or "no_transfer",
    sampling_variant="transfer|true_pairs",


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/zjets.smk"
include: "workflow/rules/classifier.smk"
include: "workflow/rules/nis.smk"
include: "workflow/rules/thj.smk"
include: "workflow/rules/mem.smk"
include: "workflow/rules/validation.smk"


rule all:
    input:
        rules.data_all.input,
        rules.plots_all.input,
        rules.zjets_all.input,
        rules.classifier_all.input,
        rules.hard_classifiers_all.input,
        rules.nis_all.input,
        rules.thj_all.input,
        rules.mem_all.input,
        rules.validation.output,
    default_target: True
