"""Read a YAML config file strictly: duplicate keys are errors, numbers are YAML 1.2 numbers, and every
problem names the file and the line.

PyYAML implements YAML 1.1, whose mappings let the last of two equal keys win silently (``n_events:
40000`` ... ``n_events: 4`` runs 4 events) and whose float syntax needs a dot and a signed exponent
(``1e-3`` and ``1.0e6`` are read as *strings*). :class:`StrictLoader` is PyYAML's ``SafeLoader`` with a
duplicate-key check and the YAML 1.2 core-schema float pattern; everything else (booleans, integers,
anchors and aliases, ``<<`` merge keys) is unchanged.
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
    """``SafeLoader`` that refuses duplicate mapping keys and reads ``1e-3`` / ``1.0e6`` as numbers."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # "<<: *base" then explicit keys: overrides, allowed
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                seen = first.get(key)
            except TypeError:  # an unhashable key: SafeLoader's own error below
                continue
            if seen is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {seen.line + 1}); a mapping takes "
                                "each key once, the later one would silently replace the first: remove one",
                    key_node.start_mark)
            first[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != FLOAT_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
StrictLoader.add_implicit_resolver(FLOAT_TAG, FLOAT_PATTERN, list("-+0123456789."))


def _where(path: str | Path, err: yaml.MarkedYAMLError) -> str:
    mark = err.problem_mark or err.context_mark
    return f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)


def parse_yaml(text: str, source: str | Path = "<string>") -> Any:
    """The YAML document ``text`` read by :class:`StrictLoader`; errors name ``source`` and the line."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # StrictLoader is a SafeLoader
    except yaml.MarkedYAMLError as err:
        what = " ".join(filter(None, [err.context, err.problem]))
        if "duplicate key" in (err.problem or ""):
            raise YAMLFileError(f"{_where(source, err)}: {err.problem}") from None
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
