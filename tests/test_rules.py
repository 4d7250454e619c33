"""The rule files write each path once: a rule's input names another rule's file through
``rules.<name>.output`` (or a helper of workflow/rules/common.smk that does), never by retyping it, and
no rule file reads a global of another rule file.

A path typed twice (as one rule's output and again as another's input) can drift apart: the consumer
then asks for a file no rule makes. A global read from a file included later is not defined yet when
the reading file is parsed. Both are checked on the text of workflow/rules/*.smk.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "workflow" / "rules"
GLOBAL = re.compile(r"^([A-Z][A-Z0-9_]*) =", re.MULTILINE)


def input_sections(text: str) -> dict[str, str]:
    """rule name -> the text of its input: section."""
    sections, rule, inside = {}, None, False
    for line in text.splitlines():
        if match := re.match(r"rule (\w+):", line):
            rule, inside = match.group(1), False
        elif re.match(r"    \w+:", line):
            inside = line.strip() == "input:"
        elif line and not line[0].isspace():
            rule, inside = None, False
        elif inside and rule:
            sections[rule] = sections.get(rule, "") + line + "\n"
    return sections


def test_inputs_name_other_rules_outputs_instead_of_retyping_their_paths():
    checked = 0
    for path in sorted(RULES.glob("*.smk")):
        for rule, section in input_sections(path.read_text()).items():
            retyped = re.findall(r"f\"[^\"]*\{(?:RESULTS|[A-Z_]+_DIR)\}[^\"]*\"", section)
            assert not retyped, f"{path.name}: rule {rule} retypes {retyped}: use rules.<name>.output"
            checked += 1
    assert checked > 40  # the parser found the rules' inputs


def test_no_rule_file_reads_another_rule_files_globals():
    defined = {path.name: set(GLOBAL.findall(path.read_text())) for path in RULES.glob("*.smk")}
    assert {"ZJ", "NIS", "THJ", "MEM", "FMT"} <= defined["common.smk"]
    for path in RULES.glob("*.smk"):
        text = path.read_text()
        for other, names in defined.items():
            if other in (path.name, "common.smk"):
                continue
            read = sorted(n for n in names if re.search(rf"\b{n}\b", text))
            assert not read, f"{path.name} reads {read} of {other}: define them in common.smk"
    snakefile = (REPO / "Snakefile").read_text()
    includes = re.findall(r"include: \"workflow/rules/(\w+\.smk)\"", snakefile)
    assert includes[0] == "common.smk" and sorted(includes) == sorted(defined)
