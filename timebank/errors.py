"""Every error timebank raises on purpose (re-exported from the domain)."""

from timebank.domain.errors import *  # noqa: F403
from timebank.domain.errors import __all__ as __all__  # noqa: PLC0414
