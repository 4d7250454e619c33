"""Settings of the integrators of thesis Ch. 5: VEGAS and MadNIS defaults and the Tab A.3-A.5 presets.

Kept free of torch so that validating a config (every Snakemake job does it) stays fast.
"""

from __future__ import annotations

import copy
from typing import Any

DEFAULT_VEGAS_CONFIG: dict[str, Any] = {
    "iterations": 10,               # adaptation iterations (training)
    "samples_per_iteration": 20_000,  # integrand calls per iteration, split evenly over channels
    "bins": 64,                     # grid increments per dimension (Tab A.6: 64/128)
    "damping": 0.7,                 # VEGAS damping α (Tab A.6: 0.7/0.5)
    "eval_channel_mode": "variance",  # "variance": N_i ∝ σ_i (Eq 2.55); "uniform": N/n_c
    "eval_uniform_ratio": 0.05,     # share of the evaluation calls always split evenly
    "batch_size": 100_000,          # evaluation batch size
}

DEFAULT_MADNIS_CONFIG: dict[str, Any] = {
    # flow: one INN per channel on the unit hypercube (Eq 5.9)
    "coupling": "rqs",              # "rqs": madnis RQ splines; "affine": Eq 3.47 (lhcflow.nis.affine_flow)
    "blocks": None,                 # None: 2⌈log2 d⌉ blocks
    "permutations": "log",          # rqs: "log", "exchange", "random"; affine: "soft", "exchange", "random"
    "layers": 3,                    # subnet linear layers
    "units": 32,                    # subnet hidden nodes
    "bins": 10,                     # RQ spline bins
    "clamp": 2.0,                   # affine: soft clamp α of the log-scale (Eq 3.48)
    "activation": "leaky_relu",
    "train_flow": True,             # False: identity flow, only the channel weights learn (Tab A.3)
    # channel-weight network on top of the prior (Eq 5.8)
    "cwnet": True,
    "cwnet_layers": 2,
    "cwnet_units": 16,
    "cwnet_standardize": True,      # robust scaling + asinh of the physical x fed to the CWnet
    # optimisation
    "loss": "variance",             # "variance" (Eq 5.12/5.13), "stratified_variance" (Eq 5.20),
                                    # "channel_variance" (madnis.variance), "kl"
    "batch_size": 1024,
    "lr": 1e-3,
    "lr_schedule": "inverse_time",  # "inverse_time": lr/(1 + decay_rate·epoch), or "constant"
    "decay_rate": 0.01,
    "final_lr": None,               # if set, the inverse decay reaches it at the last step (Tab A.6)
    "epochs": 10,
    "batches_per_epoch": 100,
    "steps": None,                  # total optimisation steps; default epochs·batches_per_epoch
    # buffered training (§5.1.2): R = replay_factor = 1 + buffered steps per online step (Eq 5.18)
    "replay_factor": 1,
    "buffer_batches": 10,           # buffer capacity in batches
    "max_stored_channel_weights": None,
    # stratified training and channel dropping (§5.1.2)
    "uniform_channel_ratio": 1.0,   # r: 1 = uniform N_i in training, 0 = fully stratified
    "integration_history_length": 20,
    "channel_dropping_threshold": 0.0,  # e.g. 1e-3 (Tab A.6)
    "channel_dropping_interval": 100,
    "drop_zero_integrands": False,
    # VEGAS initialisation (§5.1.3): None or a block of DEFAULT_VEGAS_INIT keys
    "vegas_init": None,
    # monitoring for Fig 5.10: every k steps, `history_batches` batches of `history_batch_size`
    "history_every": 0,
    "history_batches": 25,
    "history_batch_size": 1000,
    # evaluation
    "eval_channel_mode": "variance",
    "eval_uniform_ratio": 0.05,
    "batch_size_eval": 100_000,
    "dtype": "float64",
}

#: VEGAS initialisation of the MadNIS flows (§5.1.3): the defaults of a ``vegas_init`` block.
DEFAULT_VEGAS_INIT: dict[str, Any] = {
    "iterations": 7,                # VEGAS iterations before the flow takes over the grids
    "bins": 64,                     # grid increments per dimension
    "samples_per_channel": 20_000,  # integrand calls per channel and iteration
    "damping": 0.7,                 # VEGAS damping α
}

#: Tab A.3 — camel back: fixed analytic mappings, only the channel-weight network is trained.
TABLE_A3: dict[str, Any] = {
    "loss": "variance", "lr": 1e-3, "lr_schedule": "inverse_time", "decay_rate": 0.01, "batch_size": 128,
    "epochs": 20, "batches_per_epoch": 100, "train_flow": False, "cwnet": True, "cwnet_layers": 3,
    "cwnet_units": 16, "activation": "leaky_relu",
}
#: Tab A.4 — crossed ring (values without parentheses; the ring-mapping variant overrides units 16,
#: layers 2 and lr 1e-3): affine coupling blocks with soft permutations (random rotations), built by
#: lhcflow.nis.affine_flow since madnis offers RQ splines only.
TABLE_A4: dict[str, Any] = {
    "loss": "variance", "lr": 5e-4, "lr_schedule": "inverse_time", "decay_rate": 0.02, "batch_size": 1024,
    "epochs": 100, "batches_per_epoch": 500, "coupling": "affine", "permutations": "soft", "blocks": 6,
    "units": 32, "layers": 3, "cwnet": True, "cwnet_layers": 2, "cwnet_units": 16, "activation": "leaky_relu",
}
#: Tab A.5 — Drell-Yan + Z'.
TABLE_A5: dict[str, Any] = {
    "loss": "variance", "lr": 1e-3, "lr_schedule": "inverse_time", "decay_rate": 0.01, "batch_size": 10_000,
    "epochs": 60, "batches_per_epoch": 50, "permutations": "exchange", "blocks": 6, "units": 16, "layers": 2,
    "cwnet": True, "cwnet_layers": 2, "cwnet_units": 16, "activation": "leaky_relu",
}
PRESETS = {"table_a3": TABLE_A3, "table_a4": TABLE_A4, "table_a5": TABLE_A5}


def merge_settings(defaults: dict[str, Any], config: dict[str, Any] | None) -> dict[str, Any]:
    """``defaults`` updated by a ``preset`` (if named) and then by ``config``; unknown keys are an error."""
    config = dict(config or {})
    preset = config.pop("preset", None)
    merged = copy.deepcopy(defaults)
    if preset is not None:
        merged.update(PRESETS[preset.lower()])
    unknown = set(config) - set(defaults)
    if unknown:
        raise KeyError(f"unknown integrator options: {sorted(unknown)}")
    merged.update(config)
    return merged


def madnis_steps(config: dict[str, Any]) -> int:
    """Optimisation steps of a merged MadNIS config: ``steps``, else ``epochs`` × ``batches_per_epoch``."""
    if config["steps"] is not None:
        return int(config["steps"])
    return int(config["epochs"]) * int(config["batches_per_epoch"])


def vegas_init_settings(config: dict[str, Any]) -> dict[str, Any] | None:
    """The ``vegas_init`` block of a merged MadNIS config over :data:`DEFAULT_VEGAS_INIT`; None when it is unset
    (``null``). An empty block ``{}`` asks for the initialisation with every default."""
    if config["vegas_init"] is None:
        return None
    return {**DEFAULT_VEGAS_INIT, **dict(config["vegas_init"])}


def experiment_seeds(nis: dict[str, Any], experiment: str) -> int:
    """Independent runs per variant of one experiment: its own ``seeds`` or the chain's ``nis.seeds``."""
    return nis["experiments"][experiment].get("seeds") or nis["seeds"]
