"""Load and validate the workflow configuration against its JSON schema.

Validation runs before any job starts: every error is reported with its path in the
YAML (``samples.zjets.n_events``), unknown keys get a "did you mean" hint, and the
schema's defaults are filled in so stages never guess. Config files are read by
:mod:`lhcflow.strict_yaml` (a duplicate key, invalid YAML or an empty file stops with the file
and line; ``1e-3`` is a number).
"""

from __future__ import annotations

import copy
import difflib
import functools
import glob
import itertools
import os
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path

import jsonschema

from lhcflow.config_checks import count_problems, non_finite_numbers, reference_problems, sample_key_problems
from lhcflow.errors import InputError
from lhcflow.strict_yaml import YAMLFileError, parse_yaml, read_yaml_mapping

# shipped inside the package (package data), so an installed lhcflow validates configs
SCHEMA_RESOURCE = resources.files("lhcflow.schemas") / "config.schema.yaml"

# Fallbacks for object cuts that a partial selection block leaves out.
DEFAULT_OBJECT_CUTS = {
    "min": 0, "max": None, "keep": 0, "pt_min_gev": 0.0, "abs_eta_max": None, "opposite_charge": False,
}


class ConfigError(InputError, ValueError):
    """The configuration does not match the schema; the message lists every problem."""


def _ordered_pairs(validator, pairs, instance, schema):
    """``orderedPairs: [[low, high, "<" | "<="], ...]``: a range given by two keys of one mapping must not be
    reversed or (``<``) empty, e.g. ``mll_min_gev < mll_max_gev``; a key left out counts with its default."""
    if not isinstance(instance, dict):
        return
    properties = schema.get("properties", {})
    for low, high, op in pairs:
        a = instance.get(low, properties.get(low, {}).get("default"))
        b = instance.get(high, properties.get(high, {}).get("default"))
        numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b))
        if numbers and not (a < b if op == "<" else a <= b):
            what = "not below" if op == "<" else "above"
            yield jsonschema.ValidationError(
                f"{low} = {a!r} is {what} {high} = {b!r}: the range is {'empty' if a == b else 'reversed'}; "
                f"give {low} {'<' if op == '<' else '<='} {high}")


def _increasing(validator, increasing, instance, schema):
    """``increasing: true``: the numbers of an array rise strictly (a box [lower, upper], bin edges)."""
    numbers = isinstance(instance, list) and all(isinstance(x, (int, float)) for x in instance)
    if increasing and numbers and any(b <= a for a, b in itertools.pairwise(instance)):
        yield jsonschema.ValidationError(f"{instance!r} must increase strictly (lower before upper)")


def _is_count(checker, instance) -> bool:
    """JSON schema's ``integer`` accepts 2.0; a count must be a Python int (1e6 written as a number is made
    one by :func:`_schema_errors`, 1000000.5 is refused)."""
    return isinstance(instance, int) and not isinstance(instance, bool)


def _validator_class(validator_class=jsonschema.Draft202012Validator):
    """``validator_class`` whose ``properties`` fills in ``default`` values, with the keywords
    ``orderedPairs`` and ``increasing``, and integers that are ints."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def fill_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(
        validator_class,
        {"properties": fill_defaults, "orderedPairs": _ordered_pairs, "increasing": _increasing},
        type_checker=validator_class.TYPE_CHECKER.redefine("integer", _is_count))


def load_schema(path: str | Path | None = None) -> dict:
    """The config schema: the package's own (``lhcflow/schemas/config.schema.yaml``) or the file ``path``."""
    if path is None:
        return copy.deepcopy(_package_schema())
    return parse_yaml(Path(path).read_text(encoding="utf-8"), path)


@functools.cache
def _package_schema() -> dict:
    return parse_yaml(SCHEMA_RESOURCE.read_text(encoding="utf-8"), "lhcflow/schemas/config.schema.yaml")


def validate_config(config: Mapping, schema: Mapping | None = None, source: str = "config") -> dict:
    """Return a validated deep copy of ``config`` with defaults filled in.

    Raises :class:`ConfigError` naming ``source`` and the YAML path of every problem.
    """
    schema = load_schema() if schema is None else schema
    config = copy.deepcopy(dict(config))
    problems = non_finite_numbers(config)
    if problems:
        raise _config_error(source, problems)
    problems = sample_key_problems(config)  # on the keys as written: the schema fills defaults in
    errors = _schema_errors(config, _validator_class()(schema))
    problems += [f"{_location(e)}: {_explain(e)}" for e in errors]
    if problems:
        raise _config_error(source, sorted(problems))
    problems = count_problems(config) + reference_problems(config, schema)
    if problems:
        raise _config_error(source, problems)
    return config


def _config_error(source: str, problems: list[str]) -> ConfigError:
    return ConfigError("invalid configuration:\n  " + "\n  ".join(f"{source}: {p}" for p in problems))


def _schema_errors(config: dict, validator) -> list[jsonschema.ValidationError]:
    """The schema's errors for ``config`` (filling its defaults); an integral float where the schema wants an
    integer (``n_events: 1e6``, read as 1000000.0) is made an int first."""
    while True:
        errors = list(validator.iter_errors(config))
        whole = [e for e in errors if e.validator == "type" and "integer" in _types(e.validator_value)
                 and isinstance(e.instance, float) and e.instance.is_integer() and e.absolute_path]
        if not whole:
            return errors
        for error in whole:
            *parents, last = error.absolute_path
            container = config
            for key in parents:
                container = container[key]
            container[last] = int(error.instance)


def _types(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def check_inputs(config: Mapping, source: str = "config") -> dict:
    """The validated ``config`` with its input files resolved and checked, before any job runs.

    ROOT ``files`` glob patterns are expanded (sorted; a pattern that matches nothing is an error);
    the header of an existing LHE file must allow the sample's merging
    (:func:`lhcflow.generation.merging.plan_merging`). A file that does not exist yet may be another
    rule's output (``nis.events`` writes an LHE file): Snakemake resolves it, and the shower job checks
    it before showering. Paths are relative to the working directory. Raises :class:`ConfigError`
    listing every problem.
    """
    from lhcflow.generation.lhe import LHEError
    from lhcflow.generation.merging import MergingError, sample_merging

    config = copy.deepcopy(dict(config))
    problems = []
    for name, sample in config.get("samples", {}).items():
        where = f"samples.{name}"
        if sample["kind"] == "root":
            files = []
            for pattern in sample["files"]:
                if not glob.has_magic(pattern):
                    files.append(pattern)
                    continue
                matches = sorted(glob.glob(os.path.expanduser(pattern)))
                if not matches:
                    problems.append(f"{where}.files: the pattern {pattern!r} matches no file")
                files += matches
            sample["files"] = files
        elif sample["kind"] == "lhe" and Path(sample["file"]).exists():
            try:
                sample_merging(sample)
            except (LHEError, MergingError) as err:
                problems.append(f"{where}: {err}")
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(f"{source}: {p}" for p in problems))
    return config


def read_config_files(paths: Sequence[str | Path], overrides: Mapping | None = None) -> dict:
    """The configuration of one or more YAML files, as Snakemake merges ``--configfile a.yaml b.yaml``
    (mappings merged key by key, a later file's values win), then ``overrides`` (``--config k=v``).

    Each file is read strictly (:func:`lhcflow.strict_yaml.read_yaml_mapping`): a missing or empty file,
    invalid YAML or a duplicate key raises :class:`ConfigError` in one line with the file and line.
    """
    config: dict = {}
    for path in paths:
        try:
            _merge(config, read_yaml_mapping(path))
        except YAMLFileError as err:
            raise ConfigError(str(err)) from None
    _merge(config, copy.deepcopy(dict(overrides or {})))
    return config


def _merge(base: dict, update: Mapping) -> None:
    """Snakemake's ``update_config``: nested mappings merged, anything else replaced."""
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = dict(value) if isinstance(value, Mapping) else value


def load_config(path: str | Path | Sequence[str | Path], schema: Mapping | None = None,
                overrides: Mapping | None = None) -> dict:
    """Read one YAML file, or several merged as Snakemake merges them (:func:`read_config_files`),
    validate it (see :func:`validate_config`) and check its inputs (:func:`check_inputs`)."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    source = " + ".join(map(str, paths)) or "config"
    config = read_config_files(paths, overrides)
    return check_inputs(validate_config(config, schema, source=source), source=source)


def sample_selection(config: Mapping, sample: str) -> dict:
    """The global selection with the sample's overrides merged in, every cut filled."""
    merged = copy.deepcopy(config.get("selection", {}))
    for kind, cuts in config["samples"][sample].get("selection", {}).items():
        merged.setdefault(kind, {}).update(cuts)
    return {kind: {**DEFAULT_OBJECT_CUTS, **cuts} for kind, cuts in merged.items()}


def _location(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def _explain(error: jsonschema.ValidationError) -> str:
    """The jsonschema message, with a suggestion for misspelt keys, plainer words for nulls, fractions and
    bounds, and the schema's ``hint`` (any error) or ``hints`` (per failing keyword) where it has one."""
    message = error.message
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        hints = []
        for key in re.findall(r"'([^']+)'", error.message):
            if key in error.instance and key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else f" (allowed: {', '.join(allowed)})"
                hints.append(f"unknown key '{key}'{hint}")
        if hints:
            message = "; ".join(hints)
    elif error.validator in ("anyOf", "oneOf") and error.context:
        expected = error.schema.get("description") if isinstance(error.schema, dict) else None
        message = (f"{error.instance!r} is not valid here: expected {expected}" if expected
                   else jsonschema.exceptions.best_match(error.context).message)
    elif error.validator == "type" and error.instance is None:
        message = f"null is not allowed here (expected {' or '.join(_types(error.validator_value))})"
    elif (error.validator == "type" and isinstance(error.instance, float)
          and "integer" in _types(error.validator_value)):
        message = f"{error.instance!r} is not a whole number (expected an integer)"
    elif error.validator == "pattern" and isinstance(error.schema, dict) and "hint" in error.schema:
        message = f"{error.instance!r} is not allowed"  # the hint says what is, plainer than the pattern
    elif error.validator in ("maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum"):
        message = message.replace(repr(error.instance), _number(error.instance), 1).replace(
            repr(error.validator_value), _number(error.validator_value))
    if not isinstance(error.schema, dict):
        return message
    if error.validator == "not" and "hint" in error.schema:  # "not: {type: null}": the hint says it all
        return error.schema["hint"]
    hint = error.schema.get("hints", {}).get(error.validator) or error.schema.get("hint")
    return f"{message}; {hint}" if hint else message


def _number(x) -> str:
    """1e+25 rather than 10000000000000000905969664."""
    large = isinstance(x, (int, float)) and not isinstance(x, bool) and abs(x) >= 1e7
    return f"{x:.6g}" if large else repr(x)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lhcflow.config FILE [FILE ...]``: check config files (merged in order, as
    ``snakemake --configfile FILE ...`` merges them) without running anything. Prints every problem with
    its file and line or key path on stderr and returns 1, or says the config is valid and returns 0.

    Snakemake reads ``--configfile`` files itself before the workflow starts: for a file it cannot read
    (invalid YAML, empty, missing) it says so without the file's line; this command says where.
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m lhcflow.config",
        description="Check lhcflow config files (merged in order, as snakemake --configfile merges them) "
                    "before running anything; every problem is printed with its file and line or key path.")
    parser.add_argument("files", nargs="+", metavar="FILE", help="a YAML config file")
    args = parser.parse_args(argv)
    try:
        load_config(args.files)
    except ConfigError as err:
        print(f"lhcflow: {err}", file=sys.stderr)
        return 1
    print(f"{' + '.join(args.files)}: valid")
    return 0


if __name__ == "__main__":
    import sys

    from lhcflow.config import main as _main  # the module under its own name, not as __main__

    sys.exit(_main())
