"""Parton densities from LHAPDF6 ``lhagrid1`` member files, evaluated with batched torch.

The Drell-Yan integrand of thesis §5.2.3 needs x f(x, Q²) of the light quarks at μ_F = M_Z, the
tHj cross section of §6.1 those of the light and b quarks. The thesis uses LHAPDF6 (NNPDF4.0 LO
for Drell-Yan); no LHAPDF installation (and no NNPDF4.0 grid) is available offline, so this module
reads the grids that the Pythia 8 wheel ships (``<prefix>/share/Pythia8/pdfdata/<set>_0000.dat``,
see :func:`pythia_pdf_path`); the accepted sets and their LHAPDF ids are in
:mod:`lhcflow.physics.pdf_sets`, the default is NNPDF2.3 LO with α_s = 0.119.

File format (``lhagrid1``): a YAML header block, then ``---``-separated subgrids, each with a line
of x knots, a line of Q knots (in GeV, not Q²), a line of PDG flavour ids (21 = gluon), and
``n_x · n_Q`` lines of x f(x, Q) values, x running slowest. Subgrids share their boundary Q knot
(the heavy-flavour thresholds).

Interpolation follows LHAPDF6's default ``LogBicubicInterpolator``: on the Q subgrid holding Q²,
a cubic Hermite polynomial in log x whose knot derivatives are finite differences (the mean of
the left and right slopes in the interior, one-sided at the first/last knot), then a cubic
Hermite polynomial in log Q² whose derivatives are the same finite differences of the
x-interpolated values at the neighbouring Q knots. Subgrids with only two Q knots fall back to
bilinear interpolation in (log x, log Q²), as in LHAPDF ≥ 6.4.

Extrapolation differs from LHAPDF: x and Q² outside the grid are *frozen* to the nearest grid
edge (LHAPDF's default "continuation" extrapolator instead continues log-linearly). For the
Drell-Yan integrand (x ≥ 15² / 13000² ≈ 1.3·10⁻⁶ and Q = M_Z) the grids (x ≥ 10⁻⁹, Q from
1 GeV (NNPDF2.3) or 1.65 GeV (NNPDF3.1) to 10⁴ or 10⁵ GeV) are never left, so the choice is
irrelevant there.

Values are returned as interpolated, sign included, like LHAPDF (NNPDF3.1 LO has negative d, d̄ at
x ≲ 10⁻⁶ and low Q, and a slightly negative strange sea at large x; Pythia clamps these to zero).
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import sys
from pathlib import Path
from typing import Sequence

import torch

from lhcflow.physics.pdf_sets import DEFAULT_PDF_SET, pdf_set

GLUON = 21


# --------------------------------------------------------------------------------------------------
# Locating the files
# --------------------------------------------------------------------------------------------------

def _pythia_pdfdata_dirs() -> list[Path]:
    """Candidate ``share/Pythia8/pdfdata`` directories, most specific first."""
    dirs: list[Path] = []
    env = os.environ.get("PYTHIA8DATA")
    if env:  # PYTHIA8DATA points to .../share/Pythia8/xmldoc
        dirs.append(Path(env).parent / "pdfdata")
    spec = importlib.util.find_spec("pythia8mc")
    if spec is not None and spec.origin:
        module = Path(spec.origin).resolve()
        # <prefix>/lib/pythonX.Y/site-packages/pythia8mc*.so -> <prefix>/share/Pythia8/pdfdata
        if len(module.parents) > 3:
            dirs.append(module.parents[3] / "share" / "Pythia8" / "pdfdata")
        # `pip install --target DIR`: DIR/pythia8mc*.so -> DIR/share/Pythia8/pdfdata
        dirs.append(module.parent / "share" / "Pythia8" / "pdfdata")
    dirs.append(Path(sys.prefix) / "share" / "Pythia8" / "pdfdata")
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def pythia_pdf_path(name: str = DEFAULT_PDF_SET, member: int = 0) -> Path:
    """Path of the lhagrid1 member file ``<name>_<member:04d>.dat`` shipped with the Pythia 8 wheel.

    ``name`` may also be a full file name (``...0000.dat``). Raises FileNotFoundError naming every
    path that was tried.
    """
    file = name if name.endswith(".dat") else f"{name}_{member:04d}.dat"
    tried = [d / file for d in _pythia_pdfdata_dirs()]
    for path in tried:
        if path.is_file():
            return path
    raise FileNotFoundError(f"PDF grid {file!r} not found; looked for: " + ", ".join(str(p) for p in tried))


# --------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------

def _parse_value(text: str):
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        return [_parse_value(t) for t in text[1:-1].split(",") if t.strip()]
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip("\"'")


def parse_header(text: str) -> dict:
    """Flat ``Key: value`` YAML (scalars and one-line ``[a, b]`` lists), as used by LHAPDF headers."""
    info: dict = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].rstrip()
        if ":" not in line or line.startswith(" "):
            continue
        key, value = line.split(":", 1)
        info[key.strip()] = _parse_value(value)
    return info


def read_lhagrid1(path: str | Path) -> tuple[dict, list[dict]]:
    """Header dict and subgrids ``{"x", "q", "pids", "xf"}`` (xf: nested list, shape (n_x·n_Q, n_f))."""
    blocks = Path(path).read_text().split("\n---")
    header = parse_header(blocks[0])
    if header.get("Format", "lhagrid1") != "lhagrid1":
        raise ValueError(f"{path}: unsupported format {header.get('Format')!r}")
    subgrids = []
    for block in blocks[1:]:
        lines = [ln for ln in block.strip("-\n ").splitlines() if ln.strip()]
        if not lines:
            continue
        x = [float(v) for v in lines[0].split()]
        q = [float(v) for v in lines[1].split()]
        pids = [int(v) for v in lines[2].split()]
        pids = [GLUON if p == 0 else p for p in pids]
        xf = [[float(v) for v in ln.split()] for ln in lines[3:]]
        if len(xf) != len(x) * len(q) or any(len(row) != len(pids) for row in xf):
            raise ValueError(f"{path}: subgrid with {len(x)} x and {len(q)} Q knots has a malformed value "
                             "block")
        subgrids.append({"x": x, "q": q, "pids": pids, "xf": xf})
    if not subgrids:
        raise ValueError(f"{path}: no subgrids")
    return header, subgrids


# --------------------------------------------------------------------------------------------------
# Interpolation helpers
# --------------------------------------------------------------------------------------------------

def _finite_difference(values: torch.Tensor, knots: torch.Tensor, dim: int) -> torch.Tensor:
    """LHAPDF knot derivatives along ``dim``: mean of left/right slopes inside, one-sided at the ends."""
    v = values.movedim(dim, 0)
    shape = (-1,) + (1,) * (v.dim() - 1)
    slope = (v[1:] - v[:-1]) / (knots[1:] - knots[:-1]).reshape(shape)
    d = torch.empty_like(v)
    d[0] = slope[0]
    d[-1] = slope[-1]
    d[1:-1] = 0.5 * (slope[1:] + slope[:-1])
    return d.movedim(0, dim)


# --------------------------------------------------------------------------------------------------
# The grid
# --------------------------------------------------------------------------------------------------

class PDFGrid:
    """One LHAPDF6 member, batched log-bicubic interpolation in torch (float64, device-movable).

    All subgrids must share their x knots (true for every LHAPDF6 set we know of, and assumed by
    Pythia's reader too). Out-of-grid x or Q² are frozen at the grid edge (see module docstring).
    """

    def __init__(self, path: str | Path, device: torch.device | str | None = None) -> None:
        self.path = Path(path)
        header, subgrids = read_lhagrid1(self.path)
        self.info = self._read_info(header)
        x0, pids = subgrids[0]["x"], subgrids[0]["pids"]
        for sg in subgrids[1:]:
            if sg["x"] != x0 or sg["pids"] != pids:
                raise ValueError(f"{self.path}: subgrids with different x knots or flavours are not "
                                 "supported")
        self.pids: tuple[int, ...] = tuple(pids)
        self._column = {pid: i for i, pid in enumerate(pids)}
        dt = torch.float64
        logx = torch.log(torch.tensor(x0, dtype=dt))
        nx, nf = len(x0), len(pids)

        blocks, logq2, offsets, counts, lower = [], [], [], [], []
        offset = 0
        for sg in subgrids:
            nq = len(sg["q"])
            lq = 2.0 * torch.log(torch.tensor(sg["q"], dtype=dt))
            f = torch.tensor(sg["xf"], dtype=dt).reshape(nx, nq, nf)
            if nq < 2:
                raise ValueError(f"{self.path}: subgrid with a single Q knot")
            fx = _finite_difference(f, logx, 0)
            fq = _finite_difference(f, lq, 1)
            fxq = _finite_difference(fx, lq, 1)
            blocks.append(torch.stack([f, fx, fq, fxq], dim=2))  # (nx, nq, 4, nf)
            logq2.append(lq)
            offsets.append(offset)
            counts.append(nq)
            lower.append(float(lq[0]))
            offset += nq
        self.n_x = nx
        self.n_q_total = offset
        self._logx = logx
        self._logq2 = torch.cat(logq2)
        self._table = torch.cat(blocks, dim=1).reshape(nx * offset, 4, nf)  # rows: ix * n_q_total + iq
        self._selected: dict[tuple[int, ...], torch.Tensor] = {}  # flavour columns -> their table
        self._sub_lower = torch.tensor(lower, dtype=dt)
        self._sub_offset = torch.tensor(offsets, dtype=torch.long)
        self._sub_count = torch.tensor(counts, dtype=torch.long)
        self._has_linear_fallback = any(c < 3 for c in counts)
        self.x_min, self.x_max = float(x0[0]), float(x0[-1])
        self.q2_min = float(torch.exp(self._logq2[0]))
        self.q2_max = float(torch.exp(self._logq2[-1]))
        self.flavour_thresholds = [math.exp(0.5 * v) for v in lower[1:]]
        if device is not None:
            self.to(device)

    # -- metadata ------------------------------------------------------------------------------------

    def _read_info(self, header: dict) -> dict:
        """Header merged over the set's ``.info`` file, if one lies next to the member file."""
        info: dict = {}
        stem = re.sub(r"_\d{4}$", "", self.path.stem)
        for candidate in (self.path.with_name(f"{stem}.info"), self.path.parent / stem / f"{stem}.info"):
            if candidate.is_file():
                info.update(parse_header(candidate.read_text()))
                break
        info.update(header)
        return info

    @property
    def set_name(self) -> str:
        return re.sub(r"_\d{4}$", "", self.path.stem)

    @property
    def lhapdf_id(self) -> int:
        """LHAPDF id of the set (``SetIndex`` of a ``.info`` file, else :data:`~lhcflow.physics.pdf_sets.PDF_SETS`)."""
        if "SetIndex" in self.info:
            return int(self.info["SetIndex"])
        return pdf_set(self.set_name).lhapdf_id

    @property
    def alphas_mz(self) -> float | None:
        """α_s(M_Z) from the header/.info (``AlphaS_MZ``), else from an ``_as_0118``-style set name."""
        if "AlphaS_MZ" in self.info:
            return float(self.info["AlphaS_MZ"])
        match = re.search(r"_as_(\d)(\d{3})", self.set_name)
        return float(f"{match.group(1)}.{match.group(2)}") if match else None

    def alphas_q2(self, q2: torch.Tensor) -> torch.Tensor:
        """α_s(Q²): linear in log Q² through ``AlphaS_Qs``/``AlphaS_Vals`` if tabulated, else
        one-loop running from :attr:`alphas_mz` with n_f = 5 (a rough fallback; not used by lhcflow)."""
        q2 = torch.as_tensor(q2, dtype=torch.float64, device=self.device)
        if "AlphaS_Qs" in self.info and "AlphaS_Vals" in self.info:
            lq = 2.0 * torch.log(torch.tensor(self.info["AlphaS_Qs"], dtype=torch.float64, device=q2.device))
            vals = torch.tensor(self.info["AlphaS_Vals"], dtype=torch.float64, device=q2.device)
            lq2 = torch.log(q2).clamp(lq[0], lq[-1])
            i = (torch.searchsorted(lq, lq2, right=True) - 1).clamp(0, len(lq) - 2)
            t = (lq2 - lq[i]) / (lq[i + 1] - lq[i]).clamp_min(1e-300)
            return vals[i] + t * (vals[i + 1] - vals[i])
        a0 = self.alphas_mz
        if a0 is None:
            raise ValueError(f"{self.path}: no alpha_s information")
        mz = float(self.info.get("MZ", 91.1876))
        b0 = (33 - 2 * 5) / (12 * math.pi)
        return a0 / (1 + a0 * b0 * torch.log(q2 / mz**2))

    # -- device --------------------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return self._table.device

    def to(self, device: torch.device | str) -> "PDFGrid":
        """Move the tables to ``device`` (in place); returns self."""
        for name in ("_logx", "_logq2", "_table", "_sub_lower", "_sub_offset", "_sub_count"):
            setattr(self, name, getattr(self, name).to(device))
        self._selected = {}
        return self

    # -- evaluation ----------------------------------------------------------------------------------

    def _columns(self, pids: Sequence[int]) -> tuple[tuple[int, ...], torch.Tensor]:
        cols = tuple(self._column.get(GLUON if p == 0 else p, 0) for p in pids)
        known = [(GLUON if p == 0 else p) in self._column for p in pids]
        return cols, torch.tensor(known, device=self.device)

    def _selected_table(self, cols: tuple[int, ...]) -> torch.Tensor:
        """The table of the flavour columns ``cols``: rows (n_x · n_Q), columns (4 · len(cols)); copied out
        of the full table once per selection (a copy per call cost as much as interpolating 2000 points)."""
        table = self._selected.get(cols)
        if table is None:
            index = torch.tensor(cols, device=self.device)
            table = self._table.index_select(2, index).reshape(self._table.shape[0], -1)
            self._selected[cols] = table
        return table

    def xfxQ2(self, pids: int | Sequence[int], x: torch.Tensor, q2: torch.Tensor | float) -> torch.Tensor:
        """x f(x, Q²) for PDG id(s) ``pids`` (0 or 21 = gluon; ids absent from the grid give 0).

        ``x`` has shape (n,), ``q2`` shape (n,) or scalar. Returns (n,) for an int ``pids`` and
        (n, len(pids)) for a sequence.
        """
        single = isinstance(pids, int)
        cols, known = self._columns([pids] if single else list(pids))
        x = torch.as_tensor(x, dtype=torch.float64, device=self.device)
        q2 = torch.as_tensor(q2, dtype=torch.float64, device=self.device).expand_as(x)
        out = self._interpolate(x.reshape(-1), q2.reshape(-1), cols) * known
        out = out.reshape(*x.shape, len(cols))
        return out[..., 0] if single else out

    def fxQ2(self, pids: int | Sequence[int], x: torch.Tensor, q2: torch.Tensor | float) -> torch.Tensor:
        """f(x, Q²) = xfxQ2 / x."""
        xf = self.xfxQ2(pids, x, q2)
        x = torch.as_tensor(x, dtype=torch.float64, device=self.device)
        return xf / (x if isinstance(pids, int) else x.unsqueeze(-1))

    def _interpolate(self, x: torch.Tensor, q2: torch.Tensor, cols: tuple[int, ...]) -> torch.Tensor:
        """Flavour columns ``cols``, shape (n, len(cols)), log-bicubic at the edge-clamped (x, Q²).

        The bicubic Hermite form is written as one weighted sum over the 2 × 2 corner knots of
        (f, ∂f/∂log x, ∂f/∂log Q², ∂²f/∂log x∂log Q²), which equals LHAPDF's two-step evaluation
        (x first, then Q² with finite differences of the x-interpolated values) by linearity.
        """
        lx = torch.log(x.clamp(self.x_min, self.x_max))
        lq = torch.log(q2.clamp(self.q2_min, self.q2_max))
        logx, logq2 = self._logx, self._logq2

        ix = (torch.searchsorted(logx, lx, right=True) - 1).clamp(0, self.n_x - 2)
        sub = (torch.searchsorted(self._sub_lower, lq, right=True) - 1).clamp(0, len(self._sub_lower) - 1)
        first = self._sub_offset.index_select(0, sub)
        count = self._sub_count.index_select(0, sub)
        iq = torch.searchsorted(logq2, lq, right=True) - 1
        iq = torch.minimum(torch.maximum(iq, first), first + count - 2)

        lx0, lq0 = logx.index_select(0, ix), logq2.index_select(0, iq)
        dlx = logx.index_select(0, ix + 1) - lx0
        dlq = logq2.index_select(0, iq + 1) - lq0
        tx = (lx - lx0) / dlx
        tq = (lq - lq0) / dlq
        hx = _hermite_basis(tx, dlx)  # (n, 2 ends, 2: value/slope weights)
        hq = _hermite_basis(tq, dlq)
        if self._has_linear_fallback:  # two-knot subgrids: bilinear (slope weights zero)
            lin = (count < 3).unsqueeze(-1)
            hx = torch.where(lin.unsqueeze(-1), _linear_basis(tx), hx)
            hq = torch.where(lin.unsqueeze(-1), _linear_basis(tq), hq)

        # weights of (f, f_x, f_q, f_xq) at corners (ix + i, iq + j): hx[i, a] · hq[j, b] with
        # (a, b) = (value, value), (slope, value), (value, slope), (slope, slope)
        w = hx[:, :, None, :, None] * hq[:, None, :, None, :]  # (n, i, j, a, b)
        w = w.transpose(-1, -2).reshape(-1, 1, 16)  # order i, j, (b, a) -> f, f_x, f_q, f_xq
        nq = self.n_q_total
        row = (ix * nq + iq).unsqueeze(-1) + torch.tensor([0, 1, nq, nq + 1], device=x.device)
        corners = self._selected_table(cols).index_select(0, row.reshape(-1)).reshape(-1, 16, len(cols))
        out = torch.bmm(w, corners).squeeze(1)
        return out


def _hermite_basis(t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Cubic Hermite weights, shape (n, 2, 2): [end][value, slope·h] for the interval fraction t."""
    t2 = t * t
    t3 = t2 * t
    h00 = 2 * t3 - 3 * t2 + 1
    h10 = (t3 - 2 * t2 + t) * h
    h01 = 3 * t2 - 2 * t3
    h11 = (t3 - t2) * h
    return torch.stack([torch.stack([h00, h10], -1), torch.stack([h01, h11], -1)], 1)


def _linear_basis(t: torch.Tensor) -> torch.Tensor:
    zero = torch.zeros_like(t)
    return torch.stack([torch.stack([1 - t, zero], -1), torch.stack([t, zero], -1)], 1)


def load_pythia_pdf(name: str = DEFAULT_PDF_SET, member: int = 0,
                    device: torch.device | str | None = None) -> PDFGrid:
    """:class:`PDFGrid` of a set shipped with the Pythia 8 wheel (default: NNPDF2.3 LO, α_s = 0.119)."""
    return PDFGrid(pythia_pdf_path(name, member), device=device)
