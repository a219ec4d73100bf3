"""ConText-style negation, uncertainty and history around a mention in a sentence.

The mechanism is NegEx / ConText (Chapman et al., J Biomed Inform 34:301-310, 2001;
Harkema et al., J Biomed Inform 42:839-851, 2009): trigger phrases open a scope that
runs forward (``no ...``) or backward (``... was ruled out``) over a few words, until a
termination term (``but``, ``however``, ``which``...) or the end of the clause; pseudo
triggers (``no change``, ``not only``) look like triggers but are not, and mask them. A
mention inside a negation scope is negated, inside an uncertainty scope uncertain, inside
a history scope historical. The trigger lists below are medmm's own, written for chest CT
report wording; the scope lengths follow the NegEx paper's window idea.

Example:
    >>> assess("No pulmonary nodule is seen.", (3, 19)).negated
    True
    >>> assess("Possible nodule in the right upper lobe.", (9, 15)).uncertain
    True
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["ContextResult", "Direction", "Kind", "assess", "sentence_tokens"]


class Kind(StrEnum):
    """What a trigger says about the mentions in its scope."""

    NEGATION = "negation"
    UNCERTAINTY = "uncertainty"
    HISTORY = "history"
    PSEUDO = "pseudo"
    TERMINATION = "termination"


class Direction(StrEnum):
    """Which way a trigger's scope runs."""

    FORWARD = "forward"
    BACKWARD = "backward"


_FORWARD_NEGATION = (
    "no",
    "not",
    "without",
    "denies",
    "denied",
    "deny",
    "denying",
    "negative for",
    "no evidence of",
    "no evidence for",
    "no signs of",
    "no sign of",
    "free of",
    "absence of",
    "absent",
    "rule out",
    "ruled out",
    "rules out",
    "no new",
    "no suspicious",
    "never",
    "neither",
    "nor",
    "resolution of",
    "resolved",
    "not seen",
    "not identified",
    "not demonstrated",
    "no longer",
    "cannot see",
    "fails to reveal",
    "failed to reveal",
    "no radiographic evidence of",
    "no ct evidence of",
    "unremarkable for",
    "non",  # standalone only: "non-calcified" is a modifier (see assess)
    "none",
    "clear of",
    "negative",
)
_BACKWARD_NEGATION = (
    "is ruled out",
    "was ruled out",
    "are ruled out",
    "were ruled out",
    "has been ruled out",
    "is absent",
    "are absent",
    "was absent",
    "were absent",
    "not seen",
    "is not seen",
    "are not seen",
    "not identified",
    "is not identified",
    "are not identified",
    "not present",
    "is not present",
    "are not present",
    "was not present",
    "were not present",
    "free",
    "unlikely",
    "has resolved",
    "have resolved",
    "resolved",
    "was negative",
    "is negative",
    "were negative",
    "negative",
)
_FORWARD_UNCERTAINTY = (
    "possible",
    "possibly",
    "probable",
    "probably",
    "likely",
    "may represent",
    "may be",
    "might be",
    "could be",
    "could represent",
    "suspicious for",
    "suspected",
    "suspect",
    "questionable",
    "question of",
    "cannot exclude",
    "cannot be excluded",
    "can not exclude",
    "not excluded",
    "concern for",
    "concerning for",
    "consistent with",
    "suggestive of",
    "suggests",
    "compatible with",
    "differential includes",
    "rule out",
    "r/o",
    "vs",
    "versus",
    "presumed",
    "presumably",
    "equivocal",
    "indeterminate",
)
_BACKWARD_UNCERTAINTY = ("cannot be excluded", "is not excluded", "not excluded", "is suspected", "is possible", "?")
_FORWARD_HISTORY = ("history of", "h/o", "prior", "previous", "previously", "known", "status post", "s/p")
_PSEUDO = (
    "no increase",
    "no change",
    "no significant change",
    "no interval change",
    "not only",
    "no further",
    "not necessarily",
    "without difficulty",
    "not certain if",
    "not certain whether",
    "gram negative",
    "no suspicious change",
    "not extend",
    "not cause",
    "not drain",
    "without any further",
    "no definite change",
    "not been",
    "no other",
    "negative for further",
    "not ruled out",
    "not been ruled out",
    "cannot rule out",
)
_TERMINATION = (
    "but",
    "however",
    "although",
    "though",
    "aside from",
    "apart from",
    "except",
    "which",
    "who",
    "whom",
    "whose",
    "cause of",
    "source of",
    "reason for",
    "secondary to",
    "etiology of",
    "as well as",
    "still",
    "yet",
    "presents",
    "presented",
    "presenting",
    "complains",
    "complaining",
    "noted",
    "now",
    "currently",
    "has",
    "had",
    "was found",
    "found",
    "developed",
    "with",
)

_SCOPE_WORDS = {Direction.FORWARD: 8, Direction.BACKWARD: 5}
_WORD = re.compile(r"[a-z0-9]+(?:['/][a-z0-9]+)*|\?")
_CLAUSE_END = re.compile(r"[.;:!]|\s-\s")


@dataclass(frozen=True)
class _Trigger:
    words: tuple[str, ...]
    kind: Kind
    direction: Direction | None


def _build() -> list[_Trigger]:
    out = []
    for phrases, kind, direction in (
        (_PSEUDO, Kind.PSEUDO, None),
        (_FORWARD_NEGATION, Kind.NEGATION, Direction.FORWARD),
        (_BACKWARD_NEGATION, Kind.NEGATION, Direction.BACKWARD),
        (_FORWARD_UNCERTAINTY, Kind.UNCERTAINTY, Direction.FORWARD),
        (_BACKWARD_UNCERTAINTY, Kind.UNCERTAINTY, Direction.BACKWARD),
        (_FORWARD_HISTORY, Kind.HISTORY, Direction.FORWARD),
        (_TERMINATION, Kind.TERMINATION, None),
    ):
        out.extend(_Trigger(tuple(_WORD.findall(p)), kind, direction) for p in phrases)
    return sorted(out, key=lambda t: -len(t.words))  # longest match first


_TRIGGERS = _build()


@dataclass(frozen=True)
class ContextResult:
    """How a sentence frames one mention.

    Attributes:
        negated: Inside a negation scope.
        uncertain: Inside an uncertainty scope.
        historical: Inside a history scope.
        triggers: The trigger phrases whose scope holds the mention.
    """

    negated: bool
    uncertain: bool
    historical: bool
    triggers: tuple[str, ...]


_LONGEST_TRIGGER = max(len(t.words) for t in _TRIGGERS)
_WINDOW_CHARS = 600
_TRIGGERS_BY_FIRST_WORD: dict[str, tuple[_Trigger, ...]] = {}
for _t in _TRIGGERS:  # same order as _TRIGGERS within each first word
    _TRIGGERS_BY_FIRST_WORD[_t.words[0]] = (*_TRIGGERS_BY_FIRST_WORD.get(_t.words[0], ()), _t)


def sentence_tokens(sentence: str) -> list[tuple[str, int, int]]:
    """``(lower-case word, start, end)`` of each word of ``sentence``, for :func:`assess`.

    Tokenize a sentence once and pass the result to every :func:`assess` call on it: a
    sentence with thousands of mentions then costs linear time with a small constant.
    """
    return [(m.group(0), m.start(), m.end()) for m in _WORD.finditer(sentence.lower())]


def assess(sentence: str, span: tuple[int, int], tokens: list[tuple[str, int, int]] | None = None) -> ContextResult:
    """Negation, uncertainty and history of the mention at ``span`` in ``sentence``.

    Args:
        sentence: One sentence (or clause) of report text.
        span: ``(start, end)`` character offsets of the mention in ``sentence``.
        tokens: ``sentence_tokens(sentence)``, when the caller assesses several mentions
            of one sentence (the same result, without re-reading the text each time).

    Returns:
        The mention's context.
    """
    start, end = span
    # The clause holding the mention: stop at sentence punctuation on either side. Only a
    # window around the mention is read, so a pathological sentence (thousands of
    # mentions, no punctuation) costs linear, not quadratic, time; triggers reach at most
    # _SCOPE_WORDS words, far inside the window.
    lo, hi = max(0, start - _WINDOW_CHARS), min(len(sentence), end + _WINDOW_CHARS)
    left = max((m.end() for m in _CLAUSE_END.finditer(sentence, lo, start)), default=lo)
    right_match = _CLAUSE_END.search(sentence, end, hi)
    right = right_match.start() if right_match else hi
    if tokens is None:
        toks = [(w, a + left, b + left) for w, a, b in sentence_tokens(sentence[left:right])]
    else:
        lo_tok = bisect.bisect_left(tokens, left, key=lambda tok: tok[1])
        hi_tok = bisect.bisect_left(tokens, right, key=lambda tok: tok[1])
        toks = [tok for tok in tokens[lo_tok:hi_tok] if tok[2] <= right]
    target = [i for i, (_, a, b) in enumerate(toks) if a < end and b > start]
    if not target:
        return ContextResult(False, False, False, ())
    reach = max(_SCOPE_WORDS.values()) + 2 * _LONGEST_TRIGGER
    cut = max(0, target[0] - reach)
    toks = toks[cut : target[-1] + reach + 1]
    words = [w for w, _, _ in toks]
    first, last = target[0] - cut, target[-1] - cut
    found: list[tuple[int, int, _Trigger]] = []  # (start token, end token, trigger)
    i = 0
    while i < len(words):
        if first <= i <= last:
            i += 1
            continue
        match = next(
            (
                t
                for t in _TRIGGERS_BY_FIRST_WORD.get(words[i], ())
                if tuple(words[i : i + len(t.words)]) == t.words and not i + len(t.words) > first > i
            ),
            None,
        )
        if match is None or (match.words == ("non",) and sentence[toks[i][2] : toks[i][2] + 1] == "-"):
            i += 1  # "non-calcified nodule", "non-enhancing mass": a prefix of a modifier, not a negation
            continue
        n = len(match.words)  # a phrase may trigger both ways ("cannot be excluded"): keep every reading
        found.extend((i, i + n - 1, t) for t in _TRIGGERS_BY_FIRST_WORD[words[i]] if t.words == match.words)
        i += n
    kinds: set[Kind] = set()
    names: list[str] = []
    for a, b, trig in found:
        if trig.direction is None:
            continue
        if trig.direction is Direction.FORWARD and b < first:
            between = [t for t in found if b < t[0] < first and t[2].kind in (Kind.TERMINATION, Kind.PSEUDO)]
            if not between and first - b - 1 < _SCOPE_WORDS[Direction.FORWARD]:
                kinds.add(trig.kind)
                names.append(" ".join(trig.words))
        elif trig.direction is Direction.BACKWARD and a > last:
            between = [t for t in found if last < t[0] < a and t[2].kind is Kind.TERMINATION]
            if not between and a - last - 1 < _SCOPE_WORDS[Direction.BACKWARD]:
                kinds.add(trig.kind)
                names.append(" ".join(trig.words))
    return ContextResult(Kind.NEGATION in kinds, Kind.UNCERTAINTY in kinds, Kind.HISTORY in kinds, tuple(names))
