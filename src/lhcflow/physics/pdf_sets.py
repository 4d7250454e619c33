"""The PDF sets lhcflow accepts: LHAPDF6 grids shipped with the Pythia 8 wheel, with their ids.

One table for every writer and check: the official LHAPDF id (written as PDFSUP into every LHE
``<init>`` block) and the built-in Pythia 8 ``PDF:pSet`` number of the same grid (the ISR PDF of
the tHj shower). The member files in ``share/Pythia8/pdfdata`` carry neither (their header is only
``PdfType`` and ``Format``; LHAPDF keeps ``SetIndex`` and ``AlphaS_MZ`` in the set's ``.info``
file, which the wheel does not ship), hence the table. α_s(M_Z) is not listed: it is encoded in
the NNPDF set names (``_as_0119`` → 0.119) and read from there by :class:`lhcflow.physics.pdf.PDFGrid`.

Sources: LHAPDF ids from LHAPDF's ``pdfsets.index`` (244800 NNPDF23_nlo_as_0119_qed,
246800 NNPDF23_lo_as_0119_qed, 247000 NNPDF23_lo_as_0130_qed, 315000 NNPDF31_lo_as_0118,
315200 NNPDF31_lo_as_0130, 324900 NNPDF31_nlo_as_0118_luxqed, 325100 NNPDF31_nnlo_as_0118_luxqed;
each id is the set's first member, members count up from it). Pythia numbers from Pythia 8.317's
``share/Pythia8/xmldoc/PDFSelection.xml`` (``PDF:pSet`` options 13-20), which read the same
``.dat`` files (checked against Pythia's PDF values in ``tests/test_pdf.py``). Shipped grids
without a verified LHAPDF id (NNPDF23_nnlo_as_0119_qed, the NNPDF31sx replicas) are not accepted;
every accepted set has a Pythia equivalent.

Torch-free, so that config validation can check set names cheaply.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from lhcflow.errors import InputError


@dataclass(frozen=True)
class PDFSet:
    """A shipped LHAPDF6 set: name, LHAPDF id of member 0, Pythia 8 built-in ``PDF:pSet`` number."""

    name: str
    lhapdf_id: int
    pythia_pset: int


#: NNPDF2.3 LO, α_s = 0.119: σ(pp → e⁺e⁻, m_ee > 15 GeV) closest to the thesis's MG5 value (§5.2.3)
#: and the "LO-NNPDF, α_s = 0.119" of the tHj study (§6.1)
DEFAULT_PDF_SET = "NNPDF23_lo_as_0119_qed"

PDF_SETS: dict[str, PDFSet] = {s.name: s for s in (
    PDFSet("NNPDF23_lo_as_0119_qed", 246800, 14),
    PDFSet("NNPDF23_lo_as_0130_qed", 247000, 13),
    PDFSet("NNPDF23_nlo_as_0119_qed", 244800, 15),
    PDFSet("NNPDF31_lo_as_0118", 315000, 18),
    PDFSet("NNPDF31_lo_as_0130", 315200, 17),
    PDFSet("NNPDF31_nlo_as_0118_luxqed", 324900, 19),
    PDFSet("NNPDF31_nnlo_as_0118_luxqed", 325100, 20),
)}


class UnknownPDFSetError(InputError, ValueError):
    """A PDF set name or LHAPDF id that is not in :data:`PDF_SETS`."""


def pdf_set(name: str) -> PDFSet:
    """The table entry of ``name``; :class:`UnknownPDFSetError` with a did-you-mean hint otherwise."""
    if name in PDF_SETS:
        return PDF_SETS[name]
    hint = difflib.get_close_matches(str(name), list(PDF_SETS), n=1)
    more = f"did you mean {hint[0]!r}? " if hint else ""
    raise UnknownPDFSetError(f"PDF set {name!r} is not one lhcflow knows the LHAPDF id of; {more}"
                             f"use one of {sorted(PDF_SETS)} (lhcflow.physics.pdf_sets.PDF_SETS)")


def pdf_set_by_id(lhapdf_id: int) -> PDFSet:
    """The table entry with LHAPDF id ``lhapdf_id`` (member 0)."""
    for entry in PDF_SETS.values():
        if entry.lhapdf_id == int(lhapdf_id):
            return entry
    raise UnknownPDFSetError(f"LHAPDF id {lhapdf_id} is none of the sets lhcflow knows: "
                             + ", ".join(f"{s.lhapdf_id} {s.name}" for s in PDF_SETS.values()))

