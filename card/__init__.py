"""The virtual social security card, the virtual PSAM, card images and card cryptography.

``card`` imports only ``apdu`` (DESIGN.md layering). Entry points:

* :class:`card.cos.VirtualCard` (``from_image(path, t0=False)``, ``from_doc(doc)``): the card,
  an :class:`apdu.iface.CardLike`; ``transmit`` raises only :class:`card.errors.CardEvent`
  (a ``ConnectionError``: power cut, card pulled, not powered).
* :class:`card.psam.VirtualPsam` (``from_image``, ``from_doc``; :func:`card.psam.make_psam_doc`):
  the terminal's PSAM; its module docstring lists the APDU sequences a terminal uses.
* :func:`card.issue.issue` with :class:`card.issue.Holder`: issue a card image.
* :class:`card.faults.FaultPlan` (``card.faults``): power cuts, pulls, delays, forced SWs.
* :mod:`card.crypto` (spec/card.md §8), :mod:`card.keys` (TEST keys and key names),
  :mod:`card.image` (load, validate, seal, atomic write), :mod:`card.pin` and
  :mod:`card.keyauth` (the tearing-safe PIN and key error counters), :mod:`card.pboc` (the
  bank application and the ARQC recipe), :mod:`card.purse` (the DF04 offline purse).
"""

from card.cos import VirtualCard
from card.errors import (
    CardError,
    CardEvent,
    CardNotPowered,
    CardRemoved,
    ImageError,
    IssueError,
    PowerCut,
)
from card.faults import FaultPlan
from card.issue import Holder, Issued, issue
from card.psam import VirtualPsam, make_psam_doc

__all__ = [
    "CardError",
    "CardEvent",
    "CardNotPowered",
    "CardRemoved",
    "FaultPlan",
    "Holder",
    "ImageError",
    "IssueError",
    "Issued",
    "PowerCut",
    "VirtualCard",
    "VirtualPsam",
    "issue",
    "make_psam_doc",
]
