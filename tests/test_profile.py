"""The SLURM profile and conda environments are well-formed and match the workflow."""

import re
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
        lines = [line for line in smk.read_text().splitlines() if not line.strip().startswith("#")]
        for line, following in zip(lines, lines[1:]):
            if line.strip() == "conda:":
                n_conda += 1
                names = re.findall(r'"([^"]+\.yaml)"', following)  # a choice by config: thj_shower
                for name in names:
                    spec = yaml.safe_load((smk.parent / name).resolve().read_text())
                    assert "conda-forge" in spec["channels"] and spec["dependencies"], name
                n_envs += bool(names)
    assert n_conda >= 10 and n_envs == n_conda
