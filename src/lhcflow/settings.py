"""The contract of a workflow stage: one frozen settings object in, keyword-only paths, one frozen result out.

Every chain keeps its stages in one ``stages.py`` as ``<verb>_stage(settings, *, <inputs>, <outputs>)``
returning a frozen result dataclass. The settings are a frozen dataclass deriving from :class:`Settings`,
built once from the validated config by :meth:`Settings.from_config`, which refuses a key the class does not
have (a typo never falls back to a default) and builds nested settings from their own blocks.
"""

from __future__ import annotations

import copy
import typing
from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any, ClassVar

from lhcflow.errors import InputError, reject_unknown


class Settings:
    """Base of the frozen stage settings dataclasses (see the module docstring)."""

    #: what the settings are called in an error message (a config key path or the class name)
    config_key: ClassVar[str] = ""

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]):
        """The settings of ``cfg``; a key that is not a field raises
        :class:`~lhcflow.errors.UnknownSettingError`, a missing field without a default
        :class:`~lhcflow.errors.InputError`; a field typed as (optional) :class:`Settings` is built from its
        mapping by its own ``from_config``, any other value is copied."""
        what = cls.config_key or cls.__name__
        reject_unknown(what, cfg, {f.name for f in fields(cls)})
        missing = [f.name for f in fields(cls)
                   if f.name not in cfg and f.default is MISSING and f.default_factory is MISSING]
        if missing:
            raise InputError(f"{what}: missing setting(s) {', '.join(map(repr, missing))}")
        hints = typing.get_type_hints(cls)
        values = {}
        for key, value in cfg.items():
            nested = _settings_type(hints[key])
            if nested is not None and isinstance(value, Mapping):
                values[key] = nested.from_config(value)
            else:
                values[key] = copy.deepcopy(value)
        return cls(**values)


def _settings_type(hint: Any) -> type[Settings] | None:
    """The :class:`Settings` subclass of a field annotation (``X`` or ``X | None``), None for anything
    else."""
    for candidate in (hint, *typing.get_args(hint)):
        if isinstance(candidate, type) and issubclass(candidate, Settings):
            return candidate
    return None
