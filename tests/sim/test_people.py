"""The world's name pools (sim/people.py): weighed by frequency where the list says it, and never
by the alphabet."""

from __future__ import annotations

import functools
import importlib

import numpy as np
import pytest

from justice.sim import people


@functools.cache
def _pools() -> dict:
    return people.name_pools()


def _faker(locale: str, attr: str) -> list[str]:
    return list(getattr(importlib.import_module(f"faker.providers.person.{locale}").Provider, attr))


def _share(pool: people.NamePool, names: set[str]) -> float:
    return float(pool.p[np.isin(pool.names, list(names))].sum())


@pytest.mark.parametrize("locale, attr, pool, share", [
    ("en_IE", "last_names", ("White", ""), 0.25),
    ("yo_NG", "last_names", ("Black", ""), 0.45),
    ("en_IN", "first_names_male", ("Asian", "M"), 0.85),
    ("yo_NG", "first_names_female", ("Black", "F"), 0.45),
])
def test_an_alphabetical_list_puts_no_initial_first(locale: str, attr: str, pool: tuple, share: float) -> None:
    """A list in alphabetical order says nothing of how common its names are: its names that
    begin with A (Achison, Adebisi, Aarav) weigh in the pool about what their number in the list
    would give, not the top ranks' weight (Achison was the world's eighth commonest surname)."""
    names = _faker(locale, attr)
    assert names[:50] == sorted(names[:50])  # the premise: the list is alphabetical
    listed = list(dict.fromkeys(n for n in names if n.isascii() and n.isalpha()))
    a_names = {n for n in listed if n.startswith("A")}
    expected = share * len(a_names) / len(listed)
    got = _share(_pools()[pool], a_names)
    # Other lists in the pool may hold some of the same names, and Zipf weights over a hashed
    # order spread about the count share; ranked by the alphabet the A names took 3-6 times it.
    assert got < 2.0 * expected + 0.01, (locale, attr, got, expected)


def test_a_frequency_ordered_list_keeps_its_order() -> None:
    """en_GB's forenames are listed commonest first, so David leads the men's pool."""
    pool = _pools()[("White", "M")]
    top = pool.names[np.argsort(-pool.p)[:3]].tolist()
    assert top == ["David", "Paul", "Christopher"]
    assert people.frequency_order("en_GB", "first_names_male", _faker("en_GB", "first_names_male"))[:3] == top


def test_a_name_listed_twice_weighs_as_one() -> None:
    """yo_NG lists its 98 surnames twice over; each takes one rank."""
    listed = _faker("yo_NG", "last_names")
    order = people.frequency_order("yo_NG", "last_names", listed)
    assert len(order) == len(set(listed)) < len(listed)
    assert sorted(order) == sorted(set(listed))


def test_the_order_is_fixed_and_not_the_alphabet() -> None:
    """The hashed order is the same on every call (so the same seed makes the same world on every
    machine) and is not alphabetical."""
    listed = _faker("en_IE", "last_names")
    one = people.frequency_order("en_IE", "last_names", listed)
    assert one == people.frequency_order("en_IE", "last_names", list(listed))
    assert one != sorted(one)
    # No more than chance of the first hundred begin with A.
    a_share = sum(n.startswith("A") for n in listed) / len(listed)
    assert sum(n.startswith("A") for n in one[:100]) <= max(3 * a_share * 100, 5)
