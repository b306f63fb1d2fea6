"""VQA accuracy and answer normalisation, as in the official VQA evaluation tools.

The reference is GT-Vision-Lab/VQA ``PythonEvaluationTools/vqaEvaluation/vqaEval.py`` as it has
stood since its fix of March 2021 ("Fixed processing answers bug"). For one question it:

1. replaces newlines and tabs by spaces and strips the prediction and each of the ten answers;
2. only if the ten human answers are not all the same string, normalises the answers and the
   prediction (``normalize_answer``): punctuation removed or spaced (commas inside numbers and
   decimal points kept), lower case, number words to digits, articles a/an/the dropped,
   apostrophe-less contractions looked up in the official table. When the annotators agree the
   strings are compared as they are: the maintainers' choice, since released answers are
   normalised already and unanimous ones are often text read off the image;
3. scores min(1, matches among the other nine / 3) for each answer left out and averages the ten.

Quirks of the official code kept on purpose, so that scores equal the official ones:
- ``CONTRACTIONS`` is the official table, written out as published: keys with capitals ("Im")
  can never match a lower-cased word, "somebody'd" maps to "somebodyd", and ordinary words such
  as "shed", "were", "wed" or "lets" are not in it;
- the period pattern ``(?!<=\\d)(\\.)(?!\\d)`` is a negative *lookahead* for "<=digit", so a period
  after a digit is stripped ("3." -> "3") while a decimal point survives ("3.5");
- at most 32 periods are stripped per answer: the official call passes ``re.UNICODE`` (32) as
  ``re.sub``'s ``count`` argument.

``normalise_unanimous=True`` normalises unanimous answers too (vecomp's rule before it followed
the official one): a departure from the official evaluator, for annotations written raw, such as
hand-made ones. Training targets (``soft_scores``) always use normalised answers, as the
literature's answer preprocessing does: 0 / 0.3 / 0.6 / 0.9 / 1.0 for 0 / 1 / 2 / 3 / >=4
matching annotators (the 10-choose-9 average in closed form).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

# The official table (vqaEval.py, self.contractions), keys and values exactly as published.
CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've",
    "couldnt": "couldn't", "couldn'tve": "couldn't've", "couldnt've": "couldn't've",
    "didnt": "didn't", "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't",
    "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't", "havent": "haven't",
    "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
    "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've",
    "itll": "it'll", "let's": "let's", "maam": "ma'am", "mightnt": "mightn't",
    "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've",
    "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've",
    "she's": "she's", "shouldve": "should've", "shouldnt": "shouldn't",
    "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd",
    "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've", "somebodyll": "somebody'll",
    "somebodys": "somebody's", "someoned": "someone'd", "someoned've": "someone'd've",
    "someone'dve": "someone'd've", "someonell": "someone'll", "someones": "someone's",
    "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's",
    "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've",
    "twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've",
    "werent": "weren't", "whatll": "what'll", "whatre": "what're", "whats": "what's",
    "whatve": "what've", "whens": "when's", "whered": "where'd", "wheres": "where's",
    "whereve": "where've", "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've",
    "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll", "whyre": "why're",
    "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all",
    "yall'll": "y'all'll", "y'allll": "y'all'll", "yall'd've": "y'all'd've",
    "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", "youd": "you'd", "youd've": "you'd've",
    "you'dve": "you'd've", "youll": "you'll", "youre": "you're", "youve": "you've"
}  # fmt: skip
NUMBER_MAP = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip
ARTICLES = frozenset({"a", "an", "the"})
PUNCTUATION = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<",
               "@", "`", ",", "?", "!"]  # fmt: skip
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")  # the official pattern, quirk included
MAX_PERIODS_STRIPPED = 32  # the official re.UNICODE, passed as re.sub's count
_COMMA_STRIP = re.compile(r"(\d)(,)(\d)")
SOFT_SCORES = (0.0, 0.3, 0.6, 0.9, 1.0)  # by number of matching annotators, capped at 4


def _process_punctuation(text: str) -> str:
    out = text
    for p in PUNCTUATION:
        if (p + " " in text or " " + p in text) or _COMMA_STRIP.search(text) is not None:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_STRIP.sub("", out, count=MAX_PERIODS_STRIPPED)


def _process_digits_articles(text: str) -> str:
    words = [NUMBER_MAP.get(w, w) for w in text.lower().split()]
    words = [CONTRACTIONS.get(w, w) for w in words if w not in ARTICLES]
    return " ".join(words)


def _clean_whitespace(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


@lru_cache(maxsize=1 << 16)
def normalize_answer(answer: str) -> str:
    """The official VQA normalisation of one answer string (cached: evaluation normalises the
    same human answers after every epoch)."""
    return _process_digits_articles(_process_punctuation(_clean_whitespace(answer)))


def soft_scores(human_answers: Sequence[str]) -> dict[str, float]:
    """Training target: {normalised answer: soft score} over the distinct human answers."""
    counts = Counter(normalize_answer(a) for a in human_answers)
    return {a: SOFT_SCORES[min(n, 4)] for a, n in counts.items()}


def vqa_accuracy(
    prediction: str, human_answers: Sequence[str], normalise_unanimous: bool = False
) -> float:
    """Accuracy in [0, 1] of one prediction against the ten human answers, as the official
    evaluator scores it (see the module docstring for when answers are normalised)."""
    if len(human_answers) == 0:
        raise ValueError("VQA accuracy needs the human answers; got none")
    pred = _clean_whitespace(prediction)
    gts = [_clean_whitespace(a) for a in human_answers]
    if normalise_unanimous or len(set(gts)) > 1:
        pred = normalize_answer(pred)
        gts = [normalize_answer(g) for g in gts]
    per_leave_one_out = [
        min(1.0, sum(g == pred for j, g in enumerate(gts) if j != i) / 3) for i in range(len(gts))
    ]
    return sum(per_leave_one_out) / len(per_leave_one_out)


def majority_answer(human_answers: Sequence[str]) -> str:
    """The most common normalised answer (first seen wins a tie). Only for annotations without
    ``multiple_choice_answer``: the released VQAv2 files carry the official one, which breaks
    ties its own way."""
    if len(human_answers) == 0:
        raise ValueError("a majority answer needs the human answers; got none")
    return Counter(normalize_answer(a) for a in human_answers).most_common(1)[0][0]
