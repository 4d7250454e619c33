"""Analytic channel mappings G: [0, 1]^dim -> x with their densities g(x) (thesis §2.2.3, §5.2).

Every class implements `lhcflow.nis.integrand.ChannelMapping`:

* `sample(r)` maps uniform points r, shape (n, dim), to x and returns (x, log g(x)), where
  g(x) = 1 / |det ∂x/∂r| is normalised over the image of the map (Eq 2.49);
* `log_density(x)` evaluates log g at arbitrary points (-inf outside the image);
* `inverse(x)` returns the r with G(r) = x.

All computations run in float64 on the device of the input. Points on the boundary of the unit
hypercube (r exactly 0 or 1) map to finite x with finite log g; no NaNs are produced.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

DTYPE = torch.float64

# Above this |t| the log of 1 + t^2 is computed as 2 log|t| (t^2 would overflow near 1e154).
_LARGE_T = 1.0e8


def _as_floats(values: float | Sequence[float], dim: int | None = None) -> tuple[float, ...]:
    """A tuple of floats; a scalar is broadcast to `dim` entries (default 1)."""
    if isinstance(values, (int, float)):
        return (float(values),) * (dim or 1)
    out = tuple(float(v) for v in values)
    if dim is not None and len(out) != dim:
        raise ValueError(f"expected {dim} values, got {len(out)}")
    return out


def _row(values: Sequence[float], like: torch.Tensor) -> torch.Tensor:
    """Parameters as a (1, dim) float64 tensor on the device of `like`."""
    return torch.tensor(values, dtype=DTYPE, device=like.device).unsqueeze(0)


def _log1p_square(t: torch.Tensor) -> torch.Tensor:
    """log(1 + t^2) without overflow for huge |t|."""
    large = t.abs() > _LARGE_T
    t_small = torch.where(large, torch.zeros_like(t), t)
    t_large = torch.where(large, t.abs(), torch.ones_like(t))
    return torch.where(large, 2.0 * torch.log(t_large), torch.log1p(t_small * t_small))


def uniform_points(n: int, dim: int, generator: torch.Generator | None = None,
                   device: torch.device | str | None = None) -> torch.Tensor:
    """n uniform float64 points in [0, 1)^dim (the generator must live on `device`)."""
    if device is None and generator is not None:
        device = generator.device
    return torch.rand(n, dim, generator=generator, dtype=DTYPE, device=device)


def sample_mapping(mapping, n: int, generator: torch.Generator | None = None,
                   device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw n points x ~ g from a channel mapping; returns (x, log g(x))."""
    return mapping.sample(uniform_points(n, mapping.dim, generator, device))


class CauchyMapping:
    """Product of (optionally truncated) Cauchy / Breit-Wigner maps, one per dimension.

    x_j = μ_j + γ_j tan(φ_j),  φ_j = a_j + (b_j - a_j) r_j,  a_j, b_j = arctan((x_min,max - μ_j) / γ_j),

    g(x) = Π_j γ_j / [(b_j - a_j) (γ_j^2 + (x_j - μ_j)^2)]   (Eqs 2.43-2.44).

    Without bounds (a = -π/2, b = π/2) this is the camel-back mapping of Eq 5.25 (γ = √2 σ) and the
    second step G_2 of the line mapping, Eq 5.31.
    """

    def __init__(self, mu: float | Sequence[float], gamma: float | Sequence[float],
                 lower: float | Sequence[float] | None = None,
                 upper: float | Sequence[float] | None = None) -> None:
        self.mu = _as_floats(mu)
        self.dim = len(self.mu)
        self.gamma = _as_floats(gamma, self.dim)
        if min(self.gamma) <= 0:
            raise ValueError("Cauchy widths must be positive")
        self.lower = _as_floats(-math.inf if lower is None else lower, self.dim)
        self.upper = _as_floats(math.inf if upper is None else upper, self.dim)
        if any(lo >= hi for lo, hi in zip(self.lower, self.upper)):
            raise ValueError("lower bounds must lie below upper bounds")
        self.angle_lo = tuple(math.atan((lo - m) / g) if math.isfinite(lo) else -math.pi / 2
                              for lo, m, g in zip(self.lower, self.mu, self.gamma))
        self.angle_hi = tuple(math.atan((hi - m) / g) if math.isfinite(hi) else math.pi / 2
                              for hi, m, g in zip(self.upper, self.mu, self.gamma))
        # log of the constant 1 / [(b - a) γ] summed over dimensions
        self._log_norm = -sum(math.log((b - a) * g)
                              for a, b, g in zip(self.angle_lo, self.angle_hi, self.gamma))

    def sample(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x = μ + γ tan(a + (b - a) r); log g = Σ log[cos^2 φ / ((b - a) γ)]."""
        r = r.to(DTYPE)
        lo, hi = _row(self.angle_lo, r), _row(self.angle_hi, r)
        # clamping keeps φ within the float64 value of ±π/2, where tan is finite (±1.6e16) with the right sign
        phi = torch.minimum(torch.maximum(lo + (hi - lo) * r.clamp(0.0, 1.0), lo), hi)
        x = _row(self.mu, r) + _row(self.gamma, r) * torch.tan(phi)
        x = torch.maximum(torch.minimum(x, _row(self.upper, r)), _row(self.lower, r))
        # cos(±π/2) in float64 is ~6e-17, not zero, so the log stays finite at r = 0, 1
        log_g = self._log_norm + 2.0 * torch.log(torch.cos(phi).abs()).sum(dim=-1)
        return x, log_g

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """log g(x) of Eq 2.44 / 5.25 / 5.31; -inf outside [x_min, x_max]."""
        x = x.to(DTYPE)
        t = (x - _row(self.mu, x)) / _row(self.gamma, x)
        log_g = self._log_norm - _log1p_square(t).sum(dim=-1)
        inside = ((x >= _row(self.lower, x)) & (x <= _row(self.upper, x))).all(dim=-1)
        return torch.where(inside, log_g, torch.full_like(log_g, -math.inf))

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        """r = (arctan((x - μ)/γ) - a) / (b - a), clipped to [0, 1]."""
        x = x.to(DTYPE)
        lo, hi = _row(self.angle_lo, x), _row(self.angle_hi, x)
        phi = torch.atan((x - _row(self.mu, x)) / _row(self.gamma, x))
        return ((phi - lo) / (hi - lo)).clamp(0.0, 1.0)


class RotatedCauchyMapping:
    """Line mapping, Eqs 5.30-5.32: a 2D Cauchy in coordinates y rotated against x.

    y_1 runs along the unit vector u = (cos φ, sin φ), y_2 along v = (-sin φ, cos φ):
    x = y_1 u + y_2 v. The default φ = -π/4 gives Eq 5.30, x_{1,2} = (y_2 ± y_1)/√2, i.e. the
    line x_2 = -x_1 of the crossed ring. The rotation has unit Jacobian, so
    g_line(x) = g_2(G_1(x)) with g_2 the Cauchy product of Eq 5.31.
    """

    dim = 2

    def __init__(self, mu: Sequence[float], gamma: Sequence[float], angle: float = -math.pi / 4) -> None:
        self.cauchy = CauchyMapping(_as_floats(mu, 2), _as_floats(gamma, 2))
        self.angle = float(angle)
        c, s = math.cos(self.angle), math.sin(self.angle)
        # columns u and v: x = y @ rotation.T, y = x @ rotation
        self._rotation = ((c, -s), (s, c))

    def _rotation_matrix(self, like: torch.Tensor) -> torch.Tensor:
        return torch.tensor(self._rotation, dtype=DTYPE, device=like.device)

    def to_line_coordinates(self, x: torch.Tensor) -> torch.Tensor:
        """y = G_1(x): (x·u, x·v), Eq 5.30 inverted."""
        x = x.to(DTYPE)
        return x @ self._rotation_matrix(x)

    def sample(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, log_g = self.cauchy.sample(r)
        return y @ self._rotation_matrix(y).T, log_g

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        return self.cauchy.log_density(self.to_line_coordinates(x))

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return self.cauchy.inverse(self.to_line_coordinates(x))


LineMapping = RotatedCauchyMapping


class RingMapping:
    """Ring mapping, Eqs 5.33-5.35: polar coordinates with a Breit-Wigner in the radius.

    r = r_0 + γ_0 tan[π(ω_0 z_1 - C_0)],  θ = 2π z_2,  with π C_0 = arctan(r_0/γ_0) and
    ω_0 = (1 + 2 C_0)/2, so that z_1 = 0 gives r = 0 and z_1 = 1 gives r = ∞ (Eq 5.34).
    The density in (r, θ) is g_4 = γ_0 / [2π ω_0 π (γ_0^2 + (r - r_0)^2)]; with dx_1 dx_2 = r dr dθ
    the normalised density in x is g_ring(x) = g_4(r) / r. (Eq 5.35 prints the factor as r; the
    Jacobian of the polar map x -> (r, θ) is 1/r, which is what keeps ∫ g_ring d^2x = 1.)
    """

    dim = 2

    def __init__(self, r0: float, gamma0: float) -> None:
        if r0 < 0 or gamma0 <= 0:
            raise ValueError("need r0 >= 0 and gamma0 > 0")
        self.r0 = float(r0)
        self.gamma0 = float(gamma0)
        self.c0 = math.atan(self.r0 / self.gamma0) / math.pi
        self.omega0 = (1.0 + 2.0 * self.c0) / 2.0
        # log of 1 / (2π ω_0 π γ_0), the prefactor of g_4 in units of 1/(1 + t^2), t = (r - r_0)/γ_0
        self._log_norm = -math.log(2.0 * math.pi * self.omega0 * math.pi * self.gamma0)

    def sample(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = r.to(DTYPE).clamp(0.0, 1.0)
        # φ = π(ω_0 z_1 - C_0) ∈ [-π C_0, π/2]; the clamp keeps tan φ ≥ 0 finite at z_1 = 1
        phi = (math.pi * (self.omega0 * z[:, 0] - self.c0)).clamp(-math.pi * self.c0, math.pi / 2)
        # r = 0 at z_1 = 0 carries the integrable 1/r pole; keep it finite
        radius = (self.r0 + self.gamma0 * torch.tan(phi)).clamp_min(torch.finfo(DTYPE).tiny)
        theta = 2.0 * math.pi * z[:, 1]
        x = torch.stack([radius * torch.cos(theta), radius * torch.sin(theta)], dim=-1)
        # g_4 = cos^2 φ / (2π ω_0 π γ_0); g_ring = g_4 / r
        log_g = self._log_norm + 2.0 * torch.log(torch.cos(phi).abs()) - torch.log(radius)
        return x, log_g

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """log g_ring(x) = log g_4(|x|) - log |x| (|x| floored as in `sample`)."""
        radius = torch.linalg.vector_norm(x.to(DTYPE), dim=-1).clamp_min(torch.finfo(DTYPE).tiny)
        t = (radius - self.r0) / self.gamma0
        return self._log_norm - _log1p_square(t) - torch.log(radius)

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(DTYPE)
        radius = torch.linalg.vector_norm(x, dim=-1)
        z1 = (torch.atan((radius - self.r0) / self.gamma0) / math.pi + self.c0) / self.omega0
        z2 = torch.remainder(torch.atan2(x[:, 1], x[:, 0]), 2.0 * math.pi) / (2.0 * math.pi)
        return torch.stack([z1, z2], dim=-1).clamp(0.0, 1.0)


class BoxMapping:
    """Flat mapping onto the rectangle Π_j [lower_j, upper_j]: x = lower + (upper - lower) r, g = 1/volume."""

    def __init__(self, lower: float | Sequence[float], upper: float | Sequence[float],
                 dim: int | None = None) -> None:
        if dim is None:
            sized = [v for v in (lower, upper) if not isinstance(v, (int, float))]
            dim = len(sized[0]) if sized else 1
        self.dim = dim
        self.lower = _as_floats(lower, dim)
        self.upper = _as_floats(upper, dim)
        widths = [hi - lo for lo, hi in zip(self.lower, self.upper)]
        if min(widths) <= 0:
            raise ValueError("upper bounds must lie above lower bounds")
        self.volume = math.prod(widths)
        self._log_g = -math.log(self.volume)

    @classmethod
    def square(cls, half_width: float, dim: int = 2) -> BoxMapping:
        """The box [-half_width, half_width]^dim."""
        return cls((-half_width,) * dim, (half_width,) * dim)

    def sample(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = r.to(DTYPE).clamp(0.0, 1.0)
        lo, hi = _row(self.lower, r), _row(self.upper, r)
        x = lo + (hi - lo) * r
        return x, torch.full((r.shape[0],), self._log_g, dtype=DTYPE, device=r.device)

    def contains(self, x: torch.Tensor) -> torch.Tensor:
        """Boolean mask, shape (n,), of the points inside the closed box."""
        x = x.to(DTYPE)
        return ((x >= _row(self.lower, x)) & (x <= _row(self.upper, x))).all(dim=-1)

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        inside = self.contains(x)
        return torch.where(inside, torch.full(inside.shape, self._log_g, dtype=DTYPE, device=x.device),
                           torch.full(inside.shape, -math.inf, dtype=DTYPE, device=x.device))

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(DTYPE)
        lo, hi = _row(self.lower, x), _row(self.upper, x)
        return ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
