"""MadNIS (thesis Ch. 5) as an lhcflow integrator: :class:`MadnisIntegrator` adapts ``madnis.integrator``.

The adapter hands madnis the per-channel integrand on the unit hypercube, builds the flows
(madnis' RQ splines or :class:`~lhcflow.nis.affine_flow.AffineCouplingFlow`), the channel-weight
network (Eq 5.8) and the optimiser (:class:`FiniteStepAdam`), trains with checkpoints that resume
to the state of an uninterrupted training, and samples through madnis for the shared estimator of
:class:`~lhcflow.nis.base_integrator.BaseIntegrator`. It uses madnis' public API only.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lhcflow.nis.base_integrator import BaseIntegrator
from lhcflow.nis.integrand import MultiChannelIntegrand
from lhcflow.nis.losses import variance_loss
from lhcflow.nis.sampling import (
    WeightedSample,
    allocate,
    as_device,
    estimate,
    seeded,
    subseed,
    synchronize,
    torch_generator,
)
from lhcflow.nis.settings import DEFAULT_MADNIS_CONFIG, madnis_steps, merge_settings, vegas_init_settings
from lhcflow.training.checkpoint import fingerprint, read_checkpoint, restore_rng_state, write_checkpoint

log = logging.getLogger(__name__)

#: the subnet activations a MadNIS config may name (``activation``)
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "leaky_relu": nn.LeakyReLU, "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh,
}


class FiniteStepAdam(torch.optim.Adam):
    """Adam that skips a step whose gradients are not all finite (and counts it in ``skipped``).

    madnis skips a batch whose loss is NaN, but applies a step whose gradient is not finite, which turns
    every weight of the flow into NaN for the rest of the training and the channel's integral into NaN
    (seen in the crossed-ring validation, ring + flat, 1 of 10 seeds). The count is part of the saved
    state, so a resumed training reports the skips of the whole training."""

    def __init__(self, params, lr: float) -> None:
        super().__init__(params, lr)
        self.skipped = 0

    @torch.no_grad()
    def step(self, closure=None):
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        if grads and not bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()):
            self.skipped += 1
            return None
        return super().step(closure)


class _ZeroCWNet(nn.Module):
    """Δ = 0 'network' so that madnis applies the channel-dropping mask to fixed prior weights."""

    def __init__(self, n_channels: int):
        super().__init__()
        self.n_channels = n_channels

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y.new_zeros((y.shape[0], self.n_channels))


class _CWNet(nn.Module):
    """Δ_iξ(x) of Eq 5.8 on standardised features asinh((φ(x) - loc)/scale); last layer zero-initialised."""

    def __init__(self, mlp: nn.Module, loc: torch.Tensor, scale: torch.Tensor,
                 features: Callable[[torch.Tensor], torch.Tensor] | None = None, squash: bool = True):
        super().__init__()
        self.mlp = mlp
        self.features = features
        self.squash = squash
        self.register_buffer("loc", loc)
        self.register_buffer("scale", scale)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        z = y if self.features is None else self.features(y)
        z = (z - self.loc) / self.scale
        return self.mlp(torch.asinh(z) if self.squash else z)


def _buffer_tensors(buffer) -> dict[str, torch.Tensor] | None:
    """Contents of a madnis replay buffer, which its state_dict leaves out (persistent=False).

    The stored fields are the buffer's ``keys``; its fill level and write position go under the
    names "_size" and "_store_index" (the checkpoint format since the first release)."""
    if buffer is None:
        return None
    out = {k: getattr(buffer, k).detach().cpu().clone() for k in buffer.keys if getattr(buffer, k) is not None}
    out.update(_size=torch.tensor(buffer.size), _store_index=torch.tensor(buffer.store_index))
    return out


def _restore_buffer(buffer, tensors: Mapping[str, torch.Tensor]) -> None:
    """Refill a madnis replay buffer from :func:`_buffer_tensors`."""
    for name, tensor in tensors.items():
        if name == "_size":
            buffer.size = int(tensor)
        elif name == "_store_index":
            buffer.store_index = int(tensor)
        else:
            getattr(buffer, name).copy_(tensor)


def history_channel_stds(integrator) -> torch.Tensor:
    """σ_i per channel from a madnis integrator's integration history, for N_i ∝ σ_i (Eq 2.55).

    The history (``Integrator.integration_history``, public) holds the channel means, variances
    and counts of the last training batches; σ_i² is the count-weighted mean of the stored
    variances, leaving out batches where the channel had no points (NaN). madnis 1.0 computes the
    same quantity for its own stratified sampling only in a private method, so it is built here
    from the public history.
    """
    _, variances, counts = integrator.integration_history
    counts = counts.to(variances.dtype).masked_fill(variances.isnan(), float("nan"))
    return torch.nansum(counts / counts.nansum(dim=0) * variances, dim=0).sqrt()


class MadnisIntegrator(BaseIntegrator):
    """MadNIS (Ch. 5) through ``madnis.integrator.Integrator``.

    * flows per channel on the unit hypercube after the analytic mapping (Eq 5.9): the madnis
      integrand receives the flow output r and channel i and returns (f/g_i, x, α^prior(x)), i.e.
      ``remapped_dim`` = dim x, ``has_channel_weight_prior`` = True; madnis' RQ-spline flow, or
      (``coupling: affine``) :class:`~lhcflow.nis.affine_flow.AffineCouplingFlow` for Tab A.4;
    * trainable channel weights α_iξ = softmax(log α_i^prior + Δ_iξ(x)) (Eq 5.8, madnis cwnet,
      zero-initialised so training starts at the prior);
    * variance loss (Eq 5.12/5.13) or the stratified MadNIS loss (Eq 5.20);
    * buffered training with replay factor R (§5.1.2, Eq 5.18), stratified training
      (``uniform_channel_ratio``), channel dropping, and VEGAS initialisation (§5.1.3).
    """

    method = "madnis"

    def __init__(self, integrand: MultiChannelIntegrand, config: dict[str, Any] | None = None,
                 device: str | torch.device | None = None, seed: int | None = 0,
                 cwnet_features: Callable[[torch.Tensor], torch.Tensor] | None = None):
        super().__init__(integrand, device, seed)
        self.config = merge_settings(DEFAULT_MADNIS_CONFIG, config)
        self.dtype = getattr(torch, self.config["dtype"])
        self.evaluator.dtype = self.dtype
        self.cwnet_features = cwnet_features
        self._vegas_done = False
        with seeded(subseed(seed, "madnis-init"), self.device):
            self.integrator = self._build()

    @property
    def steps(self) -> int:
        return madnis_steps(self.config)

    # ------------------------------------------------------------------ construction
    def _madnis_function(self, r: torch.Tensor, channels: torch.Tensor):
        return self.evaluator(r, channels)

    def _cwnet(self, activation: Callable[[], nn.Module]) -> nn.Module:
        from madnis.nn import MLP

        cfg = self.config
        # feature scale from mapped flat points: no integrand calls needed
        gen = torch_generator(subseed(self.seed, "cwnet-scale"), self.device)
        with torch.no_grad():
            r = torch.rand((2048 * self.n_channels, self.unit_dim), generator=gen, device=self.device,
                           dtype=self.dtype)
            ch = torch.arange(self.n_channels, device=self.device).repeat_interleave(2048)
            x, _ = self.evaluator.map(r, ch)
            z = x if self.cwnet_features is None else self.cwnet_features(x)
            z = z[torch.isfinite(z).all(dim=1)]
        n_feat = z.shape[1]
        if cfg["cwnet_standardize"] and len(z) > 10:
            loc = z.median(dim=0).values
            q = torch.quantile(z, torch.tensor([0.16, 0.84], dtype=z.dtype, device=z.device), dim=0)
            scale = ((q[1] - q[0]) / 2).clamp(min=1e-12)
        else:
            loc, scale = torch.zeros(n_feat, dtype=self.dtype), torch.ones(n_feat, dtype=self.dtype)
        mlp = MLP(n_feat, self.n_channels, layers=int(cfg["cwnet_layers"]), units=int(cfg["cwnet_units"]),
                  activation=activation)
        return _CWNet(mlp, loc.to(self.device, self.dtype), scale.to(self.device, self.dtype),
                      self.cwnet_features, squash=bool(cfg["cwnet_standardize"]))

    def _loss(self):
        from madnis.integrator import kl_divergence, stratified_variance, variance

        name = self.config["loss"]
        losses = {"variance": variance_loss, "stratified_variance": stratified_variance,
                  "channel_variance": variance, "kl": kl_divergence}
        if name not in losses:
            raise ValueError(f"unknown MadNIS loss {name!r}; choose from {sorted(losses)}")
        return losses[name]

    def _scheduler(self):
        cfg = self.config
        if cfg["lr_schedule"] == "constant":
            return None
        if cfg["lr_schedule"] != "inverse_time":
            raise ValueError(f"unknown lr schedule {cfg['lr_schedule']!r}")
        if cfg["final_lr"] is not None:
            k = (cfg["lr"] / cfg["final_lr"] - 1.0) / max(self.steps, 1)
        else:
            k = float(cfg["decay_rate"]) / max(int(cfg["batches_per_epoch"]), 1)
        return lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (1.0 + k * step))

    def _blocks(self) -> int:
        blocks = self.config["blocks"]
        return int(blocks) if blocks is not None else 2 * max(1, math.ceil(math.log2(max(self.unit_dim, 2))))

    def _flow(self, activation: Callable[[], nn.Module]) -> nn.Module | None:
        """The affine-coupling flow for ``coupling: affine``; None for madnis' own RQ-spline flow."""
        from lhcflow.nis.affine_flow import PERMUTATIONS, AffineCouplingFlow

        cfg = self.config
        permutations = {"rqs": ("log", "exchange", "random"), "affine": PERMUTATIONS}
        if cfg["coupling"] not in permutations:
            raise ValueError(f"unknown MadNIS setting coupling={cfg['coupling']!r}; "
                             f"choose from {sorted(permutations)}")
        allowed = permutations[cfg["coupling"]]
        if cfg["permutations"] not in allowed:
            raise ValueError(f"unknown MadNIS setting permutations={cfg['permutations']!r} for coupling "
                             f"{cfg['coupling']!r}; choose from {list(allowed)}")
        if cfg["coupling"] == "rqs":
            return None
        if vegas_init_settings(cfg) is not None:
            raise ValueError("MadNIS setting vegas_init needs coupling 'rqs': "
                             "VEGAS grids initialise RQ splines only")
        return AffineCouplingFlow(dims=self.unit_dim, channels=self.n_channels, blocks=self._blocks(),
                                  layers=int(cfg["layers"]), units=int(cfg["units"]), activation=activation,
                                  permutations=cfg["permutations"], clamp=float(cfg["clamp"]),
                                  seed=subseed(self.seed, "affine-permutations"))

    def _build(self):
        from madnis.integrator import Integrand, Integrator

        cfg = self.config
        activation = ACTIVATIONS[cfg["activation"]]
        integrand = Integrand(self._madnis_function, input_dim=self.unit_dim, channel_count=self.n_channels,
                              remapped_dim=self.integrand.dim, has_channel_weight_prior=True)
        flow, flow_kwargs = self._flow(activation), {}
        if flow is None:
            flow_kwargs = dict(permutations=cfg["permutations"], layers=int(cfg["layers"]),
                               units=int(cfg["units"]), bins=int(cfg["bins"]), activation=activation)
            if cfg["blocks"] is not None or cfg["permutations"] != "log":
                flow_kwargs["blocks"] = self._blocks()
        if cfg["cwnet"]:
            cwnet = self._cwnet(activation)
        elif cfg["channel_dropping_threshold"] > 0:
            cwnet = _ZeroCWNet(self.n_channels)  # madnis ignores the dropping mask without a cwnet
        else:
            cwnet = None
        replay = int(cfg["replay_factor"])
        if replay < 1:
            raise ValueError("replay_factor must be >= 1")
        buffer_capacity = int(cfg["buffer_batches"]) * int(cfg["batch_size"]) if replay > 1 else 0
        integrator = Integrator(
            integrand, flow=flow, flow_kwargs=flow_kwargs, train_channel_weights=False, cwnet=cwnet,
            loss=self._loss(), batch_size=int(cfg["batch_size"]),
            optimizer=lambda params: FiniteStepAdam(params, float(cfg["lr"])),
            scheduler=self._scheduler(),
            uniform_channel_ratio=float(cfg["uniform_channel_ratio"]),
            integration_history_length=int(cfg["integration_history_length"]),
            drop_zero_integrands=bool(cfg["drop_zero_integrands"]), buffer_capacity=buffer_capacity,
            minimum_buffer_size=int(cfg["batch_size"]) - 1, buffered_steps=replay - 1,
            max_stored_channel_weights=cfg["max_stored_channel_weights"],
            channel_dropping_threshold=float(cfg["channel_dropping_threshold"]),
            channel_dropping_interval=int(cfg["channel_dropping_interval"]),
            device=self.device, dtype=self.dtype)
        if not cfg["train_flow"]:
            for p in integrator.flow.parameters():
                p.requires_grad_(False)
        return integrator

    # ------------------------------------------------------------------ training
    def _vegas_init(self, seed: int | None) -> None:
        from madnis.integrator import VegasPreTraining

        vcfg = vegas_init_settings(self.config)
        if self.unit_dim < 2:
            raise ValueError("madnis VEGAS initialisation needs at least two dimensions")
        pre = VegasPreTraining(self.integrator, bins=int(vcfg["bins"]), damping=float(vcfg["damping"]))
        pre.rng = np.random.default_rng(subseed(seed, "vegas-init"))
        pre.train([int(vcfg["samples_per_channel"])] * int(vcfg["iterations"]))
        pre.initialize_integrator()
        self._vegas_done = True

    def _monitor(self, step: int, seed: int | None) -> None:
        """σ²/I² from ``history_batches`` fresh batches (uniform N_i), as in Fig 5.10 left."""
        cfg = self.config
        calls0 = self.evaluator.calls
        values = []
        with seeded(subseed(seed, "monitor", step), self.device), torch.no_grad():
            for _ in range(int(cfg["history_batches"])):
                parts = []
                for c, n_c in enumerate(allocate(int(cfg["history_batch_size"]), None, self.n_channels,
                                                 active=self.integrator.active_channels_mask)):
                    if n_c:
                        parts.append((c, *self._madnis_channel(c, n_c)))
                est = estimate(WeightedSample.from_channels(parts, self.n_channels, self.integrand.dim,
                                                            self.unit_dim, self.device))
                values.append(est["rel_std"] ** 2)
        t = torch.tensor(values, dtype=torch.float64)
        t = t[torch.isfinite(t)]
        if len(t):
            self.variance_history.append((step, t.mean().item()))
            self.variance_spread.append((step, torch.quantile(t, 0.05).item(), torch.quantile(t, 0.95).item()))
        self.n_calls_monitor += self.evaluator.calls - calls0

    def train(self, steps: int | None = None, seed: int | None = None, progress: bool = True,
              checkpoint: str | Path | None = None, checkpoint_settings: Mapping[str, Any] | None = None) -> None:
        """VEGAS initialisation (if configured, once) and ``steps`` madnis optimisation steps.

        With ``checkpoint``, the whole training state (flow, channel-weight network, optimizer,
        scheduler, replay buffer, integration history and channel mask, loss and variance
        histories, call counters and the RNG state) is written there atomically every
        ``batches_per_epoch`` steps and at the end. A rerun whose checkpoint comes from the same
        training (config, seed, ``steps``, ``checkpoint_settings`` such as the integrand, and network
        shapes) continues after it and ends in the state of an uninterrupted run; another
        training's checkpoint is ignored and overwritten.
        """
        from tqdm.auto import tqdm

        cfg = self.config
        seed = self.seed if seed is None else seed
        steps = self.steps if steps is None else int(steps)
        start = self.integrator.step
        key = rng = None
        if checkpoint is not None:
            key = fingerprint(self.integrator, {"config": cfg, "seed": seed, "steps": steps, "start": start,
                                                **dict(checkpoint_settings or {})})
            rng = self._resume(checkpoint, key)
        done = self.integrator.step - start
        every = int(cfg["history_every"])
        checkpoint_every = max(int(cfg["batches_per_epoch"]), 1)
        counters = self._counters()
        with seeded(subseed(seed, "madnis-train", start), self.device):
            if rng is not None:
                restore_rng_state(rng)
                log.info("MadNIS: resuming from %s after step %d of %d", checkpoint, done, steps)
            if vegas_init_settings(cfg) is not None and not self._vegas_done:
                self._vegas_init(seed)
            if every and self.integrator.step == 0:
                self._monitor(0, seed)
            bar = tqdm(range(done, steps), initial=done, total=steps, disable=not progress, desc="MadNIS",
                       leave=False)
            for i in bar:
                status = self.integrator.train_step()
                self.loss_history.append((status.step + 1, status.loss))
                if every and (status.step + 1) % every == 0:
                    self._monitor(status.step + 1, seed)
                if progress and status.step % 20 == 0:
                    bar.set_postfix(loss=f"{status.loss:.3g}")
                if checkpoint is not None and ((i + 1) % checkpoint_every == 0 or i + 1 == steps):
                    counters = self._count(counters)
                    self._save_checkpoint(checkpoint, key)
        self._count(counters)

    def _counters(self) -> tuple[float, int, int]:
        synchronize(self.device)
        return time.perf_counter(), self.evaluator.calls, self.n_calls_monitor

    def _count(self, since: tuple[float, int, int]) -> tuple[float, int, int]:
        """Add the training time and calls (without monitoring calls) spent ``since``; new mark."""
        now = self._counters()
        self.time_train += now[0] - since[0]
        self.n_calls_train += (now[1] - since[1]) - (now[2] - since[2])
        return now

    def _save_checkpoint(self, path: str | Path, key: str) -> None:
        write_checkpoint(path, {**self.state(), "replay_buffer": _buffer_tensors(self.integrator.buffer)}, key)

    def _resume(self, path: str | Path, key: str) -> dict | None:
        """Restore a checkpoint of this training and return its RNG states; None if there is none."""
        state = read_checkpoint(path, key, "MadNIS")
        if state is None:
            return None
        self._restore(state)
        if self.integrator.buffer is not None:
            _restore_buffer(self.integrator.buffer, state["replay_buffer"])
        return state["rng"]

    def _restore(self, state: Mapping[str, Any]) -> None:
        """Load networks, optimizer, scheduler, step, channel mask and histories from a :meth:`state`."""
        integ = self.integrator
        integ.load_state_dict(state["state_dict"])
        integ.optimizer.load_state_dict(state["optimizer"])
        if integ.scheduler is not None and state["scheduler"] is not None:
            integ.scheduler.load_state_dict(state["scheduler"])
        integ.step = int(state["step"])
        integ.step_type_count = int(state.get("step_type_count", 0))
        self._vegas_done = bool(state["vegas_done"])
        self.n_calls_train = int(state["n_calls_train"])
        self.n_calls_monitor = int(state.get("n_calls_monitor", 0))
        self.integrator.optimizer.skipped = int(state.get("skipped_steps", 0))
        self.time_train = float(state["time_train"])
        self.loss_history = [tuple(v) for v in state["loss_history"]]
        self.variance_history = [tuple(v) for v in state["variance_history"]]
        self.variance_spread = [tuple(v) for v in state["variance_spread"]]

    # ------------------------------------------------------------------ sampling
    def _madnis_channel(self, channel: int, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch = self.integrator.sample(n, batch_size=max(n, 1), channel=channel)
        # with a single channel per call madnis' N/N_i normalisation is 1: weights = α_iξ f/(g_i q_i)
        return batch.x.to(torch.float64), batch.y.to(torch.float64), batch.weights.to(torch.float64)

    def _sample_channel(self, channel, n, generator):
        return self._madnis_channel(channel, n)

    @contextlib.contextmanager
    def _random_state(self, seed):
        with seeded(seed, self.device):
            yield self._rng

    def channel_allocation(self, n: int) -> list[int]:
        cfg = self.config
        active = self.integrator.active_channels_mask
        sig = None
        if cfg["eval_channel_mode"] == "variance" and self.integrator.integration_history.size > 0:
            sig = history_channel_stds(self.integrator)
        return allocate(n, sig, self.n_channels, cfg["eval_uniform_ratio"], active=active)

    def channel_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Learned α_iξ(x) (Eq 5.8) at physical points x, shape (n, n_channels).

        α_iξ = α_i^prior · m_i · exp Δ_iξ(x) / Σ_j (…), with m the madnis channel mask (dropped
        channels 0) and Δ this integrator's channel-weight network; without one, the prior. madnis 1.0
        returns these weights only for its own samples (``Integrator.sample(...).alphas``), so they are
        composed here from the public network (``Integrator.cwnet``) and ``active_channels_mask``.
        """
        x = x.to(self.device, self.dtype)
        prior = self.integrand.channel_weights(x).to(self.dtype)
        cwnet = self.integrator.cwnet
        if cwnet is None:
            return prior
        with torch.no_grad():
            alpha = prior * self.integrator.active_channels_mask * cwnet(x).exp()
            return alpha / alpha.sum(dim=1, keepdim=True)

    # ------------------------------------------------------------------ persistence
    def state(self) -> dict[str, Any]:
        integ = self.integrator
        return {
            "format": "lhcflow.nis.madnis/1",
            "integrand": self.integrand.name,
            "dim": self.integrand.dim,
            "unit_dim": self.unit_dim,
            "n_channels": self.n_channels,
            "config": self.config,
            "seed": self.seed,
            "state_dict": integ.state_dict(),
            "optimizer": integ.optimizer.state_dict(),
            "scheduler": None if integ.scheduler is None else integ.scheduler.state_dict(),
            "step": integ.step,
            "step_type_count": integ.step_type_count,
            "vegas_done": self._vegas_done,
            "n_calls_train": self.n_calls_train,
            "n_calls_monitor": self.n_calls_monitor,
            "skipped_steps": self.integrator.optimizer.skipped,
            "time_train": self.time_train,
            "loss_history": self.loss_history,
            "variance_history": self.variance_history,
            "variance_spread": self.variance_spread,
        }

    def save(self, path: str | Path) -> Path:
        """Write the trained state (torch state dicts + config + histories), atomically."""
        from lhcflow.atomic import save_torch

        save_torch(path, self.state())
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, integrand: MultiChannelIntegrand, device: str | torch.device | None = None,
             cwnet_features: Callable[[torch.Tensor], torch.Tensor] | None = None) -> MadnisIntegrator:
        """Rebuild a saved integrator for ``integrand`` (same name, dimensions and channels)."""
        state = torch.load(path, map_location=as_device(device), weights_only=True)
        if state.get("format") != "lhcflow.nis.madnis/1":
            raise ValueError(f"{path}: not a saved lhcflow MadNIS state")
        if (state["dim"], state["unit_dim"], state["n_channels"]) != \
                (integrand.dim, integrand.channels[0].dim, integrand.n_channels):
            raise ValueError(f"{path}: saved for a different integrand layout ({state['integrand']})")
        obj = cls(integrand, state["config"], device=device, seed=state["seed"], cwnet_features=cwnet_features)
        obj._restore(state)
        return obj
