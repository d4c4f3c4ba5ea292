"""Term and coefficient names as users type them: one splitter and one matcher for the toolkit."""

from __future__ import annotations

from typing import Iterable


def split_top_level(text: str, seps: str) -> list[tuple[str, str]]:
    """Split ``text`` at the characters ``seps`` that stand outside brackets and quotes.

    The one splitter for names and expressions the toolkit takes apart: interaction
    names at ``:`` (``C(x, Treatment("a:b")):z``), hypotheses at ``,``, formula sides at
    ``+``/``-``. Quotes are ``'``, ``"`` and R's backticks. Returns ``(separator, piece)``
    pairs, the separator being the one before the piece (``""`` for the first).

    Examples
    --------
    >>> split_top_level("cwc(ses, school):meanses", ":")
    [('', 'cwc(ses, school)'), (':', 'meanses')]
    >>> split_top_level("a + (1 | g) - b", "+-")
    [('', 'a '), ('+', ' (1 | g) '), ('-', ' b')]
    """
    out, depth, quote, sep, start = [], 0, None, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"`":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and ch in seps:
            out.append((sep, text[start:i]))
            sep, start = ch, i + 1
    out.append((sep, text[start:]))
    return out


def canonical_term(name: str) -> str:
    """The key under which term and coefficient names are compared: no spaces outside quotes.

    patsy writes ``cwc(ses, school)``; a user may type ``cwc(ses,school)`` or
    ``cwc( ses, school )``. Spaces inside quotes belong to a column or level name
    (``Q("my col")``) and are kept.

    Examples
    --------
    >>> canonical_term("cwc( ses , school )")
    'cwc(ses,school)'
    >>> canonical_term('Q("my col") : x')
    'Q("my col"):x'
    """
    out, quote = [], None
    for ch in str(name):
        if quote is None and ch.isspace():
            continue
        if ch in "\"'":
            quote = ch if quote is None else (None if ch == quote else quote)
        out.append(ch)
    return "".join(out)


def match_term(name: str, available: Iterable[str]) -> str | None:
    """The entry of ``available`` that ``name`` means, regardless of spacing; None if none.

    The one place where the toolkit (simple slopes, Johnson-Neyman, ...) matches a
    term or coefficient name written by a user against the model's names: an exact
    match first, then a unique match of :func:`canonical_term`.

    Examples
    --------
    >>> match_term("cwc(ses,school)", ["(Intercept)", "cwc(ses, school)"])
    'cwc(ses, school)'
    >>> match_term("sex", ["(Intercept)", "ses"]) is None
    True
    """
    available = [str(a) for a in available]
    if name in available:
        return name
    key = canonical_term(name)
    found = [a for a in available if canonical_term(a) == key]
    return found[0] if len(found) == 1 else None
