"""The stage contract: frozen settings built from config mappings that refuse unknown and missing keys."""

from __future__ import annotations

import dataclasses

import pytest

from lhcflow.errors import InputError, UnknownSettingError
from lhcflow.zjets.stages import PreprocessSettings, TrainSettings

MODEL = {"kind": "inn", "network": {"hidden": 8}, "training": {"epochs": 1}}
MAGIC = {"enabled": True, "r_minus": 0.2, "r_plus": 1.5, "r_min": 0.4}


def test_nested_settings_are_built_from_their_blocks():
    settings = TrainSettings.from_config({"model": MODEL, "magic": MAGIC, "net": 2, "seed": 5})
    assert settings.model.kind == "inn" and settings.model.network == {"hidden": 8}
    assert settings.magic.r_plus == 1.5 and settings.train_fraction == 1.0
    assert PreprocessSettings.from_config({}).magic is None
    assert PreprocessSettings.from_config({"magic": MAGIC}).magic.enabled


def test_settings_are_frozen_and_do_not_share_the_config():
    config = {"model": MODEL, "magic": MAGIC, "net": 1, "seed": 5}
    settings = TrainSettings.from_config(config)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.seed = 6
    config["model"]["network"]["hidden"] = 64
    assert settings.model.network == {"hidden": 8}
    MODEL["network"]["hidden"] = 8


def test_unknown_keys_are_refused_at_every_level():
    with pytest.raises(UnknownSettingError, match=r"'sed' \(did you mean 'seed'\?\)"):
        TrainSettings.from_config({"model": MODEL, "magic": MAGIC, "net": 1, "sed": 5})
    with pytest.raises(UnknownSettingError, match=r"zjets.models setting\(s\) 'netwrk'"):
        TrainSettings.from_config({"model": {"kind": "inn", "netwrk": {}}, "magic": MAGIC, "net": 1,
                                   "seed": 5})
    with pytest.raises(UnknownSettingError, match=r"zjets.magic setting\(s\) 'r_max'"):
        TrainSettings.from_config({"model": MODEL, "magic": {**MAGIC, "r_max": 2.0}, "net": 1, "seed": 5})


def test_missing_keys_are_named():
    with pytest.raises(InputError, match=r"TrainSettings: missing setting\(s\) 'net', 'seed'"):
        TrainSettings.from_config({"model": MODEL, "magic": MAGIC})


def test_mem_integration_block_is_one_typed_settings_object():
    """``chunk_size`` is a field of the integration settings, next to the per-event MemSettings, and a typo in
    the block is refused rather than dropped."""
    from lhcflow.mem.stages import IntegrationSettings

    settings = IntegrationSettings.from_config({"batch_size": 500, "alpha_grid_deg": [-90, 0, 90],
                                                "chunk_size": 8})
    assert settings.chunk_size == 8 and settings.mem.batch_size == 500
    assert settings.mem.alpha_grid == pytest.approx((-1.5707963, 0.0, 1.5707963))
    with pytest.raises(UnknownSettingError, match=r"mem.integration setting\(s\) 'chunksize'"):
        IntegrationSettings.from_config({"chunksize": 8})
