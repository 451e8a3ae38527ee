"""Filters: language, length and off-task rows.

The language guess counts common short words of each language, which is enough to tell the languages of a
support desk apart on messages of a sentence or more; very short messages come back as "unknown".
"""

from __future__ import annotations

import re
from collections.abc import Callable

from course_lib.curation.records import Record

STOPWORDS: dict[str, frozenset[str]] = {  # the most frequent short words of each language
    "en": frozenset("""the and is it my i to of for you this not was have with in on me please can but are be has had
        been will would your our they what when there just so an at by from or do did does am were which who how all
        any if out up about into than then them these those its he she we us""".split()),
    "es": frozenset("""el la los las de que y es mi mis por para con no una un se lo muy pero me del al su sus ya
        este esta estos hay también cuando todavía desde hace llegó quiero ha he han ni como más o sin sobre
        hasta donde yo tú te le les nos estoy está están era fue son tengo tiene mucho nada algo""".split()),
    "fr": frozenset("""le la les de et est mon ma mes pour pas une un je que vous avec ne il elle sur des du au aux
        ce cette ces qui mais très toujours depuis en dans par plus ou où nous on leur sont été être avoir ai as a
        suis était fait comme tout si y me moi mon votre vos""".split()),
    "de": frozenset("""der die das und ist mein meine ich nicht ein eine einen mit für zu von sie es bitte den dem
        des auf auch noch schon aber wurde habe hat haben sind war wir ihr mich mir im in an am aus bei nach wie
        oder wenn nur kein keine sehr ihre ihren sich""".split()),
    "it": frozenset("""il lo la gli le di che e è mio mia miei per non una un uno con sono ho hai ha mi ma della
        dello delle del al alla ancora già questo questa come anche da dal nel nella più se io tu lui noi voi
        sei era stato molto tutto niente perché""".split()),
    "pt": frozenset("""o a os as de que e é meu minha meus para não uma um com eu se por mas do da dos das pelo pela
        ao aos à já ainda está estava estão foi tem têm muito em no na nos nas mais como ou ser quando há isso
        você seu sua também só até esse essa num numa""".split()),
    "nl": frozenset("""de het een en is mijn ik niet van voor met dat op te zijn je maar die aan er al nog was heb
        kan geen ook wel in wat hij zij we ze u uw om dan als bij naar uit dit deze hebben werd had moet al
        nu zo heel""".split()),
}
WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def detect_language(text: str, min_hits: int = 2) -> str:
    """The language code whose common words occur most often in `text`, or "unknown" below `min_hits`."""
    words = [w.lower() for w in WORD.findall(text)]
    scores = {lang: sum(w in vocab for w in words) for lang, vocab in STOPWORDS.items()}
    best = max(scores, key=scores.get)
    return best if scores[best] >= min_hits else "unknown"


def language_filter(records: list[Record], allowed: set[str]) -> tuple[list[Record], list[tuple[Record, str]]]:
    """Keep rows whose user turns are in an allowed language; rows too short to tell are kept."""
    kept, removed = [], []
    for record in records:
        lang = detect_language(record.text("user"))
        record.flags["language"] = lang
        if lang == "unknown" or lang in allowed:
            kept.append(record)
        else:
            removed.append((record, f"written in {lang!r}, not one of {', '.join(sorted(allowed))}"))
    return kept, removed


def length_filter(records: list[Record], *, min_chars: int = 1, max_chars: int | None = None
                  ) -> tuple[list[Record], list[tuple[Record, str]]]:
    """Keep rows whose prompt has between `min_chars` and `max_chars` characters."""
    kept, removed = [], []
    for record in records:
        n = len(record.prompt)
        if n < min_chars:
            removed.append((record, f"prompt has {n} characters, fewer than {min_chars}"))
        elif max_chars is not None and n > max_chars:
            removed.append((record, f"prompt has {n} characters, more than {max_chars}"))
        else:
            kept.append(record)
    return kept, removed


def predicate_filter(records: list[Record], check: Callable[[Record], str | None]
                     ) -> tuple[list[Record], list[tuple[Record, str]]]:
    """Keep rows for which `check` returns None; drop the others with the reason it returns."""
    kept, removed = [], []
    for record in records:
        reason = check(record)
        if reason is None:
            kept.append(record)
        else:
            removed.append((record, reason))
    return kept, removed
