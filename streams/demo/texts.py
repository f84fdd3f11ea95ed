"""What followers write: pools of comment texts for the traffic generator, in several languages.

Three kinds, classified by the project's word rule (a word is a whitespace-separated token with at
least one letter or digit; see the README), so the generator knows which texts are substantive:

- *substantive*: two words or more ("Love the new colour!", "J'adore ce modèle").
- *one word*: "Nice!", "wow", "Génial", and, realistically, CJK sentences written without spaces
  ("本当に素晴らしいです"), which the rule counts as one word: a known limit of whitespace words.
- *emoji only*: "🔥", "😍😍", "👏 👏" — no word at all.

English substantive comments are built from templates so that a large stream does not repeat a
handful of strings; the other languages use hand-written phrases (grammatical, not machine noise).
"""

from __future__ import annotations

import random
from typing import Final

ONE_WORD: Final[tuple[str, ...]] = (
    "Nice!",
    "nice",
    "wow",
    "Wow!!",
    "Love",
    "Great",
    "Yes!",
    "Cool",
    "Amazing",
    "Beautiful",
    "Perfect",
    "Need",
    "Congrats!",
    "lol",
    "Finally!",
    "first",
    "😍Love",
    "Fire🔥",
)
ONE_WORD_FOREIGN: Final[tuple[str, ...]] = (
    "Génial",  # fr
    "Magnifique!",  # fr
    "Merci",  # fr
    "Increíble",  # es
    "Precioso",  # es
    "¡Genial!",  # es
    "Wunderbar",  # de
    "Toll!",  # de
    "Lindo",  # pt
    "Maravilhoso",  # pt
    "すごい",  # ja
    "最高！",  # ja
    "本当に素晴らしいです",  # ja: a sentence, but one whitespace word
    "可愛いすぎる",  # ja
    "رائع",  # ar
    "جميل",  # ar
    "बढ़िया",  # hi
    "शानदार",  # hi
)
EMOJI_ONLY: Final[tuple[str, ...]] = (
    "🔥",
    "😍",
    "❤️",
    "👏",
    "🙌",
    "😂",
    "💯",
    "🔥🔥🔥",
    "😍😍",
    "👏 👏",
    "❤️❤️❤️",
    "🙏",
    "✨",
    "👀",
    "🥰",
)
SUBSTANTIVE_FOREIGN: Final[tuple[str, ...]] = (
    "J'adore ce modèle, vraiment top",  # fr
    "Trop beau, je le veux !",  # fr
    "C'est disponible en France ?",  # fr
    "Bravo à toute l'équipe",  # fr
    "Me encanta, ¿cuándo llega a México?",  # es
    "Qué bonito, lo quiero ya",  # es
    "La mejor marca sin duda",  # es
    "Gracias por el envío tan rápido",  # es
    "Das sieht richtig gut aus",  # de
    "Wann kommt das nach Deutschland?",  # de
    "Meine Lieblingsmarke, immer wieder gerne",  # de
    "Amei demais, quero um",  # pt
    "Chega no Brasil quando?",  # pt
    "Produto incrível, recomendo muito",  # pt
    "これ 欲しい です！",  # ja (spaced)
    "新作 めっちゃ 可愛い",  # ja (spaced)
    "رائع جدا أحب هذا المنتج",  # ar
    "متى يتوفر في السعودية؟",  # ar
    "बहुत बढ़िया उत्पाद है",  # hi
    "यह मुझे बहुत पसंद आया",  # hi
    "Bellissimo, complimenti davvero",  # it
    "Harika olmuş, çok beğendim",  # tr
)

_OPENERS: Final = (
    "Love",
    "Really like",
    "Can't wait to try",
    "Just ordered",
    "Obsessed with",
    "Not sure about",
    "Still waiting for",
    "So happy with",
    "Been using",
    "Thinking about getting",
)
_OBJECTS: Final = (
    "the new colour",
    "this drop",
    "the limited edition",
    "your latest collection",
    "the blue one",
    "these",
    "the collab",
    "the restock",
    "the summer line",
    "my order",
)
_ENDINGS: Final = (
    "",
    "!",
    "!!",
    " 😍",
    " 🔥",
    ", any discount codes?",
    ", when does it ship?",
    ". Best brand ever",
    ", is it vegan?",
    " for months now",
    ". Customer service was great",
    ", please bring it back",
)
_QUESTIONS: Final = (
    "Do you ship to Canada?",
    "Is there a size guide?",
    "When is the next restock?",
    "Where can I buy this?",
    "How long does delivery take?",
    "Does it come in black?",
)


def word_count(text: str) -> int:
    """Words by the project's rule: whitespace-separated tokens with at least one letter or digit."""
    return sum(1 for token in text.split() if any(ch.isalnum() for ch in token))


def english_substantive(rng: random.Random, count: int) -> list[str]:
    """``count`` English comments of two words or more, built from templates."""
    texts: list[str] = []
    for _ in range(count):
        if rng.random() < 0.15:
            texts.append(rng.choice(_QUESTIONS))
        else:
            texts.append(f"{rng.choice(_OPENERS)} {rng.choice(_OBJECTS)}{rng.choice(_ENDINGS)}")
    return texts


def mixed_pool(
    rng: random.Random,
    english: list[str] | tuple[str, ...],
    foreign: tuple[str, ...],
    foreign_share: float,
    size: int,
) -> list[str]:
    """A pool of ``size`` texts of which ``foreign_share`` are non-English, shuffled.

    The generator picks uniformly from a pool, so the share of non-English texts is exact per pool.
    """
    n_foreign = round(size * foreign_share)
    pool = [rng.choice(foreign) for _ in range(n_foreign)]
    pool += [rng.choice(english) for _ in range(size - n_foreign)]
    rng.shuffle(pool)
    return pool
