"""Rational-quadratic splines on an interval and on the circle (Sec. 3.2.3, used in Sec. 6.5.2).

The Transfermer maps η (bounded by the detector acceptance) and φ (periodic) to *uniform* latent
spaces. Both transforms are built on the RQ spline of :func:`lhcflow.models.splines.rq_spline`
(Eq. 3.49-3.51), which maps [left, right] onto [bottom, top]:

* ``bounded_rq_spline``: monotonic bijection of [a, b] onto itself, all K + 1 knot derivatives
  free; the end points are fixed.
* ``periodic_rq_spline``: circular spline on (−π, π] (Rezende et al., "Normalizing flows on tori
  and spheres", ref. [8] of the thesis). The derivative at -π is tied to the one at +π, so the
  map, continued by y(x + 2π) = y(x) + 2π, is a C¹ diffeomorphism of the circle. A rotation by
  ``shift`` is applied *before* the spline, u = wrap(x - shift), so that the location of a
  conditional peak is one network output rather than a pattern of bin widths; the rotation has
  unit Jacobian.

All parameters are unnormalised network outputs; zeros give the identity map.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lhcflow.models.splines import rq_spline
from lhcflow.physics.kinematics import wrap_angle


def bounded_rq_spline(
    x: Tensor,
    widths: Tensor,
    heights: Tensor,
    derivatives: Tensor,
    low: float = -1.0,
    high: float = 1.0,
    inverse: bool = False,
) -> tuple[Tensor, Tensor]:
    """Monotonic RQ spline [low, high] -> [low, high] and log|dy/dx| (or log|dx/dy| if inverse).

    Shapes: x (...,), widths/heights (..., K), derivatives (..., K + 1). Inputs are clamped into
    the interval (they are supposed to lie inside it; the clamp only guards round-off).
    """
    x = x.clamp(low, high)
    return rq_spline(
        x, widths, heights, derivatives, inverse=inverse, left=low, right=high, bottom=low, top=high
    )


def periodic_rq_spline(
    x: Tensor,
    widths: Tensor,
    heights: Tensor,
    derivatives: Tensor,
    shift: Tensor | None = None,
    inverse: bool = False,
) -> tuple[Tensor, Tensor]:
    """Circular RQ spline on (−π, π]: y = S(wrap(x - shift)); returns y in (−π, π] and log|dy/dx|.

    Shapes: x (...,), widths/heights (..., K), derivatives (..., K) -- the K knot derivatives at
    -π, ..., the last inner knot; the one at +π is set equal to the one at -π. ``shift`` (...,)
    is an optional rotation. The inverse returns x = wrap(S⁻¹(y) + shift) and log|dx/dy|.
    """
    tied = torch.cat([derivatives, derivatives[..., :1]], dim=-1)
    pi = math.pi
    if not inverse:
        u = x if shift is None else x - shift
        u = wrap_angle(u)
        y, logdet = rq_spline(
            u, widths, heights, tied, inverse=False, left=-pi, right=pi, bottom=-pi, top=pi
        )
        return wrap_angle(y), logdet
    y = wrap_angle(x)
    u, logdet = rq_spline(
        y, widths, heights, tied, inverse=True, left=-pi, right=pi, bottom=-pi, top=pi
    )
    out = u if shift is None else u + shift
    return wrap_angle(out), logdet
