"""Small English helpers shared by the generators."""

from __future__ import annotations

NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six"]


def plural(noun: str) -> str:
    return noun + ("es" if noun.endswith(("s", "x", "ch", "sh")) else "s")


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def sentence(text: str) -> str:
    """Capitalise and end with a full stop: how a person writes a caption."""
    return text[0].upper() + text[1:] + ("" if text.endswith((".", "?", "!")) else ".")
