"""Parser for the row-pattern language of MATCH_RECOGNIZE's PATTERN clause.

sqlglot keeps ``PATTERN (...)`` as raw text (the pattern language is not SQL), so this module
turns that text into a small immutable tree the CEP planner can compile into an automaton::

    pattern      := alternation
    alternation  := concat ('|' concat)*
    concat       := quantified+
    quantified   := primary quantifier? '?'?          -- trailing '?' makes it reluctant
    quantifier   := '*' | '+' | '?' | '{' n '}' | '{' n ',' '}' | '{' n ',' m '}' | '{' ',' m '}'
    primary      := NAME | '(' alternation ')'

Anchors (``^``/``$``), ``PERMUTE`` and exclusions (``{- -}``) are not supported: they raise
`PatternError` like any other stray character.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "PatternAlt",
    "PatternConcat",
    "PatternError",
    "PatternNode",
    "PatternQuantified",
    "PatternVar",
    "parse_pattern",
]


@dataclass(frozen=True)
class PatternVar:
    """A pattern variable (a DEFINE name, or an undefined one that matches any row)."""

    name: str


@dataclass(frozen=True)
class PatternConcat:
    """Items that must match one after another."""

    items: tuple[PatternNode, ...]


@dataclass(frozen=True)
class PatternAlt:
    """Alternatives separated by ``|``; the first listed is preferred."""

    options: tuple[PatternNode, ...]


@dataclass(frozen=True)
class PatternQuantified:
    """``item`` repeated between ``min`` and ``max`` times (``max=None``: unbounded)."""

    item: PatternNode
    min: int
    max: int | None
    greedy: bool = True


PatternNode = PatternVar | PatternConcat | PatternAlt | PatternQuantified


class PatternError(ValueError):
    """A malformed pattern; ``offset`` is the 0-based character offset in the pattern text."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at offset {offset})")
        self.message = message
        self.offset = offset


def parse_pattern(text: str) -> PatternNode:
    """Parse the text between ``PATTERN (`` and the matching ``)`` into a pattern tree.

    Single-item concatenations and alternations are collapsed, so ``A`` parses to
    ``PatternVar('A')`` rather than a one-element `PatternConcat`.  Variable names keep the case
    they were written in; unquoted SQL identifiers are case-insensitive, so the caller decides
    whether to fold them when matching DEFINE names.

    Raises:
        PatternError: for an empty pattern, unbalanced parentheses, bad quantifier bounds
            (e.g. ``{3,1}``) or a character outside the pattern language.
    """
    return _PatternParser(text).parse()


class _PatternParser:
    """Recursive-descent parser over the raw characters (the grammar is tiny, no lexer)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def parse(self) -> PatternNode:
        self._skip_ws()
        if self.pos >= len(self.text):
            raise PatternError("empty pattern", self.pos)
        node = self._alternation()
        self._skip_ws()
        if self.pos < len(self.text):
            char = self.text[self.pos]
            if char == ")":
                raise PatternError("unbalanced ')'", self.pos)
            raise PatternError(f"unexpected character {char!r}", self.pos)
        return node

    # -- grammar -------------------------------------------------------------------------------

    def _alternation(self) -> PatternNode:
        options = [self._concat()]
        while self._peek() == "|":
            self.pos += 1
            options.append(self._concat())
        return options[0] if len(options) == 1 else PatternAlt(tuple(options))

    def _concat(self) -> PatternNode:
        items: list[PatternNode] = []
        while True:
            char = self._peek()
            if char is None or char in "|)":
                break
            items.append(self._quantified())
        if not items:
            # An empty branch: `A |`, `| A`, `()` or a pattern that is only a quantifier.
            raise PatternError("expected a pattern variable or '('", self.pos)
        return items[0] if len(items) == 1 else PatternConcat(tuple(items))

    def _quantified(self) -> PatternNode:
        item = self._primary()
        char = self._peek()
        bounds: tuple[int, int | None] | None = None
        if char == "*":
            self.pos += 1
            bounds = (0, None)
        elif char == "+":
            self.pos += 1
            bounds = (1, None)
        elif char == "?":
            self.pos += 1
            bounds = (0, 1)
        elif char == "{":
            bounds = self._braces()
        if bounds is None:
            return item
        # A '?' right after a quantifier makes it reluctant (SQL:2016 / Flink semantics).
        greedy = True
        if self.pos < len(self.text) and self.text[self.pos] == "?":
            self.pos += 1
            greedy = False
        if self._peek() in ("*", "+", "?", "{"):
            raise PatternError("a quantifier cannot follow another quantifier", self.pos)
        return PatternQuantified(item, bounds[0], bounds[1], greedy)

    def _primary(self) -> PatternNode:
        char = self._peek()
        start = self.pos
        if char == "(":
            self.pos += 1
            node = self._alternation()
            if self._peek() != ")":
                # Point at the '(' that was never closed: that is what the user must fix.
                raise PatternError("unbalanced '(': missing ')'", start)
            self.pos += 1
            return node
        if char is not None and (char.isalpha() or char == "_"):
            while self.pos < len(self.text) and (
                self.text[self.pos].isalnum() or self.text[self.pos] == "_"
            ):
                self.pos += 1
            return PatternVar(self.text[start : self.pos])
        if char == '"':
            end = self.text.find('"', self.pos + 1)
            if end == -1 or end == self.pos + 1:
                raise PatternError("unterminated or empty quoted variable name", self.pos)
            self.pos = end + 1
            return PatternVar(self.text[start + 1 : end])
        if char is None:
            raise PatternError("expected a pattern variable or '('", self.pos)
        if char in "*+?{":
            raise PatternError(f"quantifier {char!r} has nothing to repeat", self.pos)
        raise PatternError(f"unexpected character {char!r}", self.pos)

    def _braces(self) -> tuple[int, int | None]:
        open_pos = self.pos
        self.pos += 1  # '{'
        low = self._int()
        high: int | None
        if self._peek() == ",":
            self.pos += 1
            high = self._int()
            if low is None and high is None:
                raise PatternError("'{,}' needs at least one bound", open_pos)
        else:
            if low is None:
                raise PatternError("expected a repetition count in '{...}'", self.pos)
            high = low
        if self._peek() != "}":
            raise PatternError("expected '}'", self.pos)
        self.pos += 1
        minimum = low if low is not None else 0
        if high is not None and high < minimum:
            raise PatternError(f"bad quantifier bounds {{{minimum},{high}}}: max < min", open_pos)
        if high == 0:
            raise PatternError("quantifier upper bound must be positive", open_pos)
        return minimum, high

    # -- lexing helpers ------------------------------------------------------------------------

    def _int(self) -> int | None:
        self._skip_ws()
        start = self.pos
        # Not str.isdigit(): that accepts superscripts and other digits int() rejects.
        while self.pos < len(self.text) and self.text[self.pos] in "0123456789":
            self.pos += 1
        if start == self.pos:
            return None
        return int(self.text[start : self.pos])

    def _peek(self) -> str | None:
        self._skip_ws()
        return self.text[self.pos] if self.pos < len(self.text) else None

    def _skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1
