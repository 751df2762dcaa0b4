"""The domains, by name. Adding one: a module defining its :class:`Domain` and one entry in ``DOMAINS``."""

from __future__ import annotations

from genmodels.domains.base import Domain
from genmodels.domains.harmony import HARMONY
from genmodels.domains.melody import MELODY
from genmodels.domains.text import TEXT
from genmodels.errors import SettingsError

DOMAINS: dict[str, Domain] = {d.name: d for d in (TEXT, MELODY, HARMONY)}


def get_domain(name: object) -> Domain:
    """The domain called ``name``; a SettingsError listing the known ones otherwise."""
    domain = DOMAINS.get(name) if isinstance(name, str) else None
    if domain is None:
        raise SettingsError(f"domain must be one of {', '.join(repr(n) for n in DOMAINS)}, not {name!r}")
    return domain


__all__ = ["DOMAINS", "HARMONY", "MELODY", "TEXT", "Domain", "get_domain"]
