"""Suite-wide settings.

``scripts/test.sh`` runs the suite in several pytest-xdist worker processes. Every test marked
``pcscd`` goes to one worker (``--dist loadgroup``): they share the machine's only pcscd (its
fixed socket ``/run/pcscd/pcscd.comm``) and vpcd's fixed ports 35963/35964, and the first of
them starts the daemon that the others reuse (tests/reader/pcsclab.py, tests/core/pcsc_lab.py).

Hypothesis gets no per-example deadline: on a machine busy with the other workers one slow
example would otherwise fail a property test as "unreliable timings", and no property here is
about speed.
"""

from __future__ import annotations

import pytest
from hypothesis import settings

settings.register_profile("sscard", deadline=None)
settings.load_profile("sscard")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups off the items
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        if item.get_closest_marker("pcscd") is not None:
            item.add_marker(pytest.mark.xdist_group("pcscd"))
