"""Training losses of the MadNIS flows beyond madnis' own (``madnis.integrator`` losses).

madnis 1.0 provides the stratified variance (Eq 5.20), a per-channel variance and the KL
divergence; :func:`variance_loss` is the multi-channel variance loss of Eq 5.12 in the buffered
form of Eq 5.13, normalised by Î² so that its scale does not depend on the integral.
"""

from __future__ import annotations

import torch


def variance_loss(f_true: torch.Tensor, q_test: torch.Tensor, q_sample: torch.Tensor | None = None,
                  channels: torch.Tensor | None = None) -> torch.Tensor:
    """Variance loss Σ_i (N/N_i) σ_i² (Eq 5.12; buffered form Eq 5.13), divided by Î² (detached).

    ``f_true`` = α_iξ f/g_i (with gradients through the channel weights), ``q_test`` = g_iθ the
    flow density with gradients, ``q_sample`` the density the points were drawn from.
    """
    if q_sample is None:
        q_sample = q_test
    if channels is None:
        channels = torch.zeros(len(f_true), dtype=torch.long, device=f_true.device)
    n = len(f_true)
    loss = f_true.new_zeros(())
    integral = f_true.new_zeros(())
    for i in torch.unique(channels):
        m = channels == i
        fi, qt, qs = f_true[m], q_test[m], q_sample[m]
        mean = torch.mean(fi / qs)
        var = torch.mean((fi / qt - mean).square() * qt / qs)
        loss = loss + n / fi.shape[0] * var
        integral = integral + mean.detach()
    return loss / integral.abs().clamp(min=torch.finfo(f_true.dtype).tiny).square()
