"""The people of the simulated world: names, sex, date of birth, ethnicity, address, propensity.

Names come from Faker's locale data (en_GB, en_IE, en_IN, yo_NG), sampled with numpy rather than
one Faker call per person, so a million people take seconds.
"""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass

import numpy as np
from faker import Faker

Columns = dict[str, np.ndarray]


@dataclass(frozen=True)
class NamePool:
    """Names and their sampling probabilities."""

    names: np.ndarray
    p: np.ndarray

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draw n names with replacement."""
        return self.names[rng.choice(len(self.names), size=n, p=self.p)]


# The Faker name tuples whose order is (roughly) frequency order, checked by eye: en_GB's
# forenames run David, Paul, Christopher, Thomas, John, Mark. The others' order says nothing of
# frequency: en_IE's surnames and forenames, yo_NG's and en_IN's names are in alphabetical order
# (yo_NG's 98 surnames twice over), en_PK's surnames in none (Lajlaj first, no Khan).
FREQUENCY_ORDERED = frozenset({("en_GB", "first_names_male"), ("en_GB", "first_names_female")})


def frequency_order(locale: str, attr: str, names: list[str]) -> list[str]:
    """The order a Faker tuple's Zipf ranks follow, each name once: its own for a list in
    `FREQUENCY_ORDERED`, else a fixed order from a hash of each name (the same on every machine,
    and unrelated to spelling, so no initial and no family of like-spelt names comes first)."""
    names = list(dict.fromkeys(names))  # a name listed twice is not twice as common
    if (locale, attr) in FREQUENCY_ORDERED:
        return names
    return sorted(names, key=lambda k: hashlib.blake2b(k.encode(), digest_size=8).digest())


def _pool(*sources: tuple[str, str, float]) -> NamePool:
    """Merge Faker name lists (locale, attribute, share) into one weighted pool.

    Faker's OrderedDicts carry weights, which are used. Its tuples carry none, so a Zipf-like
    weight by rank stands in for the real frequencies (real names are that skewed: a few common,
    most rare), the ranks in `frequency_order`. Ranked by their own order, the alphabetical lists
    made Achison the eighth commonest surname of the world, and Adebisi, Adegbite and Adegoke,
    names a typo apart, the three commonest of Black people's.
    """
    weights: dict[str, float] = {}
    for locale, attr, share in sources:
        data = getattr(importlib.import_module(f"faker.providers.person.{locale}").Provider, attr)
        if isinstance(data, dict):
            items = [(k, float(v)) for k, v in data.items()]
        else:
            items = [(k, 1.0 / (rank + 1) ** 0.7)
                     for rank, k in enumerate(frequency_order(locale, attr, list(data)))]
        total = sum(w for _, w in items)
        for name, w in items:
            if name.isascii() and name.replace("-", "").replace("'", "").isalpha():
                weights[name] = weights.get(name, 0.0) + share * w / total
    names = np.array(sorted(weights), dtype=object)
    p = np.array([weights[n] for n in names])
    return NamePool(names, p / p.sum())


def name_pools() -> dict[tuple[str, str], NamePool]:
    """Forename pools by (ethnicity, sex) and surname pools by (ethnicity, '')."""
    gb_m, gb_f = ("en_GB", "first_names_male"), ("en_GB", "first_names_female")
    pools = {
        ("White", "M"): _pool((*gb_m, 0.8), ("en_IE", "first_names_male", 0.2)),
        ("White", "F"): _pool((*gb_f, 0.8), ("en_IE", "first_names_female", 0.2)),
        ("Black", "M"): _pool((*gb_m, 0.55), ("yo_NG", "first_names_male", 0.45)),
        ("Black", "F"): _pool((*gb_f, 0.55), ("yo_NG", "first_names_female", 0.45)),
        ("Asian", "M"): _pool(("en_IN", "first_names_male", 0.85), (*gb_m, 0.15)),
        ("Asian", "F"): _pool(("en_IN", "first_names_female", 0.85), (*gb_f, 0.15)),
        ("White", ""): _pool(("en_GB", "last_names", 0.75), ("en_IE", "last_names", 0.25)),
        ("Black", ""): _pool(("en_GB", "last_names", 0.55), ("yo_NG", "last_names", 0.45)),
        ("Asian", ""): _pool(("en_IN", "last_names", 0.6), ("en_PK", "last_names", 0.4)),
    }
    for sex in ("M", "F", ""):
        pools[("Mixed", sex)] = pools[("White", sex)]
        pools[("Other", sex)] = pools[("White", sex)] if sex == "" else _pool(
            ("en_IE", f"first_names_{'male' if sex == 'M' else 'female'}", 0.5),
            ("en_IN", f"first_names_{'male' if sex == 'M' else 'female'}", 0.5))
    return pools


def postcode_pool(seed: int, size: int) -> np.ndarray:
    """A reproducible pool of well-formed UK postcodes drawn from Faker's en_GB provider."""
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    return np.array(sorted({fake.postcode() for _ in range(size)}), dtype=object)


def make_people(rng: np.random.Generator, n: int, entry_day: np.ndarray, w: dict,
                pools: dict[tuple[str, str], NamePool], postcodes: np.ndarray) -> Columns:
    """Draw n candidate people entering the justice system on `entry_day` (day numbers)."""
    pop = w["population"]
    sex = np.where(rng.random(n) < pop["male_share"], "M", "F").astype(object)
    eth_names = list(pop["ethnicity"])
    eth_p = np.array([pop["ethnicity"][k] for k in eth_names])
    ethnicity = np.array(eth_names, dtype=object)[rng.choice(len(eth_names), n, p=eth_p / eth_p.sum())]

    juvenile = rng.random(n) < pop["juvenile_entry_share"]
    age = np.where(
        juvenile,
        rng.uniform(10.0, 18.0, n),
        18.0 + rng.gamma(pop["adult_entry_age"]["gamma_shape"], pop["adult_entry_age"]["gamma_scale"], n),
    )
    age = np.minimum(age, 85.0)
    dob = entry_day - np.round(age * 365.25).astype(np.int64)

    # Propensity to offend: higher for the young and for men; a lognormal spread.
    log_risk = rng.normal(0.0, pop["risk_sigma"], n) - 0.5
    log_risk += np.where(sex == "M", 0.2, -0.45) - 0.02 * np.maximum(age - 25.0, 0.0)
    risk = np.exp(log_risk)
    prior = rng.poisson(pop["prior_offences_per_risk"] * risk * np.maximum(age - 16.0, 0.0) / 10.0)

    forename, middle, surname = draw_names(rng, sex, ethnicity, eth_names, pools)

    regions = np.array(pop["regions"], dtype=object)
    # London and the South East hold more people than Wales or the North East.
    region_p = np.array([0.16, 0.16, 0.10, 0.19, 0.09, 0.20, 0.10])[: len(regions)]
    region = regions[rng.choice(len(regions), n, p=region_p / region_p.sum())]
    return {
        "sex": sex, "ethnicity": ethnicity, "dob": dob, "risk": risk, "prior": prior,
        "forename": forename, "middle_name": middle, "surname": surname,
        "postcode": postcodes[rng.integers(0, len(postcodes), n)], "region": region,
    }


def draw_names(rng: np.random.Generator, sex: np.ndarray, ethnicity: np.ndarray, eth_names: list[str],
               pools: dict[tuple[str, str], NamePool]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forename, middle name (none for about a third) and surname for each person, from the
    pools of their ethnicity and sex ('M' or 'F')."""
    n = len(sex)
    forename = np.empty(n, dtype=object)
    middle = np.empty(n, dtype=object)
    surname = np.empty(n, dtype=object)
    for eth in eth_names:
        m_eth = ethnicity == eth
        surname[m_eth] = pools[(eth, "")].sample(rng, int(m_eth.sum()))
        for s in ("M", "F"):
            m = m_eth & (sex == s)
            k = int(m.sum())
            forename[m] = pools[(eth, s)].sample(rng, k)
            mid = pools[(eth, s)].sample(rng, k)
            mid[rng.random(k) < 0.35] = None  # many people have no middle name
            mid[mid == forename[m]] = None
            middle[m] = mid
    return forename, middle, surname


def add_twins_and_namesakes(rng: np.random.Generator, people: Columns, entry_day: np.ndarray,
                            twin_share: float, namesake_share: float,
                            pools: dict[tuple[str, str], NamePool]) -> np.ndarray:
    """Make some candidates twins (same surname, DOB, address) or namesakes (same name and DOB).

    These are the hard negatives for linkage: different people whom a careless matcher merges.
    Returns `entry_day`, adjusted so twins come into contact with the system close in time.
    Adds `twin_of` and `namesake_of` columns (candidate index or -1).
    """
    n = len(people["sex"])
    twin_of = np.full(n, -1, dtype=np.int64)
    namesake_of = np.full(n, -1, dtype=np.int64)
    # A pair is (i, i+1) with i even, so pairs never overlap. A share q of the n // 2 slots
    # holding a pair puts q * n candidates in pairs; only pairs whose two people are both active
    # in the window count in the world, so q is raised by the share that survive (measured:
    # about 0.77 at 100,000 people with the twenty-year burn-in; 0.87 with five years) to make
    # twin_share of the world's people twins.
    q = min(1.0, twin_share / TWIN_PAIRS_SURVIVING)
    firsts = np.flatnonzero(rng.random(n // 2) < q) * 2
    seconds = firsts + 1
    twin_of[seconds] = firsts
    for col in ("surname", "dob", "postcode", "region", "ethnicity"):
        people[col][seconds] = people[col][firsts]
    same_sex = rng.random(len(firsts)) < 0.66
    people["sex"][seconds] = np.where(same_sex, people["sex"][firsts], people["sex"][seconds])
    entry_day = entry_day.copy()
    entry_day[seconds] = np.maximum(entry_day[firsts] + rng.normal(0, 500, len(firsts)).astype(np.int64),
                                    people["dob"][seconds] + 10 * 365)
    for s in ("M", "F"):  # twins get their own forename
        m = people["sex"][seconds] == s
        idx = seconds[m]
        for eth in np.unique(people["ethnicity"][idx]):
            sel = idx[people["ethnicity"][idx] == eth]
            draws = pools[(eth, s)].sample(rng, len(sel))
            clash = draws == people["forename"][twin_of[sel]]
            draws[clash] = pools[(eth, s)].sample(rng, int(clash.sum()))
            people["forename"][sel] = draws

    free = np.flatnonzero(twin_of < 0)
    free = free[(free % 2 == 1) | (free + 1 >= n) | (twin_of[np.minimum(free + 1, n - 1)] < 0)]
    k = int(len(free) * namesake_share)
    chosen = rng.choice(free, size=2 * k, replace=False)
    a, b = chosen[:k], chosen[k:]
    for col in ("forename", "surname", "dob", "sex"):
        people[col][b] = people[col][a]
    namesake_of[b] = a
    # A namesake's first contact cannot precede their tenth birthday.
    entry_day[b] = np.maximum(entry_day[b], people["dob"][b] + 10 * 365)
    people["twin_of"] = twin_of
    people["namesake_of"] = namesake_of
    _double_barrel(rng, people, pools)
    return entry_day


# Share of people with a double-barrelled or hyphenated surname. ASSUMPTION: no published
# figure for people in the justice system; about 1 in 100 British surnames on the electoral
# roll are compound, and they are commoner among White British families.
DOUBLE_BARRELLED_SHARE = {"White": 0.012, "Mixed": 0.02, "Black": 0.006, "Asian": 0.004,
                          "Other": 0.008}
# Twin pairs drawn per candidate pair slot are divided by this: the measured share of drawn
# pairs with both twins active in the window (see add_twins_and_namesakes).
TWIN_PAIRS_SURVIVING = 0.77


def _double_barrel(rng: np.random.Generator, people: Columns,
                   pools: dict[tuple[str, str], NamePool]) -> None:
    """Give some people a double-barrelled surname (Smith-Jones, or Smith Jones unhyphenated),
    shared with their twin and namesake, so that records can hold it in part."""
    n = len(people["sex"])
    u = rng.random(n)
    share = np.array([DOUBLE_BARRELLED_SHARE.get(e, 0.008) for e in people["ethnicity"]])
    chosen = np.flatnonzero((u < share) & (people["twin_of"] < 0) & (people["namesake_of"] < 0))
    hyphen = rng.random(len(chosen)) < 0.7
    for eth in np.unique(people["ethnicity"][chosen]):
        sel = people["ethnicity"][chosen] == eth
        second = pools[(eth, "")].sample(rng, int(sel.sum()))
        first = people["surname"][chosen[sel]]
        joined = [f"{a}{'-' if h else ' '}{b}" if a != b else a
                  for a, b, h in zip(first.tolist(), second.tolist(), hyphen[sel].tolist(),
                                     strict=True)]
        people["surname"][chosen[sel]] = np.array(joined, dtype=object)
    # Twins and namesakes keep the surname of the person they copy.
    for col in ("twin_of", "namesake_of"):
        copies = np.flatnonzero(people[col] >= 0)
        people["surname"][copies] = people["surname"][people[col][copies]]
