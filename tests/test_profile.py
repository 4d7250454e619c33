"""The SLURM profile and conda environments are well-formed and match the workflow."""

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_slurm_profile_uses_the_executor_plugin_and_known_rules():
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    rules = set()
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        rules |= {line.split()[1].rstrip(":") for line in smk.read_text().splitlines() if line.startswith("rule ")}
    assert set(profile["set-resources"]) <= rules
    assert {"mem_mb", "runtime"} <= set(profile["default-resources"])


def test_every_rule_names_an_existing_conda_env():
    n_conda, n_envs = 0, 0
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        lines = smk.read_text().splitlines()
        for line, following in zip(lines, lines[1:]):
            if line.strip() == "conda:":
                n_conda += 1
                env = (smk.parent / following.strip().strip('"')).resolve()
                spec = yaml.safe_load(env.read_text())
                assert "conda-forge" in spec["channels"] and spec["dependencies"], env
                n_envs += 1
    assert n_conda >= 10 and n_envs == n_conda
