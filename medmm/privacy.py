"""Keep patient identifiers and report text out of logs and error messages.

medmm logs UIDs and file paths only. Two mechanisms make that hold by default:

- Code that would log report text passes it through :func:`withheld` first, which returns
  a placeholder (with the text's length) unless PHI logging was switched on.
- :class:`PhiFilter`, installed on the log handlers by :func:`install_log_privacy` (the
  CLI does this; ``medmm --log-phi`` switches it off), replaces every identifier value
  medmm has read in this process (PatientName and its parts, PatientID, PatientBirthDate,
  other patient IDs and names, and report sentences) with ``[PHI]`` in any log record,
  whoever emitted it (pydicom's own warnings included). The header reader registers the
  values it meets with :func:`register_phi`.

Example:
    >>> import logging
    >>> register_phi("DOE^JANE", "12345678")
    >>> record = logging.LogRecord("x", logging.WARNING, "", 0, "bad value %r for Jane Doe", ("DOE^JANE",), None)
    >>> PhiFilter().filter(record)
    True
    >>> record.getMessage()
    "bad value '[PHI]' for [PHI]"
"""

from __future__ import annotations

import logging
import re
import threading

__all__ = [
    "PHI_KEYWORDS",
    "PhiFilter",
    "install_log_privacy",
    "log_phi_enabled",
    "register_phi",
    "register_report_text",
    "withheld",
]

PHI_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientMotherBirthName",
    "PatientAddress",
    "PatientTelephoneNumbers",
)
"""Header attributes whose values never appear in medmm's logs (unless --log-phi)."""

_MIN_CHARS = 4  # shorter values ("M", "12") would redact ordinary words and numbers
_lock = threading.Lock()
_values: set[str] = set()
_pattern: re.Pattern[str] | None = None
_dirty = False  # values added since _pattern was compiled (compiled lazily: a scan registers per file)
_log_phi = False


def log_phi_enabled() -> bool:
    """Whether PHI may be logged (``--log-phi``, for local debugging only)."""
    return _log_phi


def _variants(value: str) -> set[str]:
    out = {value.strip()}
    if "^" in value:  # DICOM PN: family^given^middle^prefix^suffix, and "=" separated groups
        parts = [p for p in re.split(r"[\^=]", value) if p.strip()]
        out.update(p.strip() for p in parts)
        out.add(" ".join(p.strip() for p in parts[1:2] + parts[:1]))  # "Given Family"
        out.add(" ".join(p.strip() for p in parts))
    if re.fullmatch(r"\d{8}", value.strip()):  # DA: also as 1990-01-31
        v = value.strip()
        out.add(f"{v[:4]}-{v[4:6]}-{v[6:]}")
    return {v for v in out if len(v) >= _MIN_CHARS}


def register_phi(*values: object) -> None:
    """Remember identifier values read from an input, so that logs never show them."""
    global _dirty
    new: set[str] = set()
    for value in values:
        if value is None:
            continue
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            new |= _variants(str(item))
    with _lock:
        if new - _values:
            _values.update(new)
            _dirty = True


def _compiled() -> re.Pattern[str] | None:
    """The redaction pattern over every registered value (recompiled only after new values)."""
    global _pattern, _dirty
    with _lock:
        if _dirty:
            ordered = sorted(_values, key=len, reverse=True)  # longest first: "Jane Doe" before "Jane"
            _pattern = re.compile("|".join(re.escape(v) for v in ordered), re.IGNORECASE)
            _dirty = False
        return _pattern


def register_report_text(text: str) -> None:
    """Register a report's sentences (and whole lines) as PHI for the log filter."""
    pieces = [p.strip() for p in re.split(r"[\n.;]", text)]
    register_phi(*[p for p in pieces if len(p) >= 12])  # short pieces ("No effusion") are common words


def redact(text: str) -> str:
    """``text`` with every registered identifier value replaced by ``[PHI]``."""
    pattern = None if _log_phi else _compiled()
    return text if pattern is None else pattern.sub("[PHI]", text)


def withheld(text: str) -> str:
    """Report text for a log message: the text itself with --log-phi, else a placeholder."""
    if _log_phi:
        return repr(text)
    return f"<report text withheld, {len(text)} characters; --log-phi shows it>"


class PhiFilter(logging.Filter):
    """Rewrites log records so that no registered identifier value is emitted."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place; always keeps it."""
        if _log_phi or _compiled() is None:
            return True
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            if redact(text) != text:
                record.exc_info, record.exc_text = None, redact(text)
        return True


def install_log_privacy(*, log_phi: bool = False) -> None:
    """Put a :class:`PhiFilter` on every handler of the root logger (call after configuring logging).

    Args:
        log_phi: Let identifiers and report text through (local debugging only).
    """
    global _log_phi
    _log_phi = log_phi
    logging.captureWarnings(True)  # pydicom's UserWarnings quote values: route them through the filter
    root = logging.getLogger()
    if not root.handlers:  # e.g. a Dask worker: give medmm's records a filtered handler, not lastResort
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in root.handlers:
        if not any(isinstance(f, PhiFilter) for f in handler.filters):
            handler.addFilter(PhiFilter())
