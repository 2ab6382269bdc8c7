"""Vague next steps: filler phrases that say nothing about what happens next, in English, German and Swedish.

A next step such as "follow up" or "nachfassen" records that something should happen, not what. The rule
``next_step`` treats a next step as vague when, once these phrases and time words are removed, too little
is left to tell a colleague what the next step is. Policies choose the languages and may add phrases.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

FILLERS: dict[str, tuple[str, ...]] = {
    "en": (
        "follow up",
        "follow-up",
        "followup",
        "check in",
        "check-in",
        "touch base",
        "circle back",
        "reach out",
        "ping",
        "call",
        "email",
        "mail",
        "send email",
        "call back",
        "callback",
        "next steps",
        "next step",
        "tbd",
        "tba",
        "todo",
        "to do",
        "n/a",
        "na",
        "none",
        "asap",
        "soon",
        "later",
        "next week",
        "next month",
        "keep in touch",
        "stay in touch",
        "waiting",
        "wait",
        "pending",
        "see notes",
        "as discussed",
        "again",
        "try again",
        "chase",
        "nudge",
    ),
    "de": (
        "nachfassen",
        "nachhaken",
        "nachtelefonieren",
        "melden",
        "anrufen",
        "rückruf",
        "wiedervorlage",
        "wv",
        "erneut kontaktieren",
        "kontaktieren",
        "in kontakt bleiben",
        "abwarten",
        "warten",
        "später",
        "bald",
        "nächste woche",
        "nächsten monat",
        "siehe notizen",
        "wie besprochen",
        "offen",
        "tbd",
    ),
    "sv": (
        "återkomma",
        "återkoppla",
        "återkoppling",
        "följa upp",
        "följ upp",
        "uppföljning",
        "höra av sig",
        "hör av mig",
        "ringa",
        "ring",
        "ringa upp",
        "mejla",
        "maila",
        "stämma av",
        "avvakta",
        "vänta",
        "senare",
        "snart",
        "nästa vecka",
        "nästa månad",
        "se anteckningar",
        "som diskuterat",
        "igen",
    ),
}
LANGUAGES = frozenset(FILLERS)

_PUNCT = re.compile(r"[^\w/\s-]+")
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lower case, punctuation dropped, runs of spaces collapsed: how phrases are compared."""
    return _SPACE.sub(" ", _PUNCT.sub(" ", text.casefold())).strip()


class VaguenessCheck:
    """Decides whether a next-step text is vague: too short, or nothing left once filler is removed.

    Phrases are matched as whole words: the text is split into words and every run of words that forms
    a filler phrase is dropped (longest first). Results are memoised per text, since the same next steps
    recur across deals and runs; the memo is bounded and never changes an answer.
    """

    __slots__ = ("_longest", "_memo", "_phrases", "min_length")

    _MEMO_LIMIT = 65_536

    def __init__(self, languages: Iterable[str], extra: Iterable[str], min_length: int) -> None:
        phrases = {normalise(p) for lang in languages for p in FILLERS[lang]}
        phrases.update(normalise(p) for p in extra)
        phrases.discard("")
        self._phrases = frozenset(tuple(_words(p)) for p in phrases)
        self._longest = max((len(p) for p in self._phrases), default=0)
        self._memo: dict[str, bool] = {}
        self.min_length = min_length

    def is_vague(self, text: str | None) -> bool:
        if text is None:
            return True
        known = self._memo.get(text)
        if known is None:
            known = self._judge(text)
            if len(self._memo) >= self._MEMO_LIMIT:
                self._memo.clear()
            self._memo[text] = known
        return known

    def _judge(self, text: str) -> bool:
        cleaned = normalise(text)
        if len(cleaned) < self.min_length:
            return True
        words = _words(cleaned)
        kept: list[str] = []
        i = 0
        while i < len(words):
            for size in range(min(self._longest, len(words) - i), 0, -1):
                if tuple(words[i : i + size]) in self._phrases:
                    i += size
                    break
            else:
                kept.append(words[i])
                i += 1
        # Two short words after the filler is gone ("on it", "the deal") still say nothing.
        return len(" ".join(kept)) < 6


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[\s/-]+", text) if w]
