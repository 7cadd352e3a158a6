"""ldct_nb: tested helpers behind the ASCON / LIDnet reproduction notebooks.

All logic lives here; the notebooks in ``notebooks/`` orchestrate and explain.
"""
from __future__ import annotations

__version__ = "0.1.0"

from ldct_nb.errors import DataError, LdctError, ManifestError, ParameterError

__all__ = ["DataError", "LdctError", "ManifestError", "ParameterError", "__version__"]
