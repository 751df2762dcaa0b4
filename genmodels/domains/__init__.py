"""The domains, registered by name. Adding one: a module defining its :class:`Domain` and one entry below."""

from __future__ import annotations

from genmodels.core.registry import Domain, get_domain, register
from genmodels.domains.harmony import HARMONY
from genmodels.domains.melody import MELODY
from genmodels.domains.text import TEXT

DOMAINS: dict[str, Domain] = {register(d).name: d for d in (TEXT, MELODY, HARMONY)}

__all__ = ["DOMAINS", "HARMONY", "MELODY", "TEXT", "Domain", "get_domain"]
