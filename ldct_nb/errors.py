"""Exceptions that name what was wrong with the user's input.

Every user-facing entry point of :mod:`ldct_nb` refuses bad input with one of
these (all are :class:`ValueError` subclasses, so ``except ValueError`` keeps
working), and the message names the file, field or parameter and what was
expected.
"""
from __future__ import annotations


class LdctError(ValueError):
    """Base class of the package's input errors."""


class DataError(LdctError):
    """A data file (DICOM, cache, annotation) is missing, unreadable or inconsistent."""


class ManifestError(LdctError):
    """A data manifest is malformed: the message names the manifest file and field."""


class ParameterError(LdctError):
    """A function or notebook parameter is out of range or of the wrong type."""


class BusyError(LdctError):
    """Another process holds the lock on a run folder or file: the message names its process id."""


class DataWarning(UserWarning):
    """Data were accepted but something was repaired or is suspicious (a missing slice, a
    damaged cache rebuilt, partial data accepted); the message names the file. Padding
    mapped to air is routine in clinical DICOM and only counted (``Series.report()``)."""
