"""String similarity computed in Python exactly as DuckDB computes it in SQL, for the places that
compare names outside a query: Spark's user-defined functions (justice.engine.spark) and the
clustering's forename test (justice.link.cluster.alike_forenames)."""

from __future__ import annotations


def jaro_winkler(a: str | None, b: str | None) -> float | None:
    """Jaro-Winkler similarity as DuckDB's `jaro_winkler_similarity` computes it, to the last bit
    (null when either is null).

    The Jaro part is jellyfish's (the same arithmetic as DuckDB's); the Winkler step, j + p·0.1·(1
    − j) for a common prefix of p ≤ 4 characters when j > 0.7, DuckDB computes as one fused
    multiply-add (rounded once), so it is computed here exactly, in integers, and rounded once:
    jellyfish's own rounds twice and is one unit in the last place off DuckDB on about 1 pair in
    200 (`mcdonald`/`macdonald`: 0.9666666666666666 against DuckDB's 0.9666666666666667), which
    changes a level where a pair's score is exactly a level's threshold."""
    from jellyfish import jaro_similarity

    if a is None or b is None:
        return None
    if a == b:
        return 1.0 if a else 0.0
    j = jaro_similarity(a, b)
    if j <= 0.7:
        return j
    prefix = 0
    for x, y in zip(a[:4], b[:4], strict=False):
        if x != y:
            break
        prefix += 1
    if prefix == 0:
        return j
    # j + t·c with t = prefix·0.1 and c = 1 − j (exact, as j > 0.5), as fractions with
    # power-of-two denominators; Python's integer division rounds the quotient correctly.
    (nj, dj), (nt, dt), (nc, dc) = (j.as_integer_ratio(), (prefix * 0.1).as_integer_ratio(),
                                    (1.0 - j).as_integer_ratio())
    return (nj * dt * dc + nt * nc * dj) / (dj * dt * dc)
