"""The virtual social security card, the virtual PSAM, card images and card cryptography.

Public entry points: :class:`card.cos.VirtualCard`, :class:`card.psam.VirtualPsam`,
:func:`card.issue.issue`, :class:`card.faults.FaultPlan`, :mod:`card.crypto`, :mod:`card.keys`
(TEST keys only). ``card`` imports only ``apdu`` (DESIGN.md layering).
"""
