r"""Report text as given -> text medmm can read, with warnings for what it changed or doubts.

* Line endings become ``\\n``; other control characters (C0/C1, except tab) become
  spaces, so character offsets stay those of the cleaned text and nothing is silently
  joined. A warning counts them.
* An empty report gives a warning (no findings are read), not an error.
* A report longer than :data:`MAX_REPORT_CHARS` is refused with :class:`InputError` (a
  100-page report is about 300,000 characters; far beyond that is not a report).
* A report that does not look like English (few common English or radiology words, or
  mostly non-Latin letters) gives a warning: medmm's trigger lists and vocabulary are
  English, so findings may be missed. The text is still read.

Example:
    >>> prepare_report_text("No nodule.\\x00")
    ('No nodule. ', ('report: removed 1 control character(s)',))
"""

from __future__ import annotations

import re

from medmm.errors import InputError

__all__ = ["MAX_REPORT_CHARS", "looks_english", "prepare_report_text"]

MAX_REPORT_CHARS = 2_000_000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_COMMON = frozenset(
    [
        "the",
        "a",
        "an",
        "of",
        "and",
        "or",
        "in",
        "on",
        "at",
        "to",
        "with",
        "without",
        "no",
        "not",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "there",
        "this",
        "that",
        "as",
        "by",
        "for",
        "from",
        "which",
        "it",
        "its",
        "than",
        "then",
        "into",
        "any",
        "all",
        "both",
        "right",
        "left",
        "upper",
        "middle",
        "lower",
        "lobe",
        "lobes",
        "lung",
        "lungs",
        "nodule",
        "nodules",
        "mass",
        "pleural",
        "effusion",
        "pneumothorax",
        "normal",
        "findings",
        "impression",
        "mm",
        "cm",
        "size",
        "stable",
        "new",
        "seen",
        "noted",
        "likely",
        "possibly",
        "consistent",
        "suggest",
        "suggests",
        "measuring",
        "heart",
        "mediastinum",
        "mediastinal",
        "lymph",
        "node",
        "nodes",
        "chest",
        "ct",
        "scan",
        "contrast",
        "comparison",
        "prior",
        "opacity",
        "opacities",
        "ground",
        "glass",
        "solid",
        "calcified",
        "airspace",
        "consolidation",
        "emphysema",
    ]
)


def looks_english(text: str) -> tuple[bool, float]:
    """Whether ``text`` reads as English, and the share of common English/radiology words.

    Mostly non-Latin letters (10 letters or more) is not English; otherwise texts of
    fewer than 8 words are given the benefit of the doubt.
    """
    letters = [c for c in text if c.isalpha()]
    words = _WORD.findall(text)
    share = sum(w.lower() in _COMMON for w in words) / max(len(words), 1)
    if len(letters) >= 10 and sum(c.isascii() for c in letters) / len(letters) < 0.5:
        return False, share
    if len(words) < 8:
        return True, 1.0
    return share >= 0.15, share


def prepare_report_text(text: str, *, source: str = "report") -> tuple[str, tuple[str, ...]]:
    """Clean a report and say what was done.

    Args:
        text: The report as given.
        source: How to name it in warnings and errors (e.g. a file name).

    Returns:
        ``(clean_text, warnings)``.

    Raises:
        InputError: Not text, or longer than :data:`MAX_REPORT_CHARS`.
    """
    if not isinstance(text, str):
        raise InputError(
            f"{source}: report text must be str, got {type(text).__name__}",
            hint="Decode the report (e.g. bytes.decode('utf-8')) before passing it.",
        )
    if len(text) > MAX_REPORT_CHARS:
        raise InputError(
            f"{source}: {len(text):,} characters is longer than a report medmm reads ({MAX_REPORT_CHARS:,})",
            hint="Pass the report of this study only, not a concatenation of documents.",
        )
    warnings: list[str] = []
    clean = text.replace("\r\n", "\n").replace("\r", "\n")
    clean, n_control = _CONTROL.subn(" ", clean)
    if n_control:
        warnings.append(f"{source}: removed {n_control} control character(s)")
    if not clean.strip():
        warnings.append(f"{source}: the report is empty; no findings were read from it")
        return clean, tuple(warnings)
    english, share = looks_english(clean)
    if not english:
        warnings.append(
            f"{source}: the text does not look like English ({share:.0%} common English/radiology words); "
            "medmm reads English reports, so findings may be missed"
        )
    return clean, tuple(warnings)
