"""The layout documentation names what exists: docs/architecture.md draws real rules calling real
functions, and the package docstring and the README's Layout section list every subpackage and
module of src/lhcflow. A rename that forgets the documentation fails here, with the name."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "lhcflow"
ARCHITECTURE = (REPO / "docs" / "architecture.md").read_text()
# a stage box of the Mermaid pictures: id["rule (note)<br>module.function, module.function"]
STAGE = re.compile(r'\w+\["(\w+)[^"<]*<br>([^"]+)"\]')


def workflow_rules() -> set[str]:
    files = [REPO / "Snakefile", *(REPO / "workflow" / "rules").glob("*.smk")]
    return {name for path in files for name in re.findall(r"^rule (\w+):", path.read_text(), re.MULTILINE)}


def test_every_stage_box_is_a_rule_calling_functions_that_exist():
    stages = STAGE.findall(ARCHITECTURE)
    assert len(stages) >= 30
    rules = workflow_rules()
    for rule, functions in stages:
        assert rule in rules, f"docs/architecture.md draws rule {rule}, which workflow/rules does not define"
        for dotted in functions.split(", "):
            module, _, name = dotted.rpartition(".")
            assert hasattr(importlib.import_module(f"lhcflow.{module}"), name), \
                f"docs/architecture.md: rule {rule} calls lhcflow.{dotted}, which does not exist"


def test_every_rule_that_makes_files_is_in_the_architecture():
    makers = {r for r in workflow_rules() if r != "all" and not r.endswith("_all")}
    missing = sorted(r for r in makers if not re.search(rf"\b{r}\b", ARCHITECTURE))
    assert not missing, f"docs/architecture.md does not mention the rules {missing}"


def test_package_docstring_and_readme_layout_list_every_subpackage_and_module():
    subpackages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    modules = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    assert {"generation", "data", "nis", "mem"} <= set(subpackages) and "config" in modules
    docstring = ast.get_docstring(ast.parse((PACKAGE / "__init__.py").read_text()))
    readme = (REPO / "README.md").read_text()
    layout = readme[readme.index("## Layout"):]
    for name in subpackages + modules:
        assert f"``{name}``" in docstring, f"the lhcflow docstring does not list {name}"
    for name in subpackages:
        assert re.search(rf"^  {name}/ ", layout, re.MULTILINE), f"README Layout does not list {name}/"
    for name in modules:
        assert f"{name}.py" in layout, f"README Layout does not list {name}.py"
