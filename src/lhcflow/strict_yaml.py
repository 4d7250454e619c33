"""Read a YAML config file strictly: duplicate keys are errors, numbers are YAML 1.2 numbers, and every
problem names the file and the line.

PyYAML implements YAML 1.1, whose mappings let the last of two equal keys win silently (``n_events:
40000`` ... ``n_events: 4`` runs 4 events) and whose float syntax needs a dot and a signed exponent
(``1e-3`` and ``1.0e6`` are read as *strings*). :func:`parse_yaml` refuses duplicate keys (naming their
key path and both lines) and reads with :class:`StrictLoader`, PyYAML's ``SafeLoader`` with the YAML 1.2
core-schema float pattern; everything else (booleans, integers, anchors and aliases, ``<<`` merge keys)
is unchanged.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from lhcflow.errors import InputError

FLOAT_TAG = "tag:yaml.org,2002:float"
# YAML 1.2 core schema floats (with PyYAML's "_" digit separators): 1.5, 1., .5, 1e-3, 1.0e6, 1E+6, .inf, .nan
FLOAT_PATTERN = re.compile(r"""^(?:
    [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
  | [-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
  | [-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
  | [-+]?\.(?:inf|Inf|INF)
  | \.(?:nan|NaN|NAN)
)$""", re.VERBOSE)


class YAMLFileError(InputError, ValueError):
    """A config file that is missing, empty, not YAML, not a mapping, or has a duplicate key."""


class StrictLoader(yaml.SafeLoader):
    """``SafeLoader`` that reads ``1e-3`` / ``1.0e6`` as numbers (duplicate keys: :func:`duplicate_keys`)."""


StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != FLOAT_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
StrictLoader.add_implicit_resolver(FLOAT_TAG, FLOAT_PATTERN, list("-+0123456789."))


def _where(path: str | Path, err: yaml.MarkedYAMLError) -> str:
    mark = err.problem_mark or err.context_mark
    return f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)


def duplicate_keys(node: yaml.Node | None, path: str = "") -> list[str]:
    """``line:column: key.path: duplicate key 'k' (first at line n)`` for every mapping of the composed
    document ``node`` that has a key twice (``<<`` merge keys may be overridden: not duplicates)."""
    found: list[str] = []
    seen_nodes: set[int] = set()

    def walk(node, path):
        if node is None or id(node) in seen_nodes:  # an alias: its anchor was walked already
            return
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[tuple[str, str], yaml.Mark] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = (key_node.tag, str(key_node.value))
                where = f"{path}.{key_node.value}" if path else str(key_node.value)
                if key in first:
                    mark = key_node.start_mark
                    found.append(f"{mark.line + 1}:{mark.column + 1}: {where}: duplicate key "
                                 f"{key_node.value!r} (first at line {first[key].line + 1}); a mapping takes "
                                 "each key once and the later one would silently replace the first: "
                                 "remove one")
                else:
                    first[key] = key_node.start_mark
                walk(value_node, where)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, f"{path}.{index}")

    walk(node, path)
    return found


def parse_yaml(text: str, source: str | Path = "<string>") -> Any:
    """The YAML document ``text`` read by :class:`StrictLoader`; errors name ``source`` and the line (and
    for a duplicate key its path)."""
    try:
        duplicates = duplicate_keys(yaml.compose(text, Loader=StrictLoader))
        if duplicates:
            raise YAMLFileError("; ".join(f"{source}:{d}" for d in duplicates))
        return yaml.load(text, Loader=StrictLoader)  # StrictLoader is a SafeLoader
    except yaml.MarkedYAMLError as err:
        what = " ".join(filter(None, [err.context, err.problem]))
        raise YAMLFileError(f"{_where(source, err)}: not valid YAML: {what}") from None
    except yaml.YAMLError as err:
        raise YAMLFileError(f"{source}: not valid YAML: {err}") from None


def read_yaml_mapping(path: str | Path) -> dict:
    """The top-level mapping of the YAML file ``path``. A missing or empty file, invalid YAML, a
    duplicate key or a top level that is not a mapping raises :class:`YAMLFileError` in one line
    naming the file (and the line)."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise YAMLFileError(f"configuration file {path} {what}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise YAMLFileError(f"{path}: not a text file (byte {err.start} is not UTF-8)") from None
    document = parse_yaml(text, path)
    if document is None:
        raise YAMLFileError(f"{path}: the file is empty (or only comments); a config is a YAML mapping "
                            "of keys such as run, samples, ... (see config/config.yaml)")
    if not isinstance(document, dict):
        raise YAMLFileError(f"{path}: the top level is a {type(document).__name__}, not a mapping of keys "
                            "(run, samples, ...)")
    return document
