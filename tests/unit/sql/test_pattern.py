from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamhouse_runtime.sql.pattern import (
    PatternAlt,
    PatternConcat,
    PatternError,
    PatternNode,
    PatternQuantified,
    PatternVar,
    parse_pattern,
)

pytestmark = pytest.mark.unit

A, B, C = PatternVar("A"), PatternVar("B"), PatternVar("C")


def test_single_variable_is_not_wrapped() -> None:
    assert parse_pattern("A") == A
    assert parse_pattern("  A  ") == A


def test_concatenation_and_names() -> None:
    assert parse_pattern("FAIL SUCCESS") == PatternConcat(
        (PatternVar("FAIL"), PatternVar("SUCCESS"))
    )
    assert parse_pattern("a_1 b2") == PatternConcat((PatternVar("a_1"), PatternVar("b2")))
    assert parse_pattern('"my var" B') == PatternConcat((PatternVar("my var"), B))


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("A*", 0, None),
        ("A+", 1, None),
        ("A?", 0, 1),
        ("A{3}", 3, 3),
        ("A{3,}", 3, None),
        ("A{2,5}", 2, 5),
        ("A{,4}", 0, 4),
        ("A{ 2 , 5 }", 2, 5),
        ("A{0,}", 0, None),
    ],
)
def test_quantifiers(text: str, low: int, high: int | None) -> None:
    assert parse_pattern(text) == PatternQuantified(A, low, high, greedy=True)


@pytest.mark.parametrize(
    ("text", "low", "high"), [("A*?", 0, None), ("A+?", 1, None), ("A??", 0, 1), ("A{2,3}?", 2, 3)]
)
def test_reluctant_quantifiers(text: str, low: int, high: int | None) -> None:
    assert parse_pattern(text) == PatternQuantified(A, low, high, greedy=False)


def test_design_doc_pattern() -> None:
    assert parse_pattern("FAIL{3,} SUCCESS") == PatternConcat(
        (PatternQuantified(PatternVar("FAIL"), 3, None), PatternVar("SUCCESS"))
    )


def test_alternation_binds_looser_than_concatenation() -> None:
    assert parse_pattern("A B | C") == PatternAlt((PatternConcat((A, B)), C))
    assert parse_pattern("A | B | C") == PatternAlt((A, B, C))


def test_grouping() -> None:
    assert parse_pattern("A (B | C)+ A") == PatternConcat(
        (A, PatternQuantified(PatternAlt((B, C)), 1, None), A)
    )
    assert parse_pattern("((A))") == A
    assert parse_pattern("(A B){2}") == PatternQuantified(PatternConcat((A, B)), 2, 2)


def test_nodes_are_frozen_and_hashable() -> None:
    node = parse_pattern("A B*")
    assert hash(node) == hash(parse_pattern("A  B*"))
    with pytest.raises(AttributeError):
        node.items = ()  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "offset", "fragment"),
    [
        ("", 0, "empty"),
        ("   ", 3, "empty"),
        ("(A B", 0, "unbalanced '('"),
        ("A (B (C)", 2, "unbalanced '('"),
        ("A B)", 3, "unbalanced ')'"),
        ("A{3,1}", 1, "max < min"),
        ("A{0}", 1, "upper bound"),
        ("A{,}", 1, "at least one bound"),
        ("A{}", 2, "repetition count"),
        ("A{3", 3, "expected '}'"),
        ("A{x}", 2, "repetition count"),
        ("A | ", 4, "expected a pattern variable"),
        ("| A", 0, "expected a pattern variable"),
        ("()", 1, "expected a pattern variable"),
        ("*A", 0, "nothing to repeat"),
        ("A**", 2, "cannot follow another quantifier"),
        ("A+{2}", 2, "cannot follow another quantifier"),
        ("A $", 2, "unexpected character '$'"),
        ("A ^B", 2, "unexpected character '^'"),
        ("A, B", 1, "unexpected character ','"),
        ('"A', 0, "unterminated"),
    ],
)
def test_errors_carry_offsets(text: str, offset: int, fragment: str) -> None:
    with pytest.raises(PatternError) as caught:
        parse_pattern(text)
    assert caught.value.offset == offset
    assert fragment in caught.value.message


# -- property: rendering any tree and parsing it back gives the same tree ------------------------


def _bounds() -> st.SearchStrategy[tuple[int, int | None]]:
    return st.integers(0, 5).flatmap(
        lambda low: st.tuples(st.just(low), st.one_of(st.none(), st.integers(max(low, 1), low + 5)))
    )


_variables = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,5}", fullmatch=True).map(PatternVar)
_trees: st.SearchStrategy[PatternNode] = st.recursive(
    _variables,
    lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=3).map(lambda items: PatternConcat(tuple(items))),
        st.lists(inner, min_size=2, max_size=3).map(lambda options: PatternAlt(tuple(options))),
        st.tuples(inner, _bounds(), st.booleans()).map(
            lambda args: PatternQuantified(args[0], args[1][0], args[1][1], args[2])
        ),
    ),
    max_leaves=8,
)


def _render_grouped(node: PatternNode) -> str:
    # Parenthesise every compound operand so precedence never reshapes the tree.
    if isinstance(node, PatternVar):
        return node.name
    if isinstance(node, PatternConcat):
        return " ".join(f"({_render_grouped(item)})" for item in node.items)
    if isinstance(node, PatternAlt):
        return " | ".join(f"({_render_grouped(option)})" for option in node.options)
    high = "" if node.max is None else node.max
    lazy = "" if node.greedy else "?"
    return f"({_render_grouped(node.item)}){{{node.min},{high}}}{lazy}"


@settings(max_examples=60, deadline=None)
@given(_trees)
def test_rendered_trees_parse_back(tree: PatternNode) -> None:
    assert parse_pattern(_render_grouped(tree)) == tree
