"""Tests of UK criminal-justice identifier formats, check letters, generators and validators."""

from __future__ import annotations

import re

import numpy as np
import pytest

from justice import identifiers as ids

ALPHABET = "ZABCDEFGHJKLMNPQRTUVWXY"


def test_alphabet_is_23_letters_without_i_o_s() -> None:
    assert ids.CHECK_ALPHABET == ALPHABET
    assert len(set(ALPHABET)) == 23
    assert not set("IOS") & set(ALPHABET)


def test_pnc_known_example_worked_by_hand() -> None:
    # 981234567 = 23 * 42662372 + 11, and ALPHABET[11] == "L".
    assert 981234567 == 23 * 42662372 + 11
    assert ALPHABET[11] == "L"
    assert ids.pnc_check_char(1998, 1234567) == "L"
    assert ids.is_valid_pnc("1998/1234567L")


def test_pnc_check_uses_zero_padded_serial() -> None:
    # 1998/0001234: int("98" + "0001234") = 980001234 = 23 * 42608749 + 7 -> "G".
    assert 980001234 == 23 * 42608749 + 7
    assert ids.pnc_check_char(1998, 1234) == ALPHABET[7] == "G"
    assert ids.is_valid_pnc("1998/0001234G")


def test_cro_known_example_worked_by_hand() -> None:
    # 123456/98: int("98" + "123456") = 98123456 = 23 * 4266237 + 5 -> "E".
    assert 98123456 == 23 * 4266237 + 5
    assert ids.cro_check_char(98, 123456) == "E"
    assert ids.cro_check_char(1998, 123456) == "E"
    assert ids.is_valid_cro("123456/98E")
    # Small serial, zero-padded: int("05" + "000042") = 5000042 = 23 * 217393 + 3 -> "C".
    assert 5000042 == 23 * 217393 + 3
    assert ids.is_valid_cro("000042/05C")


@pytest.mark.parametrize(
    "bad",
    [
        "1998/1234567M",  # wrong check letter
        "1998/1234567l",  # lower case is not canonical
        " 1998/1234567L",  # surrounding whitespace is not canonical
        "1998/1234L",  # unpadded serial is not canonical
        "98/1234567L",
        "1998-1234567L",
        "1998/1234567",
        "",
        None,
        19981234567,
    ],
)
def test_is_valid_pnc_rejects(bad: object) -> None:
    assert not ids.is_valid_pnc(bad)


def test_every_wrong_check_letter_is_detected() -> None:
    for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        assert ids.is_valid_pnc(f"1998/1234567{letter}") == (letter == "L")
        assert ids.is_valid_cro(f"123456/98{letter}") == (letter == "E")


def test_single_digit_errors_and_transpositions_are_detected() -> None:
    good = "1998/1234567L"
    # The check covers YY and the serial; the century digits are not part of it.
    digit_positions = [i for i, c in enumerate(good) if c.isdigit() and i >= 2]
    assert ids.is_valid_pnc("2098/1234567L")
    for i in digit_positions:
        for d in "0123456789":
            if d != good[i]:
                assert not ids.is_valid_pnc(good[:i] + d + good[i + 1 :])
    for i in digit_positions:
        j = i + 1
        if j in digit_positions and good[i] != good[j]:
            assert not ids.is_valid_pnc(good[:i] + good[j] + good[i] + good[j + 1 :])


def test_normalise_pnc() -> None:
    assert ids.normalise_pnc("1998/1234567L") == "1998/1234567L"
    assert ids.normalise_pnc("  1998/1234567l \n") == "1998/1234567L"
    assert ids.normalise_pnc("1998/1234G") == "1998/0001234G"
    assert ids.normalise_pnc("1998/0001234g") == "1998/0001234G"
    assert ids.normalise_pnc("1998/1234567M") is None
    assert ids.normalise_pnc("1998/1234567M", require_check=False) == "1998/1234567M"
    assert ids.normalise_pnc("98/1234567L") is None
    assert ids.normalise_pnc("1998/12345678L") is None
    assert ids.normalise_pnc(None) is None


def test_normalise_cro() -> None:
    assert ids.normalise_cro(" 42/05c") == "000042/05C"
    assert ids.normalise_cro("123456/98E") == "123456/98E"
    assert ids.normalise_cro("123456/98F") is None


def test_prison_number_and_crn_validation() -> None:
    assert ids.is_valid_prison_number("A1234BC")
    assert not ids.is_valid_prison_number("A1234B")
    assert not ids.is_valid_prison_number("a1234bc")
    assert ids.is_valid_crn("X123456")
    assert not ids.is_valid_crn("X12345")
    assert not ids.is_valid_crn("1234567")


def test_valid_pnc_mask_matches_scalar() -> None:
    values = np.array(
        [
            "1998/1234567L",
            "1998/1234567M",
            None,
            12,
            "1998/1234567l",
            "abcd/1234567L",
            "1998/0001234G",
            "",
            "1998/123A567L",
        ],
        dtype=object,
    )
    mask = ids.valid_pnc_mask(values)
    assert mask.tolist() == [ids.is_valid_pnc(v) for v in values]
    assert mask.tolist() == [True, False, False, False, False, False, True, False, False]
    assert ids.valid_pnc_mask(np.array([], dtype=object)).shape == (0,)


def test_valid_cro_mask_matches_scalar() -> None:
    values = np.array(["123456/98E", "123456/98F", "000042/05C", None, "12345/98E"], dtype=object)
    assert ids.valid_cro_mask(values).tolist() == [True, False, True, False, False]


def test_generated_pnc_ids_are_unique_valid_and_well_formed() -> None:
    rng = np.random.default_rng(20240501)
    years = rng.integers(1975, 2025, 200_000)
    years[:50_000] = 2001  # one crowded year
    pnc = ids.make_pnc_ids(rng, years)
    assert pnc.dtype == object and pnc.shape == (200_000,)
    assert len(set(pnc.tolist())) == 200_000
    assert ids.valid_pnc_mask(pnc).all()
    pattern = re.compile(r"^\d{4}/\d{7}[A-Z]$")
    assert all(pattern.match(p) for p in pnc[:5000])
    assert all(ids.is_valid_pnc(p) for p in pnc[:5000])
    assert [int(p[:4]) for p in pnc[:1000]] == years[:1000].tolist()


def test_generated_cro_numbers_are_unique_valid_and_well_formed() -> None:
    rng = np.random.default_rng(7)
    years = rng.integers(1960, 2025, 200_000)
    cro = ids.make_cro_numbers(rng, years)
    assert len(set(cro.tolist())) == 200_000
    assert ids.valid_cro_mask(cro).all()
    assert all(re.fullmatch(r"\d{6}/\d{2}[A-Z]", c) for c in cro[:5000])
    assert [c[7:9] for c in cro[:100]] == [f"{y % 100:02d}" for y in years[:100]]


def test_cro_uniqueness_is_per_two_digit_year() -> None:
    # 1905 and 2005 print as the same "/05", so they must share one serial space.
    rng = np.random.default_rng(3)
    years = np.array([1905, 2005] * 50_000)
    cro = ids.make_cro_numbers(rng, years)
    assert len(set(cro.tolist())) == 100_000


def test_generated_prison_numbers_and_crns_are_unique_and_well_formed() -> None:
    rng = np.random.default_rng(11)
    prison = ids.make_prison_numbers(rng, 200_000)
    crns = ids.make_crns(rng, 200_000)
    assert len(set(prison.tolist())) == 200_000
    assert len(set(crns.tolist())) == 200_000
    assert all(re.fullmatch(r"[A-Z]\d{4}[A-Z]{2}", p) for p in prison)
    assert all(re.fullmatch(r"[A-Z]\d{6}", c) for c in crns)
    # All 26 leading letters are used, so the draw covers the whole space.
    assert len({p[0] for p in prison}) == 26


def test_generators_are_deterministic() -> None:
    years = np.arange(1990, 2010).repeat(10)
    a = ids.make_pnc_ids(np.random.default_rng(5), years)
    b = ids.make_pnc_ids(np.random.default_rng(5), years)
    assert a.tolist() == b.tolist()
    assert (
        ids.make_crns(np.random.default_rng(5), 100).tolist()
        == ids.make_crns(np.random.default_rng(5), 100).tolist()
    )


def test_generator_errors() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="four-digit"):
        ids.make_pnc_ids(rng, np.array([98]))
    with pytest.raises(ValueError, match="integer"):
        ids.make_pnc_ids(rng, np.array([1998.0]))
    with pytest.raises(ValueError, match="unique CRO"):
        ids.make_cro_numbers(rng, np.full(1_000_000, 1999))
    with pytest.raises(ValueError):
        ids.make_crns(rng, -1)
    assert ids.make_pnc_ids(rng, np.array([], dtype=int)).shape == (0,)
