"""The conda environments of the rules agree with pyproject.toml and hold what the rule scripts import.

Conda environments cannot be built offline here, so their consistency is checked statically:
the pins of every package an env shares with pyproject.toml are the same (conda names mapped to
their PyPI names), no env lists a package twice or an unknown package, and every third-party
module a rule's script imports -- directly, through the lhcflow modules it imports (module-level
imports, transitively) or inside the lhcflow functions it calls (their function-level imports) --
is installed by the rule's env.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from lhcflow.provenance import PACKAGES

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
ENVS = sorted((REPO / "envs").glob("*.yaml"))
# conda-forge name -> PyPI name, where they differ
CONDA_TO_PYPI = {"matplotlib-base": "matplotlib", "pytorch": "torch", "py-madnis": "madnis"}
# in an env but not a Python dependency of lhcflow
ENV_ONLY = {"python", "pip", "delphes", "pyhepmc"}
# PyPI name -> import name, where they differ
IMPORT_NAME = {"pyyaml": "yaml"}


def pyproject() -> dict[str, SpecifierSet]:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return {(r := Requirement(d)).name.lower(): r.specifier for d in deps}


def conda_spec(entry: str) -> tuple[str, str]:
    """``numpy>=1.26`` / ``python=3.11`` / ``numpy 1.26.*`` -> (name, version spec)."""
    name, spec = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(.*)", entry.strip()).groups()
    return name.lower(), spec.replace(" ", "")


@cache
def env_packages(path: Path) -> dict[str, tuple[str, SpecifierSet | str]]:
    """PyPI name -> (source, specifier) of every package of a conda env file (conda and pip)."""
    spec = yaml.safe_load(path.read_text())
    out: dict[str, tuple[str, SpecifierSet | str]] = {}
    for dep in spec["dependencies"]:
        entries = [("pip", Requirement(p)) for p in dep["pip"]] if isinstance(dep, dict) else [("conda", dep)]
        for source, entry in entries:
            if source == "pip":
                name, pin = entry.name.lower(), entry.specifier
            else:
                name, raw = conda_spec(entry)
                name = CONDA_TO_PYPI.get(name, name)
                pin = raw if name == "python" or not raw else SpecifierSet(raw)
            assert name not in out, f"{path.name}: {name} listed twice ({out[name][0]} and {source})"
            out[name] = (source, pin)
    return out


@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.name)
def test_env_pins_match_pyproject(env):
    deps = pyproject()
    packages = env_packages(env)
    assert yaml.safe_load(env.read_text())["channels"][0] == "conda-forge"
    for name, (source, pin) in packages.items():
        if name in ENV_ONLY:
            continue
        assert name in deps, f"{env.name}: {name} is not a dependency in pyproject.toml (typo or missing pin?)"
        assert pin == deps[name], f"{env.name}: {name}{pin} ({source}) but pyproject.toml pins {name}{deps[name]}"


def test_pythia_from_pypi_and_python_version():
    """pythia8mc is imported as ``pythia8mc``: the PyPI wheel, not conda-forge's ``pythia8``."""
    required = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    for env in ENVS:
        packages = env_packages(env)
        assert "pythia8" not in packages, env.name
        if "pythia8mc" in packages:
            assert packages["pythia8mc"][0] == "pip", f"{env.name}: pythia8mc must come from pip"
        python = packages["python"][1].lstrip("=")
        assert SpecifierSet(required).contains(python + ".0"), f"{env.name}: python {python} vs {required}"


def test_run_info_records_every_dependency():
    assert set(pyproject()) <= set(PACKAGES)


# ----------------------------------------------------------------------------- rule imports
def _module_file(module: str) -> Path | None:
    path = SRC.joinpath(*module.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.exists():
            return candidate
    return None


def _imports(nodes) -> set[str]:
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


def _module_level(tree: ast.Module) -> list[ast.stmt]:
    """Statements run on import: the body and the blocks of module-level if/try/with."""
    out, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        out.append(node)
        if isinstance(node, (ast.If, ast.Try, ast.With)):
            todo += [c for c in ast.iter_child_nodes(node) if isinstance(c, ast.stmt)]
            todo += [s for h in getattr(node, "handlers", []) for s in h.body]
    return out


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


def third_party_imports(script: Path) -> set[str]:
    """Top-level third-party modules a rule script needs (see the module docstring)."""
    found, seen = set(), set()
    todo = list(_imports(_module_level(_tree(script))))
    for node in _module_level(_tree(script)):  # functions the script takes from lhcflow: their lazy imports
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lhcflow") and _module_file(node.module):
            defs = {d.name: d for d in _tree(_module_file(node.module)).body if isinstance(d, ast.FunctionDef)}
            for alias in node.names:
                if alias.name in defs:
                    todo += _imports(ast.walk(defs[alias.name]))
    while todo:
        name = todo.pop()
        top = name.split(".")[0]
        if top != "lhcflow":
            if top not in sys.stdlib_module_names and top != "__future__":
                found.add(top)
            continue
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a, a.b and a.b.c
            path = _module_file(".".join(parts[:i]))
            if path is not None and path not in seen:
                seen.add(path)
                todo += _imports(_module_level(_tree(path)))
    return found


def rule_scripts() -> list[tuple[str, list[Path], Path]]:
    """(rule, conda env files, script) of every rule with a script."""
    out = []
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=rule )", smk.read_text()):
            rule = re.match(r"rule (\w+):", block)
            script = re.search(r'script:\s*"([^"]+)"', block)
            if rule and script:
                envs = [REPO / "envs" / f"{e}.yaml" for e in re.findall(r"envs/(\w+)\.yaml", block)]
                out.append((rule.group(1), envs, (smk.parent / script.group(1)).resolve()))
    return out


def test_every_scripted_rule_has_an_existing_env():
    rules = rule_scripts()
    assert len(rules) >= 25
    for rule, envs, script in rules:
        assert envs and all(e.exists() for e in envs), f"rule {rule}: conda env {envs} missing"
        assert script.exists(), f"rule {rule}: {script} missing"


@pytest.mark.parametrize("rule,envs,script", rule_scripts(), ids=lambda v: v if isinstance(v, str) else "")
def test_rule_env_holds_the_script_imports(rule, envs, script):
    needed = third_party_imports(script)
    for env in envs:  # a rule choosing its env by config (thj_shower) must work with each
        installed = {IMPORT_NAME.get(name, name).replace("-", "_") for name in env_packages(env)}
        missing = needed - installed
        assert not missing, f"rule {rule} ({script.name}) imports {sorted(missing)} but {env.name} lacks them"
