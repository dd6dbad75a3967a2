"""Vectorised corruption of person-record fields, so simulated sources are as messy as real ones.

Every function has the shape ``f(rng, values, rate_or_mask, ...) -> (new_values, applied)``:

* ``values`` is a 1-D numpy array: ``object`` of ``str`` (``None`` allowed) for text, or
  ``datetime64[D]`` (``NaT`` allowed) for dates. The input is never modified.
* ``rate_or_mask`` is either a probability per record (a float in [0, 1]; one uniform draw per
  record decides selection) or a boolean mask of records to try.
* ``applied`` is a boolean array marking the records whose value really changed. Missing values
  (``None``/``NaT``) stay missing and are never counted; records a corruption cannot apply to
  (a forename with no nickname, a date of birth whose day is over 12 for a day/month swap) are
  left alone and not counted either. So the applied fraction is ``rate`` times the eligible
  fraction.

Results depend only on the generator state and the inputs. Python-level work is done only for
the selected records, which are a small share at realistic rates, so a million values take well
under a second or two per function.

:func:`load_mess_levels` reads the ``low``/``default``/``high`` per-record rates (with their
published sources) from ``reference/mess_levels.yaml``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from justice.errors import ConfigError
from justice.identifiers import CHECK_ALPHABET

__all__ = [
    "FLAT_RECORD_KINDS",
    "MESS_KINDS",
    "MESS_LEVELS",
    "TYPO_KIND_PROBS",
    "bad_check_char",
    "blank",
    "dob_day_month_swap",
    "dob_first_of_january",
    "dob_shift",
    "id_digit_typo",
    "load_mess_levels",
    "mojibake",
    "nickname",
    "nickname_lookup",
    "surname_change",
    "swap_names",
    "typo",
    "whitespace",
]

RateOrMask = float | np.ndarray

# --------------------------------------------------------------------------------------------
# Shared plumbing
# --------------------------------------------------------------------------------------------


def _as_text(values: np.ndarray | Sequence[object]) -> np.ndarray:
    arr = np.asarray(values, dtype=object)
    if arr.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {arr.shape}")
    return arr


def _as_dates(values: np.ndarray | Sequence[object]) -> np.ndarray:
    arr = np.asarray(values, dtype="datetime64[D]")
    if arr.ndim != 1:
        raise ValueError(f"dates must be 1-D, got shape {arr.shape}")
    return arr


def _select(rng: np.random.Generator, n: int, rate_or_mask: RateOrMask) -> np.ndarray:
    """Boolean mask of records to try: the given mask, or one uniform draw per record < rate."""
    if isinstance(rate_or_mask, np.ndarray) and rate_or_mask.dtype == bool:
        if rate_or_mask.shape != (n,):
            raise ValueError(f"mask has shape {rate_or_mask.shape}, values have ({n},)")
        return rate_or_mask
    rate = float(rate_or_mask)
    if not 0.0 <= rate <= 1.0 or math.isnan(rate):
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    # Always draw n numbers, even at rate 0, so the generator's stream does not depend on rate.
    return rng.random(n) < rate


def _text_candidates(
    rng: np.random.Generator,
    vals: np.ndarray,
    rate_or_mask: RateOrMask,
    ok: Callable[[str], bool] = bool,
) -> np.ndarray:
    """Indices selected by rate/mask whose value is a str passing ``ok`` (default: non-empty)."""
    idx = np.flatnonzero(_select(rng, vals.size, rate_or_mask))
    keep = np.fromiter((isinstance(v, str) and ok(v) for v in vals[idx]), bool, idx.size)
    return idx[keep]


def _put_text(vals: np.ndarray, idx: np.ndarray, new: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Copy of ``vals`` with ``new`` written at ``idx``, and the mask of values that changed."""
    out = vals.copy()
    applied = np.zeros(vals.size, dtype=bool)
    if idx.size:
        new_arr = np.empty(idx.size, dtype=object)
        new_arr[:] = new
        changed = np.fromiter((a != b for a, b in zip(new, vals[idx], strict=True)), bool, idx.size)
        out[idx[changed]] = new_arr[changed]
        applied[idx[changed]] = True
    return out, applied


def _case_like(new: str, like: str) -> str:
    """``new`` in the case style of ``like`` (UPPER, lower or Title)."""
    if like.isupper():
        return new.upper()
    if like.islower():
        return new.lower()
    return new[:1].upper() + new[1:].lower()


def _char_case(c: str, like: str) -> str:
    return c.upper() if like.isupper() else c.lower()


# --------------------------------------------------------------------------------------------
# Typos
# --------------------------------------------------------------------------------------------

TYPO_KIND_PROBS: dict[str, float] = {
    # Damerau (1964), share of single-error misspellings by kind; "multiple" = two edits.
    "substitution": 0.59,
    "deletion": 0.16,
    "insertion": 0.10,
    "transposition": 0.02,
    "multiple": 0.13,
}
_TYPO_KINDS = tuple(TYPO_KIND_PROBS)
_TYPO_CUM = np.cumsum(list(TYPO_KIND_PROBS.values()))
_TYPO_CUM[-1] = 1.0
# The first letter of a name is rarely mistyped (people check it, and it drives indexing).
FIRST_LETTER_SHARE = 0.08
# Share of substitutions that hit a keyboard neighbour; the rest are sound/shape confusions.
_KEYBOARD_SHARE = 0.6

_QWERTY_NEIGHBOURS = {
    "q": "was", "w": "qeasd", "e": "wrsdf", "r": "etdfg", "t": "ryfgh", "y": "tughj",
    "u": "yihjk", "i": "uojkl", "o": "ipkl", "p": "ol",
    "a": "qwszx", "s": "qweadzxc", "d": "wersfxcv", "f": "ertdgcvb", "g": "rtyfhvbn",
    "h": "tyugjbnm", "j": "yuihknm", "k": "uiojlm", "l": "iopk",
    "z": "asx", "x": "zsdc", "c": "xdfv", "v": "cfgb", "b": "vghn", "n": "bhjm", "m": "njk",
}  # fmt: skip
# Letters that sound or look alike, so a clerk writing from speech or a scan swaps them.
_PLAUSIBLE = {
    "a": "eo", "e": "aiy", "i": "yeo", "o": "aue", "u": "oa", "y": "ie",
    "c": "ks", "k": "cq", "q": "k", "s": "zc", "z": "s", "x": "z",
    "f": "vp", "v": "fw", "w": "v", "m": "n", "n": "mu", "b": "pd", "p": "b",
    "d": "tb", "t": "d", "g": "jq", "j": "g", "l": "i", "r": "n", "h": "n",
}  # fmt: skip
_VOWELS = "aeiou"


def _substitute(c: str, u_kind: float, u_pick: float) -> str:
    """A plausible wrong letter for ``c``: keyboard neighbour or sound/shape-alike, same case."""
    low = c.lower()
    if u_kind < _KEYBOARD_SHARE or low not in _PLAUSIBLE:
        pool = _QWERTY_NEIGHBOURS.get(low, _VOWELS)
    else:
        pool = _PLAUSIBLE[low]
    pool = pool.replace(low, "") or "e"
    return _char_case(pool[int(u_pick * len(pool))], c)


def _pick(cands: list[int], allow_first: bool, u: float) -> int:
    """A position from ``cands``; position 0 only when ``allow_first`` or nothing else exists."""
    if cands[0] == 0 and (allow_first or len(cands) == 1):
        return 0
    start = 1 if cands[0] == 0 else 0
    return cands[start + int(u * (len(cands) - start))]


def _edit(s: str, kind: str, first: bool, u: Sequence[float], upper: bool) -> str:
    """One edit of ``kind`` on ``s``; ``first``: may hit index 0; ``upper``: name is UPPER case."""
    letters = [i for i, c in enumerate(s) if c.isalpha()]
    if not letters:
        return s
    if kind == "deletion" and len(s) < 2:
        kind = "insertion"
    if kind == "transposition":
        pairs = [
            i for i in letters
            if i + 1 < len(s) and s[i + 1].isalpha() and s[i].lower() != s[i + 1].lower()
        ]  # fmt: skip
        if not pairs:
            kind = "substitution"
        else:
            i = _pick(pairs, first, u[0])
            # Swap the letters but keep each position's case, so "Smith" -> "Msith".
            a, b = s[i], s[i + 1]
            return s[:i] + _char_case(b, a) + _char_case(a, b) + s[i + 2 :]
    if kind == "substitution":
        i = _pick(letters, first, u[0])
        return s[:i] + _substitute(s[i], u[1], u[2]) + s[i + 1 :]
    if kind == "deletion":
        i = _pick(letters, first, u[0])
        out = s[:i] + s[i + 1 :]
        if i == 0 and s[0].isupper() and not upper:
            out = out[:1].upper() + out[1:]  # "Smith" -> "Mith", not "mith"
        return out
    # insertion: before index k (k == len(s) appends)
    k = 0 if first else 1 + int(u[0] * len(s))
    if k > 0 and s[k - 1].isalpha():
        neighbour = s[k - 1]
    elif k < len(s) and s[k].isalpha():
        neighbour = s[k]
    else:
        neighbour = s[letters[0]]
    if k > 0 and u[1] < 0.5:
        c = neighbour  # doubled letter: "Philip" -> "Phillip"
    else:
        c = _substitute(neighbour, 0.0, u[2])  # fat finger next to the intended key
    if upper:
        c = c.upper()
    elif k == 0 and s[0].isupper():
        return c.upper() + s[0].lower() + s[1:]  # "Smith" -> "Asmith"
    else:
        c = c.lower()  # inside a Title or lower-case name, a typed letter is lower case
    return s[:k] + c + s[k:]


# Kinds for each of the two edits of a "multiple" typo, weighted as the single-edit kinds.
_MULTI_KINDS = ("substitution", "deletion", "insertion")
_MULTI_CUM = [0.59 / 0.85, 0.75 / 0.85]


def _multi_kind(u: float) -> str:
    return _MULTI_KINDS[bisect.bisect_right(_MULTI_CUM, u)]


def _typo_one(s: str, kind: str, u: Sequence[float]) -> str:
    """A typo of ``kind`` in ``s`` driven by uniforms ``u`` (length 9); always differs from s."""
    first = u[0] < FIRST_LETTER_SHARE
    # Case style comes from the original: after a deletion "Ng" is "N", which looks upper case.
    upper = s.isupper()
    if kind != "multiple":
        out = _edit(s, kind, first, u[1:4], upper)
    else:
        # Two edits, without transpositions, so the result stays within edit distance 2 under
        # both plain and restricted Damerau-Levenshtein distance.
        once = _edit(s, _multi_kind(u[4]), first, u[1:4], upper)
        out = _edit(once, _multi_kind(u[8]), False, u[5:8], upper)
    if out == s:
        # Two edits can cancel out; a substitution always changes the string.
        out = _edit(s, "substitution", first, u[1:4], upper)
    return out


def typo(
    rng: np.random.Generator, names: np.ndarray, rate: RateOrMask
) -> tuple[np.ndarray, np.ndarray]:
    """Keying typos with Damerau's (1964) mix of kinds; first letter rarely hit; case kept."""
    vals = _as_text(names)
    idx = _text_candidates(rng, vals, rate, ok=lambda s: any(c.isalpha() for c in s))
    kinds = np.searchsorted(_TYPO_CUM, rng.random(idx.size), side="right")
    u = rng.random((idx.size, 9)).tolist()
    new = [
        _typo_one(s, _TYPO_KINDS[k], row)
        for s, k, row in zip(vals[idx].tolist(), kinds.tolist(), u, strict=True)
    ]
    return _put_text(vals, idx, new)


# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------


@cache
def nickname_lookup() -> dict[str, tuple[str, ...]]:
    """Lower-case canonical forename -> sorted tuple of its nicknames (the `nicknames` package)."""
    from nicknames import NickNamer

    lookup: dict[str, tuple[str, ...]] = {}
    for canonical, nicks in NickNamer.default_lookup().items():
        # Drop one-letter forms and anything that is not a plain name, which would read as noise.
        good = sorted(n for n in nicks if len(n) > 1 and n != canonical and n.isalpha())
        if good:
            lookup[canonical] = tuple(good)
    return lookup


def nickname(
    rng: np.random.Generator, forenames: np.ndarray, rate: RateOrMask
) -> tuple[np.ndarray, np.ndarray]:
    """Replace a forename with one of its nicknames (WILLIAM -> BILL), keeping its case style."""
    vals = _as_text(forenames)
    lookup = nickname_lookup()
    idx = _text_candidates(rng, vals, rate)
    u = rng.random(idx.size)
    # Look each distinct selected name up once; the pick per record is then an index.
    selected = vals[idx].tolist()
    options = {s: lookup.get(s.strip().lower(), ()) for s in set(selected)}
    has = np.fromiter((bool(options[s]) for s in selected), bool, idx.size)
    new = []
    for s, x in zip(selected, u.tolist(), strict=True):
        opts = options[s]
        new.append(_case_like(opts[int(x * len(opts))], s.strip()) if opts else s)
    idx, new = idx[has], [n for n, h in zip(new, has, strict=True) if h]
    return _put_text(vals, idx, new)


def swap_names(
    rng: np.random.Generator, forenames: np.ndarray, surnames: np.ndarray, rate: RateOrMask
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Swap forename and surname (name inversion); both must be present and different."""
    fore, sur = _as_text(forenames), _as_text(surnames)
    if fore.shape != sur.shape:
        raise ValueError(f"forenames {fore.shape} and surnames {sur.shape} differ in shape")
    idx = np.flatnonzero(_select(rng, fore.size, rate))
    ok = np.fromiter(
        (isinstance(f, str) and isinstance(s, str) and f != s for f, s in zip(fore[idx], sur[idx])),
        bool,
        idx.size,
    )
    idx = idx[ok]
    new_fore, new_sur = fore.copy(), sur.copy()
    new_fore[idx], new_sur[idx] = sur[idx], fore[idx]
    applied = np.zeros(fore.size, dtype=bool)
    applied[idx] = True
    return new_fore, new_sur, applied


def surname_change(
    rng: np.random.Generator, surnames: np.ndarray, pool: np.ndarray, rate: RateOrMask
) -> tuple[np.ndarray, np.ndarray]:
    """A new surname (e.g. on marriage) drawn uniformly from ``pool``, in the old one's case."""
    vals = _as_text(surnames)
    pool_list = [p for p in np.asarray(pool, dtype=object).tolist() if isinstance(p, str) and p]
    if not pool_list:
        raise ValueError("surname pool is empty")
    idx = _text_candidates(rng, vals, rate)
    picks = rng.integers(0, len(pool_list), idx.size).tolist()
    new = []
    for s, p in zip(vals[idx].tolist(), picks, strict=True):
        cand = pool_list[p]
        if cand.lower() == s.lower():
            # Marrying someone with your own surname is not a change; take the next one.
            cand = pool_list[(p + 1) % len(pool_list)]
        new.append(_case_like(cand, s) if cand.lower() != s.lower() else s)
    return _put_text(vals, idx, new)


# --------------------------------------------------------------------------------------------
# Spelling variants, name forms, partial names
# --------------------------------------------------------------------------------------------


@cache
def name_variant_table() -> dict[str, tuple[str, ...]]:
    """Lower-case name -> its other spellings (reference/name_variants.csv), nickname pairs
    dropped so that a variant is never something a nickname table would already match."""
    text = resources.files("justice.sim").joinpath("reference", "name_variants.csv")
    nick = nickname_lookup()
    table: dict[str, tuple[str, ...]] = {}
    lines = [ln for ln in text.read_text("utf-8").splitlines() if ln and not ln.startswith("#")]
    for line in lines[1:]:
        _, names = line.split(",", 1)
        group = [n.strip() for n in names.split("|") if n.strip()]
        for name in group:
            low = name.lower()
            others = tuple(
                o for o in group
                if o.lower() != low and o.lower() not in nick.get(low, ())
                and low not in nick.get(o.lower(), ())
            )  # fmt: skip
            if others:
                table[low] = others
    return table


# Respellings a clerk makes of an unfamiliar name (each way round), never on the first letter:
# vowel and consonant forms that sound the same, and doubled or single consonants.
_RESPELL = (
    ("ee", "i"), ("i", "ee"), ("oo", "u"), ("ou", "u"), ("aa", "a"), ("a", "aa"), ("ck", "k"),
    ("dh", "d"), ("th", "t"), ("bh", "b"), ("kh", "k"), ("ph", "f"), ("v", "w"), ("w", "v"),
    ("ll", "l"), ("nn", "n"), ("tt", "t"), ("ss", "s"), ("mm", "m"), ("rr", "r"), ("l", "ll"),
    ("n", "nn"), ("y", "i"), ("ie", "y"), ("ey", "y"), ("z", "s"), ("s", "z"),
)  # fmt: skip


def respellings(name: str) -> list[str]:
    """Every variant of ``name`` from the table and the respelling rules, in its case style."""
    low = name.lower()
    out = [_case_like(v, name) for v in name_variant_table().get(low, ())]
    for a, b in _RESPELL:
        start = low.find(a, 1)
        while start > 0:
            cand = low[:start] + b + low[start + len(a):]
            if cand != low and cand.isalpha():
                out.append(_case_like(cand, name))
            start = low.find(a, start + 1)
    seen: set[str] = set()
    return [o for o in out if not (o in seen or seen.add(o)) and o != name]


def respell(
    rng: np.random.Generator, names: np.ndarray, rate: RateOrMask, table_rate: RateOrMask
) -> tuple[np.ndarray, np.ndarray]:
    """Another spelling of a name: from the variant table at ``table_rate`` (names in it), else
    by a respelling rule (Chaudhry -> Chaudhri, Phillip -> Philip) at ``rate``."""
    vals = _as_text(names)
    table = name_variant_table()
    in_table = np.fromiter(
        (isinstance(v, str) and v.strip().lower() in table for v in vals), bool, vals.size)
    sel_t = _select(rng, vals.size, table_rate) & in_table
    sel_r = _select(rng, vals.size, rate) & ~in_table
    idx = np.flatnonzero(sel_t | sel_r)
    idx = idx[np.fromiter((isinstance(v, str) and bool(v.strip()) for v in vals[idx]), bool,
                          idx.size)]
    u = rng.random(idx.size).tolist()
    new = []
    for s, x in zip(vals[idx].tolist(), u, strict=True):
        opts = [_case_like(v, s) for v in table.get(s.strip().lower(), ())] or respellings(s)
        new.append(opts[int(x * len(opts))] if opts else s)
    return _put_text(vals, idx, new)


def _mac_forms(s: str) -> list[str]:
    low = s.lower()
    # (Case alone, MacDonald / Macdonald, is not a different form: upper-case systems and any
    # matcher see the same name.)
    if low.startswith("mac") and len(s) > 4:
        rest = s[3:]
        return ["Mc" + rest, "Mac " + rest]
    if low.startswith("mc") and len(s) > 3:
        rest = s[2:]
        return ["Mac" + rest, "Mc " + rest]
    if "'" in s:
        i = s.index("'")
        return [s[:i] + s[i + 1:], s[:i] + " " + s[i + 1:]]
    return []


def mac_form(
    rng: np.random.Generator, names: np.ndarray, rate: RateOrMask
) -> tuple[np.ndarray, np.ndarray]:
    """Mc/Mac and apostrophe forms (MacDonald -> McDonald, Mc Donald; O'Brien -> OBrien,
    O Brien, Obrien); only surnames of those forms are eligible."""
    vals = _as_text(names)
    idx = _text_candidates(rng, vals, rate, ok=lambda s: bool(_mac_forms(s)))
    u = rng.random(idx.size).tolist()
    new = []
    for s, x in zip(vals[idx].tolist(), u, strict=True):
        opts = [_case_like(o, s) if s.isupper() or s.islower() else o for o in _mac_forms(s)]
        new.append(opts[int(x * len(opts))])
    return _put_text(vals, idx, new)


def _parts(s: str) -> list[str]:
    return [p for p in s.replace("-", " ").split(" ") if p]


def partial_surname(
    rng: np.random.Generator, names: np.ndarray, rate: RateOrMask
) -> tuple[np.ndarray, np.ndarray]:
    """A double-barrelled or hyphenated surname recorded in part: one of its parts, or both
    run together (Smith-Jones -> Smith, Jones, Smith Jones, SmithJones)."""
    vals = _as_text(names)
    idx = _text_candidates(rng, vals, rate, ok=lambda s: len(_parts(s)) >= 2)
    u = rng.random(idx.size).tolist()
    new = []
    for s, x in zip(vals[idx].tolist(), u, strict=True):
        parts = _parts(s)
        joiner = " " if "-" in s else "-"
        opts = [parts[0], parts[-1], parts[0] + parts[-1][:1].lower() + parts[-1][1:]
                if not s.isupper() else parts[0] + parts[-1], joiner.join(parts)]
        # The last part (the one most often used alone) is recorded more often than the first.
        new.append(opts[1] if x < 0.4 else opts[0] if x < 0.65 else opts[2] if x < 0.8
                   else opts[3])
    return _put_text(vals, idx, new)


def initial_only(
    rng: np.random.Generator, names: np.ndarray, rate: RateOrMask
) -> tuple[np.ndarray, np.ndarray]:
    """A forename recorded as its initial only (JOHN -> J)."""
    vals = _as_text(names)
    idx = _text_candidates(rng, vals, rate, ok=lambda s: len(s.strip()) > 1)
    new = [s.strip()[0] for s in vals[idx].tolist()]
    return _put_text(vals, idx, new)


_POSTCODE_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


def postcode_typo(
    rng: np.random.Generator, postcodes: np.ndarray, rate: RateOrMask
) -> tuple[np.ndarray, np.ndarray]:
    """One character of a postcode mistyped: a digit for a digit, a letter for a letter (the
    first letter kept, as in name typos), or two adjacent characters of the inward code swapped."""
    vals = _as_text(postcodes)
    idx = _text_candidates(rng, vals, rate, ok=lambda s: sum(c.isalnum() for c in s) >= 5)
    u = rng.random((idx.size, 3)).tolist()
    new = []
    for s, (a, b, c) in zip(vals[idx].tolist(), u, strict=True):
        spots = [i for i, ch in enumerate(s) if ch.isalnum() and i > 0]
        i = spots[int(a * len(spots))]
        if b < 0.15 and i + 1 < len(s) and s[i + 1].isalnum() and s[i] != s[i + 1]:
            new.append(s[:i] + s[i + 1] + s[i] + s[i + 2:])
            continue
        pool = "0123456789" if s[i].isdigit() else _POSTCODE_LETTERS
        pool = pool.replace(s[i], "")
        new.append(s[:i] + pool[int(c * len(pool))] + s[i + 1:])
    return _put_text(vals, idx, new)


# --------------------------------------------------------------------------------------------
# Dates of birth
# --------------------------------------------------------------------------------------------


def _ymd(d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(year start datetime64[Y], month 1-12, day 1-31) of a datetime64[D] array."""
    y = d.astype("datetime64[Y]")
    m = d.astype("datetime64[M]")
    month = (m - y.astype("datetime64[M]")).astype(np.int64) + 1
    day = (d - m.astype("datetime64[D]")).astype(np.int64) + 1
    return y, month, day


def _date_result(
    dates: np.ndarray, idx: np.ndarray, new: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    out = dates.copy()
    out[idx] = new
    applied = np.zeros(dates.size, dtype=bool)
    applied[idx] = new != dates[idx]
    return out, applied


def dob_day_month_swap(
    rng: np.random.Generator, dobs: np.ndarray, rate: RateOrMask
) -> tuple[np.ndarray, np.ndarray]:
    """Swap day and month (US/UK entry confusion); only where day <= 12 and day != month."""
    d = _as_dates(dobs)
    idx = np.flatnonzero(_select(rng, d.size, rate) & ~np.isnat(d))
    y, month, day = _ymd(d[idx])
    ok = (day <= 12) & (day != month)
    idx, y, month, day = idx[ok], y[ok], month[ok], day[ok]
    # New day is the old month (<= 12), so the swapped date always exists.
    new = (y.astype("datetime64[M]") + (day - 1)).astype("datetime64[D]") + (month - 1)
    return _date_result(d, idx, new)


def dob_first_of_january(
    rng: np.random.Generator, dobs: np.ndarray, rate: RateOrMask
) -> tuple[np.ndarray, np.ndarray]:
    """Replace a date of birth with 1 January of its year (the default-DOB error)."""
    d = _as_dates(dobs)
    idx = np.flatnonzero(_select(rng, d.size, rate) & ~np.isnat(d))
    new = d[idx].astype("datetime64[Y]").astype("datetime64[D]")
    keep = new != d[idx]  # already 1 January: nothing to corrupt
    return _date_result(d, idx[keep], new[keep])


def dob_shift(
    rng: np.random.Generator,
    dobs: np.ndarray,
    rate: RateOrMask,
    *,
    p_year: float = 0.4,
    max_days: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """Move a date of birth by 1..max_days days either way, or (share p_year) by one year."""
    d = _as_dates(dobs)
    idx = np.flatnonzero(_select(rng, d.size, rate) & ~np.isnat(d))
    m = idx.size
    by_year = rng.random(m) < p_year
    sign = np.where(rng.random(m) < 0.5, -1, 1)
    days = rng.integers(1, max_days + 1, m) * sign
    src = d[idx]
    new = src + days.astype("timedelta64[D]")
    # One year either way keeps day and month; 29 February becomes 28 February.
    day = _ymd(src)[2]
    new_month = src.astype("datetime64[M]") + (12 * sign).astype("timedelta64[M]")
    month_len = (new_month + 1).astype("datetime64[D]") - new_month.astype("datetime64[D]")
    new_day = np.minimum(day, month_len.astype(np.int64))
    year_shifted = new_month.astype("datetime64[D]") + (new_day - 1)
    new = np.where(by_year, year_shifted, new)
    return _date_result(d, idx, new)


# --------------------------------------------------------------------------------------------
# Missing values and identifiers
# --------------------------------------------------------------------------------------------


def blank(
    rng: np.random.Generator, values: np.ndarray, rate: RateOrMask
) -> tuple[np.ndarray, np.ndarray]:
    """Blank values: None in object arrays, NaT in datetime64 arrays."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {arr.shape}")
    sel = _select(rng, arr.size, rate)
    out = arr.copy()
    if np.issubdtype(arr.dtype, np.datetime64):
        applied = sel & ~np.isnat(arr)
        out[applied] = np.datetime64("NaT")
    elif arr.dtype == object:
        idx = np.flatnonzero(sel)
        applied = np.zeros(arr.size, dtype=bool)
        applied[idx[np.fromiter((v is not None for v in arr[idx]), bool, idx.size)]] = True
        out[applied] = None
    else:
        raise TypeError(f"blank() needs an object or datetime64 array, got {arr.dtype}")
    return out, applied


def bad_check_char(
    rng: np.random.Generator, ids: np.ndarray, rate: RateOrMask
) -> tuple[np.ndarray, np.ndarray]:
    """Replace an id's final check letter with a different (wrong) letter of the check alphabet."""
    vals = _as_text(ids)
    idx = _text_candidates(rng, vals, rate)
    picks = rng.integers(0, len(CHECK_ALPHABET) - 1, idx.size).tolist()
    new = []
    for s, p in zip(vals[idx].tolist(), picks, strict=True):
        others = CHECK_ALPHABET.replace(s[-1], "")
        new.append(s[:-1] + others[p % len(others)])
    return _put_text(vals, idx, new)


def _digit_typo_one(s: str, u: Sequence[float]) -> str:
    digits = [i for i, c in enumerate(s) if c.isdigit()]
    if u[0] < 0.2:
        pairs = [i for i in digits if i + 1 < len(s) and s[i + 1].isdigit() and s[i] != s[i + 1]]
        if pairs:
            i = pairs[int(u[1] * len(pairs))]
            return s[:i] + s[i + 1] + s[i] + s[i + 2 :]
    i = digits[int(u[1] * len(digits))]
    others = "0123456789".replace(s[i], "")
    return s[:i] + others[int(u[2] * 9)] + s[i + 1 :]


def id_digit_typo(
    rng: np.random.Generator, ids: np.ndarray, rate: RateOrMask
) -> tuple[np.ndarray, np.ndarray]:
    """Mistype one digit of an id (80% wrong digit, 20% adjacent digits transposed)."""
    vals = _as_text(ids)
    idx = _text_candidates(rng, vals, rate, ok=lambda s: any(c.isdigit() for c in s))
    u = rng.random((idx.size, 3)).tolist()
    new = [_digit_typo_one(s, row) for s, row in zip(vals[idx].tolist(), u, strict=True)]
    return _put_text(vals, idx, new)


# --------------------------------------------------------------------------------------------
# Formatting and encoding noise
# --------------------------------------------------------------------------------------------


def _whitespace_one(s: str, u: Sequence[float]) -> str:
    pad = " " * (1 + int(u[1] < 0.3))
    if u[0] < 0.25 and " " in s.strip():
        i = s.index(" ", len(s) - len(s.lstrip()))
        return s[:i] + " " + s[i:]  # doubled internal space, e.g. "MARY  ANN"
    if u[0] < 0.5:
        return pad + s
    return s + pad  # trailing padding from fixed-width fields is the commonest


def whitespace(
    rng: np.random.Generator, values: np.ndarray, rate: RateOrMask
) -> tuple[np.ndarray, np.ndarray]:
    """Add leading or trailing spaces, or double an internal space."""
    vals = _as_text(values)
    idx = _text_candidates(rng, vals, rate, ok=lambda s: True)
    u = rng.random((idx.size, 2)).tolist()
    new = [_whitespace_one(s, row) for s, row in zip(vals[idx].tolist(), u, strict=True)]
    return _put_text(vals, idx, new)


REPLACEMENT_CHAR = "\ufffd"
# ASCII punctuation in names often started life as typographic characters in a word processor.
_TYPOGRAPHIC = {"'": "\u2019", "-": "\u2013"}


def _mojibake_one(s: str, u: Sequence[float]) -> str:
    specials = [i for i, c in enumerate(s) if ord(c) > 127 or c in _TYPOGRAPHIC]
    if not specials:
        # Nothing to mis-decode: a lossy conversion dropped a character it could not map.
        i = 1 + int(u[1] * len(s))
        return s[:i] + REPLACEMENT_CHAR + s[i:]
    i = specials[int(u[1] * len(specials))]
    c = _TYPOGRAPHIC.get(s[i], s[i])
    if u[0] < 0.5:
        # UTF-8 bytes read as Windows-1252: "é" -> "Ã©", "’" -> "â€™".
        bad = c.encode("utf-8").decode("cp1252", errors="replace")
    else:
        # Windows-1252 bytes read as UTF-8: the lone high byte is invalid -> U+FFFD.
        try:
            bad = c.encode("cp1252").decode("utf-8", errors="replace")
        except UnicodeEncodeError:
            bad = c.encode("utf-8").decode("cp1252", errors="replace")
    return s[:i] + bad + s[i + 1 :]


def mojibake(
    rng: np.random.Generator, values: np.ndarray, rate: RateOrMask
) -> tuple[np.ndarray, np.ndarray]:
    """Stray encoding error on one character (O'Brien -> Oâ€™Brien, Zoë -> ZoÃ« or Zo\ufffd).

    An apostrophe, hyphen or non-ASCII letter is replaced by what its UTF-8 bytes look like
    decoded as Windows-1252, or by U+FFFD (its Windows-1252 byte decoded as UTF-8); plain ASCII
    names get a U+FFFD inserted. Decoding uses cp1252 with ``errors="replace"``, never latin-1, so
    no C1 control characters appear: every result is printable Unicode that round-trips through
    UTF-8 (CSV, Parquet, PostgreSQL text).
    """
    vals = _as_text(values)
    idx = _text_candidates(rng, vals, rate)
    u = rng.random((idx.size, 2)).tolist()
    new = [_mojibake_one(s, row) for s, row in zip(vals[idx].tolist(), u, strict=True)]
    return _put_text(vals, idx, new)


# --------------------------------------------------------------------------------------------
# Mess levels
# --------------------------------------------------------------------------------------------

MESS_LEVELS = ("low", "default", "high")
MESS_KINDS = (
    # names
    "name_typo",
    "nickname",
    "name_swap",
    "name_variant",
    "name_variant_table",
    "surname_partial",
    "mac_form",
    "forename_middle_swap",
    "middle_missing",
    "middle_wrong",
    "initials_only",
    "sex_wrong",
    # per person: surname change from a date, aliases, deception, false DOB to one system
    "surname_change_f",
    "surname_change_m",
    "alias_count",
    "alias_untied",
    "borrowed_identity_person",
    "false_dob_person",
    # dates of birth
    "dob_day_month_swap",
    "dob_missing",
    "dob_first_jan",
    "dob_shift",
    # identifiers
    "pnc_missing",
    "pnc_bad_check",
    "pnc_digit_typo",
    "pnc_wrong_person",
    "cro_missing",
    "cro_digit_typo",
    "cro_wrong_person",
    "prison_number_reused",
    # addresses
    "postcode_typo",
    "no_fixed_abode",
    # rows and formatting
    "duplicate_row",
    "whitespace",
    "encoding_error",
    "invalid_date",
    "late_correction",
)
# Kinds drawn per record at a flat rate on every record that has the field (so a system's label
# counts can be checked against the rate directly); the others apply only to eligible values or
# are drawn per person.
FLAT_RECORD_KINDS = (
    "name_typo", "nickname", "name_swap", "dob_day_month_swap", "dob_missing", "dob_first_jan",
    "dob_shift", "pnc_missing", "pnc_bad_check", "cro_missing", "duplicate_row", "whitespace",
    "encoding_error", "invalid_date", "late_correction",
)  # fmt: skip
# alias_count is a mean number of aliases per prison record, not a probability.
_NOT_PROBABILITIES = {"alias_count": 10.0}


def load_mess_levels(path: str | Path | None = None) -> dict[str, dict[str, float]]:
    """Per-record mess rates by level (low/default/high) from reference/mess_levels.yaml."""
    if path is None:
        where = "reference/mess_levels.yaml"
        text = resources.files("justice.sim").joinpath("reference", "mess_levels.yaml")
        text = text.read_text("utf-8")
    else:
        where = str(path)
        text = Path(path).read_text("utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict) or set(data) != set(MESS_LEVELS):
        got = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ConfigError(f"{where}: top level must be exactly {list(MESS_LEVELS)}, got {got}")
    levels: dict[str, dict[str, float]] = {}
    for level in MESS_LEVELS:
        rates = data[level]
        if not isinstance(rates, dict):
            raise ConfigError(f"{where}: level {level!r} must be a mapping of kind: rate")
        missing, extra = set(MESS_KINDS) - set(rates), set(rates) - set(MESS_KINDS)
        if missing or extra:
            raise ConfigError(
                f"{where}: level {level!r} is missing {sorted(missing)} / has unknown "
                f"{sorted(extra)}; the kinds are {list(MESS_KINDS)}"
            )
        levels[level] = {}
        for kind in MESS_KINDS:
            value = rates[kind]
            top = _NOT_PROBABILITIES.get(kind, 1.0)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not (0.0 <= value <= top)
            ):
                raise ConfigError(
                    f"{where}: {level}.{kind} = {value!r}; expected a number in [0, {top:g}]"
                )
            levels[level][kind] = float(value)
    return levels
