"""VQA accuracy and answer normalisation, as in the official VQA evaluation tools.

Normalisation (applied to the prediction and to each of the ten human answers): newlines and tabs
become spaces; punctuation is removed or spaced following the official rules (commas inside
numbers and decimal points are kept); lower case; number words become digits; the articles
a/an/the are dropped; apostrophe-less contractions get their apostrophes back.
Accuracy of one prediction: for each of the ten answers, min(1, matches among the other nine / 3),
averaged over the ten. Training targets use the equivalent soft score per distinct answer:
0 / 0.3 / 0.6 / 0.9 / 1.0 for 0 / 1 / 2 / 3 / >=4 matching annotators.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

_CANONICAL_CONTRACTIONS = """
ain't aren't can't could've couldn't couldn't've didn't doesn't don't hadn't hadn't've hasn't
haven't he'd he'd've he's how'd how'll how's I'd I'd've I'm I've isn't it'd it'd've it'll let's
ma'am mightn't mightn't've might've mustn't must've needn't not've o'clock oughtn't 'ow's'at
shan't she'd she'd've she's should've shouldn't shouldn't've somebody'd somebody'd've
somebody'll somebody's someone'd someone'd've someone'll someone's something'd something'd've
something'll that's there'd there'd've there're there's they'd they'd've they'll they're they've
'twas wasn't we'd we'd've we're we've weren't what'll what're what's what've when's where'd
where's where've who'd who'd've who'll who're who's who've why'll why're why's won't would've
wouldn't wouldn't've y'all y'all'll y'all'd've you'd you'd've you'll you're you've
""".split()


def _contraction_variants(canonical: str) -> dict[str, str]:
    """Every spelling with some apostrophes left out -> the canonical spelling."""
    parts = canonical.split("'")
    variants = {}
    for keep in itertools.product((True, False), repeat=len(parts) - 1):
        spelled = parts[0] + "".join(
            ("'" if k else "") + p for k, p in zip(keep, parts[1:], strict=True)
        )
        if spelled != canonical:
            variants[spelled] = canonical
    return variants


CONTRACTIONS = {k: v for c in _CANONICAL_CONTRACTIONS for k, v in _contraction_variants(c).items()}
NUMBER_MAP = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip
ARTICLES = frozenset({"a", "an", "the"})
PUNCTUATION = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<",
               "@", "`", ",", "?", "!"]  # fmt: skip
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")  # the official pattern, quirk included
_COMMA_STRIP = re.compile(r"(\d)(,)(\d)")
SOFT_SCORES = (0.0, 0.3, 0.6, 0.9, 1.0)  # by number of matching annotators, capped at 4


def _process_punctuation(text: str) -> str:
    out = text
    for p in PUNCTUATION:
        if (p + " " in text or " " + p in text) or _COMMA_STRIP.search(text) is not None:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_STRIP.sub("", out)


def _process_digits_articles(text: str) -> str:
    words = [NUMBER_MAP.get(w, w) for w in text.lower().split()]
    words = [CONTRACTIONS.get(w, w) for w in words if w not in ARTICLES]
    return " ".join(words)


@lru_cache(maxsize=1 << 16)
def normalize_answer(answer: str) -> str:
    """The official VQA normalisation of one answer string (cached: evaluation normalises the
    same human answers after every epoch)."""
    text = answer.replace("\n", " ").replace("\t", " ").strip()
    return _process_digits_articles(_process_punctuation(text))


def soft_scores(human_answers: Sequence[str]) -> dict[str, float]:
    """Training target: {normalised answer: soft score} over the distinct human answers."""
    counts = Counter(normalize_answer(a) for a in human_answers)
    return {a: SOFT_SCORES[min(n, 4)] for a, n in counts.items()}


def vqa_accuracy(prediction: str, human_answers: Sequence[str]) -> float:
    """Accuracy in [0, 1] of one prediction against the ten human answers (10-choose-9 average)."""
    if len(human_answers) == 0:
        raise ValueError("VQA accuracy needs the human answers; got none")
    pred = normalize_answer(prediction)
    gts = [normalize_answer(a) for a in human_answers]
    per_leave_one_out = [
        min(1.0, sum(g == pred for j, g in enumerate(gts) if j != i) / 3) for i in range(len(gts))
    ]
    return sum(per_leave_one_out) / len(per_leave_one_out)


def majority_answer(human_answers: Sequence[str]) -> str:
    """The most common normalised answer (first seen wins a tie): VQA's multiple_choice_answer."""
    if len(human_answers) == 0:
        raise ValueError("a majority answer needs the human answers; got none")
    return Counter(normalize_answer(a) for a in human_answers).most_common(1)[0][0]
