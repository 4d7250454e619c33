"""LHAPDF6 lhagrid1 reader: interpolation algebra, Pythia 8 cross-check, sum rules, edges."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import pytest
import pythia8mc
import torch

import lhcflow.physics.pdf as pdf_module
from lhcflow.physics.pdf import PDFGrid, load_pythia_pdf, pythia_pdf_path, read_lhagrid1
from lhcflow.physics.pdf_sets import PDF_SETS

SET = "NNPDF31_lo_as_0118"


@pytest.fixture(scope="module")
def grid() -> PDFGrid:
    return load_pythia_pdf(SET)


# --------------------------------------------------------------------------------------------------
# Files and metadata
# --------------------------------------------------------------------------------------------------

def test_pythia_path_found_and_missing_names_the_paths():
    path = pythia_pdf_path(SET)
    assert path.name == f"{SET}_0000.dat" and path.is_file()
    assert pythia_pdf_path(f"{SET}_0000.dat") == path
    with pytest.raises(FileNotFoundError, match=r"NoSuchSet_0000\.dat.*pdfdata"):
        pythia_pdf_path("NoSuchSet")


def test_pythia_path_of_a_target_install(tmp_path: Path, monkeypatch):
    """``pip install --target DIR`` puts the module in DIR and the grids in DIR/share/Pythia8/pdfdata (the
    layout of a GPU machine's carried wheels); a module in a folder with fewer than four parents is fine."""
    import importlib.machinery
    import importlib.util

    real = pythia_pdf_path(SET)
    target = tmp_path / "site"
    (target / "share" / "Pythia8" / "pdfdata").mkdir(parents=True)
    (target / "share" / "Pythia8" / "pdfdata" / real.name).symlink_to(real)
    monkeypatch.delenv("PYTHIA8DATA", raising=False)
    for origin in (target / "pythia8mc.so", Path("/pythia8mc.so")):
        spec = importlib.machinery.ModuleSpec("pythia8mc", None, origin=str(origin))
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, spec=spec: spec)
        assert origin.parent / "share" / "Pythia8" / "pdfdata" in pdf_module._pythia_pdfdata_dirs()
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "no-prefix"))
    spec = importlib.machinery.ModuleSpec("pythia8mc", None, origin=str(target / "pythia8mc.so"))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    assert pythia_pdf_path(SET) == target / "share" / "Pythia8" / "pdfdata" / real.name


def test_header_and_grid_layout(grid):
    assert grid.info["Format"] == "lhagrid1"
    assert grid.alphas_mz == pytest.approx(0.118)  # no AlphaS_MZ in the member header: from the set name
    assert grid.pids == (-5, -4, -3, -2, -1, 21, 1, 2, 3, 4, 5)
    assert grid.x_min == pytest.approx(1e-9) and grid.x_max == 1.0
    assert math.sqrt(grid.q2_min) == pytest.approx(1.65) and math.sqrt(grid.q2_max) == pytest.approx(1e5)
    assert grid.flavour_thresholds == pytest.approx([4.92])  # b threshold separates the two subgrids
    assert grid._table.dtype == torch.float64


# --------------------------------------------------------------------------------------------------
# Interpolation algebra
# --------------------------------------------------------------------------------------------------

def _lhapdf_reference(x: float, q2: float, xs, logq2s, xf, col: int) -> float:
    """Scalar two-step LHAPDF log-bicubic on one subgrid (x first, then Q² from interpolated values)."""
    lx, lq = [math.log(v) for v in xs], logq2s
    nx, nq = len(lx), len(lq)
    f = lambda i, j: xf[i * nq + j][col]  # noqa: E731
    ix = max(0, min(nx - 2, max(i for i in range(nx) if lx[i] <= math.log(x))))
    iq = max(0, min(nq - 2, max(j for j in range(nq) if lq[j] <= math.log(q2))))

    def ddx(i, j):
        if i == 0:
            return (f(1, j) - f(0, j)) / (lx[1] - lx[0])
        if i == nx - 1:
            return (f(i, j) - f(i - 1, j)) / (lx[i] - lx[i - 1])
        left = (f(i, j) - f(i - 1, j)) / (lx[i] - lx[i - 1])
        right = (f(i + 1, j) - f(i, j)) / (lx[i + 1] - lx[i])
        return 0.5 * (left + right)

    def cubic(t, vl, vdl, vh, vdh):
        return ((2 * t**3 - 3 * t**2 + 1) * vl + (t**3 - 2 * t**2 + t) * vdl
                + (-2 * t**3 + 3 * t**2) * vh + (t**3 - t**2) * vdh)

    dx = lx[ix + 1] - lx[ix]
    tx = (math.log(x) - lx[ix]) / dx
    v = lambda j: cubic(tx, f(ix, j), ddx(ix, j) * dx, f(ix + 1, j), ddx(ix + 1, j) * dx)  # noqa: E731
    dq = lq[iq + 1] - lq[iq]
    vl, vh = v(iq), v(iq + 1)
    if iq == 0:
        vdl = (vh - vl) / dq
    else:
        vdl = 0.5 * ((vh - vl) / dq + (vl - v(iq - 1)) / (lq[iq] - lq[iq - 1]))
    if iq + 1 == nq - 1:
        vdh = (vh - vl) / dq
    else:
        vdh = 0.5 * ((vh - vl) / dq + (v(iq + 2) - vh) / (lq[iq + 2] - lq[iq + 1]))
    tq = (math.log(q2) - lq[iq]) / dq
    return cubic(tq, vl, vdl * dq, vh, vdh * dq)


def _t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return torch.empty(n, dtype=torch.float64).uniform_(lo, hi, generator=gen)


def test_vectorised_bicubic_equals_two_step_lhapdf_algorithm(grid):
    header, subgrids = read_lhagrid1(grid.path)
    gen = torch.Generator().manual_seed(3)
    for sg, (qlo, qhi) in zip(subgrids, [(1.65, 4.9), (4.95, 9e4)]):
        logq2s = [2 * math.log(q) for q in sg["q"]]
        x = torch.exp(_uniform(60, math.log(1e-8), math.log(0.95), gen))
        q = torch.exp(_uniform(60, math.log(qlo), math.log(qhi), gen))
        ours = grid.xfxQ2([21, 2, -1], x, q * q)
        for k, pid in enumerate([21, 2, -1]):
            col = sg["pids"].index(pid)
            ref = torch.tensor([_lhapdf_reference(float(a), float(b) ** 2, sg["x"], logq2s, sg["xf"], col)
                                for a, b in zip(x, q)], dtype=torch.float64)
            torch.testing.assert_close(ours[:, k], ref, rtol=1e-11, atol=1e-11)


def test_knots_are_reproduced_and_threshold_uses_upper_subgrid(grid):
    _, subgrids = read_lhagrid1(grid.path)
    for sg in subgrids:
        nq = len(sg["q"])
        for ix in (0, 17, 55, 80, len(sg["x"]) - 2):
            for iq in range(0, nq, 3):
                row = torch.tensor(sg["xf"][ix * nq + iq], dtype=torch.float64)
                x = torch.tensor([sg["x"][ix]], dtype=torch.float64)
                val = grid.xfxQ2(list(sg["pids"]), x, sg["q"][iq] ** 2)[0]
                if iq == nq - 1 and sg is subgrids[0]:
                    continue  # the shared knot Q = 4.92 GeV belongs to the upper subgrid
                torch.testing.assert_close(val, row, rtol=1e-12, atol=1e-12)
    # at the threshold knot the upper subgrid's first row is used (LHAPDF convention)
    upper = subgrids[1]
    x = torch.tensor([upper["x"][40]], dtype=torch.float64)
    row = torch.tensor(upper["xf"][40 * len(upper["q"])], dtype=torch.float64)
    at_threshold = grid.xfxQ2(list(upper["pids"]), x, upper["q"][0] ** 2)[0]
    torch.testing.assert_close(at_threshold, row, rtol=1e-12, atol=1e-12)


def test_exact_for_quadratics_on_a_uniform_synthetic_grid(tmp_path: Path):
    """Central differences are exact for quadratics on uniform knots, so cubic Hermite is too (interior)."""
    xs = [math.exp(math.log(1e-4) * (1 - i / 8)) for i in range(9)]
    qs = [math.exp(math.log(2.0) + math.log(100.0) * i / 6) for i in range(7)]
    qs2 = [200.0, 400.0]  # a two-knot subgrid: bilinear fallback
    def func(lx, lq):
        return 1.0 + 0.3 * lx - 0.05 * lx**2 + 0.2 * lq + 0.01 * lq**2 - 0.02 * lx * lq

    def block(q_knots):
        rows = [f"{func(math.log(x), 2 * math.log(q)):.17e} {2 * func(math.log(x), 2 * math.log(q)):.17e}"
                for x in xs for q in q_knots]
        x_line, q_line = " ".join(f"{x:.17e}" for x in xs), " ".join(f"{q:.17e}" for q in q_knots)
        return "\n".join([x_line, q_line, "21 2", *rows])

    path = tmp_path / "toy_0000.dat"
    path.write_text("PdfType: central\nFormat: lhagrid1\nAlphaS_MZ: 0.125\n---\n" + block(qs) + "\n---\n"
                    + block(qs2) + "\n---\n")
    g = PDFGrid(path)
    assert g.alphas_mz == 0.125
    lx = torch.empty(200, dtype=torch.float64).uniform_(math.log(xs[1]), math.log(xs[-2]))
    lq = torch.empty(200, dtype=torch.float64).uniform_(2 * math.log(qs[1]), 2 * math.log(qs[-2]))
    val = g.xfxQ2([21, 2, 0, 6], torch.exp(lx), torch.exp(lq))
    exact = func(lx, lq)
    torch.testing.assert_close(val[:, 0], exact, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(val[:, 1], 2 * exact, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(val[:, 2], val[:, 0])   # pid 0 is the gluon
    assert torch.all(val[:, 3] == 0)                   # flavour absent from the grid
    # two-knot subgrid: bilinear in (log x, log Q²) between the knot values
    x = torch.tensor([math.sqrt(xs[3] * xs[4])], dtype=torch.float64)
    q2 = torch.tensor([200.0 * 400.0], dtype=torch.float64)  # midway in log Q²
    corners = [func(math.log(a), 2 * math.log(b)) for a in (xs[3], xs[4]) for b in (200.0, 400.0)]
    assert float(g.xfxQ2(21, x, q2)[0]) == pytest.approx(sum(corners) / 4, rel=1e-12)


# --------------------------------------------------------------------------------------------------
# Independent evaluation: Pythia 8's own LHAGrid1 reader
# --------------------------------------------------------------------------------------------------

def test_agrees_with_pythia8_lhagrid1(grid):
    """Pythia interpolates differently (its own polynomial scheme), so agreement is ~1e-4 typical.

    Measured (x ∈ [1e-5, 0.3], Q ∈ [10, 3000] GeV, 2000 points): median relative difference
    ≈ 1e-5, 99 % quantile ≈ 3e-4, maximum ≈ 1.8e-3 (largest for g and c near the x = 0.1 switch
    from logarithmic to linear knot spacing). The strange quark is left out: it crosses zero
    in this set, where Pythia clamps negative values to zero.
    """
    xmldoc = pythia_pdf_path(SET).parents[1] / "xmldoc"
    pythia = pythia8mc.Pythia(str(xmldoc), False)
    for setting in (f"PDF:pSet = LHAGrid1:{grid.path}", "ProcessLevel:all = off", "Print:quiet = on"):
        pythia.readString(setting)
    assert pythia.init()
    pdf = pythia.getPDFPtr(2212)

    gen = torch.Generator().manual_seed(7)
    n = 2000
    x = torch.exp(_uniform(n, math.log(1e-5), math.log(0.3), gen))
    q = torch.exp(_uniform(n, math.log(10.0), math.log(3000.0), gen))
    pids = [21, 1, 2, 4, -1, -2, -4]
    ours = grid.xfxQ2(pids, x, q * q)
    ref = torch.tensor([[pdf.xf(p, a, b * b) for p in pids] for a, b in zip(x.tolist(), q.tolist())],
                       dtype=torch.float64)
    assert torch.all(ref > 0)
    rel = ((ours - ref) / ref).abs()
    print(f"\nPythia comparison: median {rel.median():.2e}, 99% {rel.flatten().quantile(0.99):.2e}, "
          f"max {rel.max():.2e}")
    assert rel.median() < 1e-4
    assert rel.flatten().quantile(0.99) < 2e-3
    assert rel.max() < 5e-3


def _pset_options(xmldoc: Path) -> dict[int, str]:
    """Option texts of ``PDF:pSet`` in Pythia's PDFSelection.xml, by number."""
    text = (xmldoc / "PDFSelection.xml").read_text()
    block = text.split('<word name="PDF:pSet"', 1)[1].split("</word>", 1)[0]
    options = re.findall(r'<option value="(\d+)">(.*?)</option>', block, flags=re.S)
    return {int(k): re.sub(r"<[^>]+>|\s+", " ", v) for k, v in options}


def test_pythia_pset_numbers_select_the_same_grids():
    """Each accepted set's Pythia ``PDF:pSet`` number (physics.pdf_sets) is that set in Pythia 8.

    Two independent checks: the option text of Pythia's PDFSelection.xml names the set's family,
    QED content, order and α_s(M_Z); and Pythia's proton PDF after init agrees with lhcflow's
    interpolation of the set's grid to 1e-3 at bulk points (Pythia's own polynomials, see above;
    negative values clamped as Pythia does) while every other accepted set is > 1 % away.
    """
    xmldoc = pythia_pdf_path(SET).parents[1] / "xmldoc"
    options = _pset_options(xmldoc)
    grids = {name: load_pythia_pdf(name) for name in PDF_SETS}
    points = [(1e-3, 8315.0), (0.01, 3e4), (0.1, 1e4), (2.7e-3, 91.19**2)]
    pids = [21, 1, 2, -1, -2, 4, 5]
    x, q2 = _t(*[p[0] for p in points]), _t(*[p[1] for p in points])
    values = {name: g.xfxQ2(pids, x, q2).clamp_min(0.0) for name, g in grids.items()}
    for name, entry in PDF_SETS.items():
        text = options[entry.pythia_pset]
        family = {"NNPDF23": "NNPDF2.3", "NNPDF31": "NNPDF3.1"}[name[:7]]
        order = re.search(r"_(n?n?lo)_", name).group(1).upper()
        assert text.startswith(family) and f" {order} " in text and ("QED" in text) == ("qed" in name), (name, text)
        assert float(re.search(r"alpha_s\(M_Z\) = ([0-9.]+)", text).group(1)) == grids[name].alphas_mz

        pythia = pythia8mc.Pythia(str(xmldoc), False)
        for setting in (f"PDF:pSet = {entry.pythia_pset}", "ProcessLevel:all = off", "Print:quiet = on"):
            assert pythia.readString(setting)
        assert pythia.init()
        pdf = pythia.getPDFPtr(2212)
        ref = torch.tensor([[pdf.xf(p, a, b) for p in pids] for a, b in points], dtype=torch.float64)
        distance = {other: float(((v - ref) / ref).abs().max()) for other, v in values.items()}
        assert distance[name] < 1e-3, (name, distance)
        assert min(d for other, d in distance.items() if other != name) > 1e-2, (name, distance)


# --------------------------------------------------------------------------------------------------
# Physics: sum rules
# --------------------------------------------------------------------------------------------------

def test_momentum_and_valence_sum_rules_at_100_gev(grid):
    lx = torch.linspace(math.log(1e-9), 0.0, 40001, dtype=torch.float64)
    x = torch.exp(lx)
    xf = grid.xfxQ2(list(grid.pids), x, 100.0**2)
    col = {p: i for i, p in enumerate(grid.pids)}
    momentum = torch.trapezoid(xf.sum(1) * x, lx)            # ∫ Σ x f dx = ∫ Σ x f · x dlog x
    u_val = torch.trapezoid(xf[:, col[2]] - xf[:, col[-2]], lx)  # ∫ (u − ū) dx
    d_val = torch.trapezoid(xf[:, col[1]] - xf[:, col[-1]], lx)
    s_val = torch.trapezoid(xf[:, col[3]] - xf[:, col[-3]], lx)
    print(f"\nsum rules at Q = 100 GeV: momentum {momentum:.4f}, u_v {u_val:.4f}, d_v {d_val:.4f}, "
          f"s_v {s_val:.5f}")
    assert float(momentum) == pytest.approx(1.0, rel=0.01)
    assert float(u_val) == pytest.approx(2.0, rel=0.01)
    assert float(d_val) == pytest.approx(1.0, rel=0.01)
    assert abs(float(s_val)) < 0.01


# --------------------------------------------------------------------------------------------------
# API behaviour
# --------------------------------------------------------------------------------------------------

def test_shapes_fxq2_and_frozen_edges(grid):
    x = torch.tensor([1e-3, 0.1, 0.5], dtype=torch.float64)
    one = grid.xfxQ2(2, x, 91.19**2)
    many = grid.xfxQ2([2, -2], x, torch.full((3,), 91.19**2, dtype=torch.float64))
    assert one.shape == (3,) and many.shape == (3, 2)
    torch.testing.assert_close(one, many[:, 0])
    torch.testing.assert_close(grid.fxQ2(2, x, 91.19**2), one / x)
    torch.testing.assert_close(grid.fxQ2([2, -2], x, 91.19**2), many / x[:, None])
    # below x_min / above Q_max: frozen at the edge
    edge = grid.xfxQ2([21, 2], _t(grid.x_min, 0.01), _t(10.0, grid.q2_max))
    beyond = grid.xfxQ2([21, 2], _t(1e-12, 0.01), _t(10.0, 1e12))
    torch.testing.assert_close(beyond, edge)
    # continuity across the b threshold for the light flavours
    q_lo, q_hi = 4.92 * (1 - 1e-9), 4.92 * (1 + 1e-9)
    lo = grid.xfxQ2([21, 1, 2], x, q_lo**2)
    hi = grid.xfxQ2([21, 1, 2], x, q_hi**2)
    torch.testing.assert_close(lo, hi, rtol=1e-6, atol=1e-9)


def test_flavour_values_do_not_depend_on_the_other_flavours_asked_for(grid):
    """The tables of flavour selections are kept per selection: each flavour's value is the same whichever
    flavours are asked with it, in whatever order, before and after a device move (which drops them)."""
    x = torch.logspace(-5, -0.2, 40, dtype=torch.float64)
    q2 = torch.logspace(1, 7, 40, dtype=torch.float64)
    pids = [2, 4, -1, -3, 5, 21]
    together = grid.xfxQ2(pids, x, q2)
    reverse = grid.xfxQ2(pids[::-1], x, q2)
    for k, pid in enumerate(pids):
        assert torch.equal(grid.xfxQ2(pid, x, q2), together[:, k])
        assert torch.equal(reverse[:, len(pids) - 1 - k], together[:, k])
    assert torch.equal(grid.xfxQ2([5, 2], x, q2), together[:, [4, 0]])
    moved = load_pythia_pdf(SET)
    before = moved.xfxQ2([21, 2], x, q2)
    moved.to("cpu")
    assert torch.equal(moved.xfxQ2([21, 2], x, q2), before)
    assert torch.equal(moved.xfxQ2([2, 21], x, q2), before[:, [1, 0]])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_move_matches_cpu():
    cpu = load_pythia_pdf(SET)
    gpu = load_pythia_pdf(SET).to("cuda")
    x = torch.logspace(-6, -0.3, 50, dtype=torch.float64)
    on_gpu = gpu.xfxQ2([21, 1, 2], x.cuda(), 91.19**2)
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), cpu.xfxQ2([21, 1, 2], x, 91.19**2))
