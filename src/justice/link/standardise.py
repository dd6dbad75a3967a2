"""Standardise every system's person-bearing records into one table, `linkage.records`.

The systems' own queries (``sources.yaml``) give raw identity columns; this module turns them
into comparable ones:

* names: mis-decoded text repaired (``Oâ€™Brien`` -> ``O'Brien``), accents stripped, lower
  case, apostrophes dropped (``o'brien`` -> ``obrien``), hyphens and other punctuation made
  spaces; the first forename split from the middle names; a double-barrelled surname kept whole
  (``smithjones``) and, when hyphenated, as its parts (``[smith, jones]``); each forename mapped through the
  nickname lookup to the formal names it may stand for (``bill`` -> ``[bill, william]``) and to
  every name it may be known by (``forename_aliases``: those formal names and all their nicknames);
  a surname with its Mc/Mac prefix written one way (``surname_key``) and both names' Soundex codes
  (``forename_sound``, ``surname_sound``) for spelling variants, and the two in either order
  (``name_sound_key``) for blocking a swapped and misspelt name;
* dates of birth as dates, with the year for blocking; sex as M / F or null;
* postcodes upper case with one space before the inward code, plus district and sector; a value
  not shaped like a postcode ("NFA", "NO FIXED ABODE") or the ZZ99 no-fixed-abode pseudo-postcode
  is null;
* PNC IDs and CRO numbers normalised (case, spaces, unpadded serials) and checked against their
  check character. An id with a wrong check character is kept and flagged (``pnc_valid`` false):
  never dropped, because a mistyped id still carries evidence. ``pnc_core`` is the id without
  its check character, so an id whose only error is the check letter still blocks and compares;
  a PNC ID whose year is implausible (a typo in the century, which the check letter misses) is
  invalid too;
* prison numbers and CRNs upper case, flagged when malformed;
* the dates of the record's events that another system records too (``event_dates``: a court's
  hearings and sentence, a prison's receptions, sentences and releases, a probation order's start
  and end), from a source's optional ``events`` query, as a sorted list; null when it has none.
  A man sentenced to custody at the Crown Court is received into prison that day, and his
  licence starts the day he is released: two systems' records sharing such a date are likelier
  one person's than two (docs/linkage.md, section 4).

Standardisation of names runs in Python over the distinct values only (a few hundred thousand at
most), then joins back in DuckDB; everything else is SQL.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache
from importlib import resources

import duckdb
import pyarrow as pa
import yaml

from justice.errors import ConfigError, TransformError
from justice.identifiers import CHECK_ALPHABET

SOURCE_COLUMNS = ("record_id", "forenames", "surname", "dob", "sex", "postcode", "pnc", "cro",
                  "prison_number", "crn", "same_as")

# The columns the model reads; their hash is a record's fingerprint (a change re-links it).
MODEL_COLUMNS = ("forename", "middle_names", "surname", "surname_parts", "forename_names", "forename_aliases", "dob",
                 "sex", "postcode", "pnc", "pnc_core", "pnc_valid", "cro", "cro_core", "cro_valid",
                 "prison_number", "crn", "same_as", "surname_key", "forename_sound", "surname_sound",
                 "event_dates")

# The check letter covers only the last two digits of a PNC ID's year, so a typo in the century
# ("2920/...") keeps it valid; a year outside the PNC's life (first records from the 1960s) or in
# the future marks the id as mistyped all the same.
PNC_FIRST_YEAR = 1960

# A UK postcode's shape (outward code, then digit and two letters). Anything else in a postcode
# field ("NFA", "NO FIXED ABODE", a typo that broke the shape) is not an address.
_POSTCODE_SHAPE = "^[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}$"
# Pseudo-postcodes that stand for "no fixed abode" or "not known" (the NHS uses ZZ99 3VZ for no
# fixed abode and ZZ99 3WZ / 3CZ for not known): shared by thousands of strangers, so no evidence.
_PSEUDO_POSTCODE = "^ZZ99"

_MOJIBAKE = re.compile("[\u00c2-\u00c3\u00e2][\u0080-\u00ff\u0152\u0153\u0160\u0161\u0178"
                       "\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014\u2018-\u201e\u2020-\u2022"
                       "\u2026\u2030\u2039\u203a\u20ac\u2122]+")


_APOSTROPHES = re.compile("['\u2019`]")
_NOT_LETTERS = re.compile(r"[^a-z]+")


def load_sources(extra: dict | None = None) -> dict[str, dict]:
    """The built-in ``sources.yaml`` entries (plus ``extra``), checked for shape."""
    text = resources.files("justice.link").joinpath("sources.yaml").read_text(encoding="utf-8")
    sources = yaml.safe_load(text) or {}
    sources.update(extra or {})
    for system, entry in sources.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("records"), str):
            raise ConfigError(f"link source {system!r}: needs a `records` query (see link/sources.yaml)")
    return sources


def _repair(text: str) -> str:
    """Undo the commonest encoding error: UTF-8 bytes read as Windows-1252 (``Ã©`` -> ``é``)."""
    def fix(m: re.Match) -> str:
        try:
            return m.group(0).encode("cp1252").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return m.group(0)
    return _MOJIBAKE.sub(fix, text).replace("\ufffd", "")


def clean_name(value: object) -> str | None:
    """Lower-case ASCII words of a name: accents stripped, apostrophes dropped, other punctuation
    a space (``"  O'Brien-SMITH "`` -> ``"obrien smith"``). None for a blank or non-text value."""
    if not isinstance(value, str):
        return None
    if value.isascii():
        text = value.lower()
    else:
        text = unicodedata.normalize("NFKD", _repair(value))
        text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = _NOT_LETTERS.sub(" ", _APOSTROPHES.sub("", text)).strip()
    return text or None


@lru_cache(maxsize=1)
def nickname_groups() -> dict[str, tuple[str, ...]]:
    """Lower-case forename -> the formal names it may stand for, itself included.

    From the ``nicknames`` package's lookup (Old Dominion University's curated list of English
    given-name diminutives): ``bill`` -> (``bill``, ``william``); a formal name maps to itself.
    """
    from nicknames import NickNamer

    groups: dict[str, set[str]] = {}
    for formal, nicks in NickNamer.default_lookup().items():
        if not formal.isalpha():
            continue
        groups.setdefault(formal, {formal})
        for nick in nicks:
            if len(nick) > 1 and nick.isalpha():
                groups.setdefault(nick, {nick}).add(formal)
    return {k: tuple(sorted(v)) for k, v in groups.items()}


@lru_cache(maxsize=1)
def alias_groups() -> dict[str, tuple[str, ...]]:
    """Lower-case forename -> every name it may be known by: the formal names it stands for and
    all their nicknames (``tony`` -> anthony, ant, tony, ...). Used to see that a mistyped
    nickname (``tomy``) is close to one of another forename's aliases."""
    from nicknames import NickNamer

    nicks_of = {formal: {n for n in nicks if len(n) > 1 and n.isalpha()}
                for formal, nicks in NickNamer.default_lookup().items() if formal.isalpha()}
    out: dict[str, tuple[str, ...]] = {}
    for name, formals in nickname_groups().items():
        names = set(formals) | {name}
        for formal in formals:
            names |= nicks_of.get(formal, set())
        out[name] = tuple(sorted(names))
    return out


_SOUNDEX_CODES = {**dict.fromkeys("bfpv", "1"), **dict.fromkeys("cgjkqsxz", "2"),
                  **dict.fromkeys("dt", "3"), "l": "4", **dict.fromkeys("mn", "5"), "r": "6"}


def sound_key(name: str | None) -> str | None:
    """American Soundex of a cleaned name (``cooper``, ``cuper`` -> ``c160``): spelling variants
    that sound alike share it. Letters only; None for an empty name."""
    if not name:
        return None
    letters = [c for c in name if c.isalpha()]
    if not letters:
        return None
    out, last = [letters[0]], _SOUNDEX_CODES.get(letters[0], "")
    for c in letters[1:]:
        code = _SOUNDEX_CODES.get(c, "")
        if code and code != last:
            out.append(code)
        if c not in "hw":  # h and w do not separate two letters with the same code
            last = code
    return ("".join(out) + "000")[:4]


def surname_key(surname: str | None) -> str | None:
    """A surname with its Mc/Mac prefix written one way (``macdonald`` -> ``mcdonald``), so the
    two forms of one name compare equal; apostrophes and spaces are already gone (``obrien``)."""
    if not surname:
        return None
    return "mc" + surname[3:] if surname.startswith("mac") and len(surname) > 4 else surname


class _PartWords(dict):
    """A part of a name -> its cleaned words (`clean_name`), each part cleaned once."""

    def __missing__(self, part: str) -> list[str]:
        words = self[part] = (clean_name(part) or "").split()
        return words


def _name_table(forenames: list, surnames: list) -> tuple[pa.Table, pa.Table]:
    groups = nickname_groups()
    aliases = alias_groups()
    # Many raw forenames ("John A", "JOHN", "john  b") share a first name: its lookups and sound
    # key are worked out once per distinct first name.
    by_first: dict[str, tuple] = {}
    f_rows: dict[str, tuple] = {}
    # Each part of a name is cleaned once (a few tens of thousands of parts make a few hundred
    # thousand raw forenames): cleaning works within a part, so a name's words are its parts'.
    words_of = _PartWords()
    for raw in forenames:
        # A hyphenated forename is one name (Jean-Paul -> jeanpaul); spaces separate names.
        # (Split on the ASCII space only: a mis-decoded character can hold another kind.)
        words: list[str] = []
        for part in raw.replace("-", "").split(" "):
            if part:
                words += words_of[part]
        if not words:
            f_rows[raw] = (None, None, None, None, None)
            continue
        first = words[0]
        known = by_first.get(first)
        if known is None:
            known = by_first[first] = (list(groups.get(first, (first,))), list(aliases.get(first, (first,))),
                                       sound_key(first))
        f_rows[raw] = (first, " ".join(words[1:]) or None, *known)
    s_rows: dict[str, tuple] = {}
    for raw in surnames:
        words = (clean_name(raw) or "").split()
        # Parts where the name is written as parts (a hyphen or a space: Smith-Jones, Smith Jones),
        # so a record holding one part compares with the whole. An apostrophe or Mc/Mac prefix
        # written apart (O Brien, Mc Donald) is one name, not two parts.
        parts = [p for p in re.split(r"[-\s]+", raw.strip()) if p]
        parts = [p for p in ("".join(words_of[x]) for x in parts) if p]
        if any(p in ("o", "mc", "mac") for p in parts[:-1]):
            parts = []
        whole = "".join(words) or None
        s_rows[raw] = (whole, parts if len(parts) > 1 else None, surname_key(whole), sound_key(whole))
    ftab = pa.table({
        "raw": pa.array(list(f_rows), pa.string()),
        "forename": pa.array([v[0] for v in f_rows.values()], pa.string()),
        "middle_names": pa.array([v[1] for v in f_rows.values()], pa.string()),
        "forename_names": pa.array([v[2] for v in f_rows.values()], pa.list_(pa.string())),
        "forename_aliases": pa.array([v[3] for v in f_rows.values()], pa.list_(pa.string())),
        "forename_sound": pa.array([v[4] for v in f_rows.values()], pa.string()),
    })
    stab = pa.table({
        "raw": pa.array(list(s_rows), pa.string()),
        "surname": pa.array([v[0] for v in s_rows.values()], pa.string()),
        "surname_parts": pa.array([v[1] for v in s_rows.values()], pa.list_(pa.string())),
        "surname_key": pa.array([v[2] for v in s_rows.values()], pa.string()),
        "surname_sound": pa.array([v[3] for v in s_rows.values()], pa.string()),
    })
    return ftab, stab


def _check_letter_sql(number: str) -> str:
    """SQL: the check letter of a BIGINT expression (CHECK_ALPHABET[n mod 23])."""
    return f"substr('{CHECK_ALPHABET}', (({number}) % 23)::int + 1, 1)"


def extra_columns(sources: dict[str, dict]) -> list[str]:
    """Extra columns (beyond SOURCE_COLUMNS) any source declares, in first-seen order."""
    out: list[str] = []
    for system, entry in sources.items():
        for col in entry.get("extra_columns", []) or []:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", str(col)) or col in SOURCE_COLUMNS:
                raise ConfigError(f"link source {system!r}: extra column {col!r} must be a new snake_case name")
            if col not in out:
                out.append(col)
    return out


def raw_records_sql(sources: dict[str, dict]) -> str:
    """One query over every system's records, with a `system` column. A source without one of
    the other sources' extra columns gets it as null; one without an `events` query gets null
    `event_dates`, and one with it the distinct dates its query gives each record, in order."""
    extras = extra_columns(sources)
    parts = []
    for system, entry in sources.items():
        cols = [f"{c}::varchar as {c}" if c != "dob" else "dob::date as dob" for c in SOURCE_COLUMNS]
        own = entry.get("extra_columns", []) or []
        cols += [f"{c}::varchar as {c}" if c in own else f"null::varchar as {c}" for c in extras]
        sql = f"select '{system}' as system, {', '.join(cols)}"
        if not isinstance(entry.get("events") or "", str):
            raise ConfigError(f"link source {system!r}: `events` must be a query returning record_id and "
                              "event_date (see link/sources.yaml)")
        if entry.get("events"):
            parts.append(f"""{sql}, event_dates from (
                select s_{system}.*, e_{system}.event_dates from (\n{entry['records']}\n) as s_{system}
                left join (select record_id::varchar as record_id,
                                  list(distinct event_date::date order by event_date::date) as event_dates
                           from (\n{entry['events']}\n) where record_id is not null and event_date is not null
                           group by all) as e_{system}
                on e_{system}.record_id = s_{system}.record_id::varchar) as r_{system}""")
        else:
            parts.append(f"{sql}, null::date[] as event_dates from (\n{entry['records']}\n) as s_{system}")
    return "\nunion all\n".join(parts)


def standardise(con: duckdb.DuckDBPyConnection, sources: dict[str, dict] | None = None,
                table: str = "linkage.records") -> int:
    """(Re)build `table` from the systems' records in `con`'s warehouse; returns its row count.

    The table is replaced by a single statement, so a failure leaves the previous one whole.
    """
    sources = sources if sources is not None else load_sources()
    if table.count(".") == 1:
        con.execute(f"create schema if not exists {table.split('.')[0]}")
    try:
        con.execute(f"create or replace temp table _link_raw as {raw_records_sql(sources)}")
    except duckdb.Error as exc:
        raise TransformError(f"linkage: reading person records failed ({exc}). Has `justice ingest` "
                             "run for every system in link/sources.yaml?") from exc
    dupes = con.execute("select system, record_id, count(*) from _link_raw group by all having count(*) > 1 "
                        "limit 3").fetchall()
    if dupes:
        con.execute("drop table if exists _link_raw")
        raise TransformError(f"linkage: record ids are not unique within a system, e.g. {dupes}; "
                             "a source's `records` query must return one row per record")
    fore = [r[0] for r in con.execute("select distinct forenames from _link_raw where forenames is not null").fetchall()]
    sur = [r[0] for r in con.execute("select distinct surname from _link_raw where surname is not null").fetchall()]
    try:
        return standardise_raw(con, "_link_raw", table, fore, sur, extra_columns(sources), events=True)
    finally:
        con.execute("drop table if exists _link_raw")


def standardise_raw(con: duckdb.DuckDBPyConnection, raw: str, table: str, forenames: list, surnames: list,
                    extras: list[str] = (), events: bool = False) -> int:
    """Standardise the rows of `raw` (a table or view with `system` and SOURCE_COLUMNS, and
    `event_dates` when `events`) into `table`, given the distinct raw forenames and surnames in
    it; returns the row count."""
    ftab, stab = _name_table(forenames, surnames)
    con.register("_link_fore", ftab)
    con.register("_link_sur", stab)
    pnc = "regexp_extract(upper(trim(r.pnc)), '^([0-9]{4})/?([0-9]{1,7})([A-Z])$', ['y', 's', 'c'])"
    cro = "regexp_extract(upper(trim(r.cro)), '^([0-9]{1,6})/?([0-9]{2})([A-Z])$', ['s', 'y', 'c'])"
    pc = (f"case when regexp_full_match(regexp_replace(upper(coalesce(r.postcode, '')), '[^A-Z0-9]', '', 'g'), "
          f"'{_POSTCODE_SHAPE[1:-1]}') and not regexp_matches(upper(trim(r.postcode)), '{_PSEUDO_POSTCODE}') "
          "then regexp_replace(upper(r.postcode), '[^A-Z0-9]', '', 'g') end")
    fingerprint = ("md5(concat_ws('|', " + ", ".join(f"coalesce({c}::varchar, '')" for c in (*MODEL_COLUMNS, *extras))
                   + "))")
    try:
        # One statement, so the standardised rows are not materialised and read back before the
        # fingerprint is added. The record number (the rank of the unique id) is numbered on the
        # narrow raw rows, and the table is ordered by it: one sort of wide rows, on an integer.
        con.execute(f"""
            create or replace table {table} as
            with ids as (
              select r.*, {pnc} as p, {cro} as c, {pc} as pc,
                row_number() over (order by system || ':' || record_id) as _record_no
              from {raw} r
            ), parsed as (
              select ids.*,
                case when p.y <> '' then p.y || '/' || lpad(p.s, 7, '0') end as pnc_core,
                case when c.y <> '' then lpad(c.s, 6, '0') || '/' || c.y end as cro_core
              from ids
            ), std as (
            select
              system || ':' || record_id as unique_id, system, record_id,
              {"".join(f"nullif(trim(regexp_replace(lower(strip_accents({c})), '[^a-z0-9]+', ' ', 'g')), '') as {c}, " for c in extras)}
              f.forename, f.middle_names, f.forename_names, f.forename_aliases, f.forename_sound,
              s.surname, s.surname_parts, s.surname_key, s.surname_sound,
              case when f.forename is not null and s.surname is not null
                   then least(f.forename, s.surname) || ' ' || greatest(f.forename, s.surname) end as name_key,
              case when f.forename_sound is not null and s.surname_sound is not null
                   then least(f.forename_sound, s.surname_sound) || ' ' || greatest(f.forename_sound, s.surname_sound)
                   end as name_sound_key,
              dob, year(dob) as birth_year,
              case upper(trim(sex)) when 'M' then 'M' when 'F' then 'F' end as sex,
              case when length(pc) >= 5 then left(pc, length(pc) - 3) || ' ' || right(pc, 3) end as postcode,
              case when length(pc) >= 5 then left(pc, length(pc) - 3) end as postcode_district,
              case when length(pc) >= 5 then left(pc, length(pc) - 3) || ' ' || substr(right(pc, 3), 1, 1) end
                as postcode_sector,
              case when pnc_core is not null then pnc_core || p.c
                   else nullif(upper(trim(r_pnc)), '') end as pnc,
              pnc_core,
              case when pnc_core is null then (case when nullif(trim(r_pnc), '') is null then null else false end)
                   else p.c = {_check_letter_sql("(try_cast(p.y as bigint) % 100) * 10000000 + try_cast(p.s as bigint)")}
                        and try_cast(p.y as int) between {PNC_FIRST_YEAR} and year(current_date) end as pnc_valid,
              case when cro_core is not null then cro_core || c.c
                   else nullif(upper(trim(r_cro)), '') end as cro,
              cro_core,
              case when cro_core is null then (case when nullif(trim(r_cro), '') is null then null else false end)
                   else c.c = {_check_letter_sql("try_cast(c.y as bigint) * 1000000 + try_cast(c.s as bigint)")} end as cro_valid,
              nullif(upper(trim(prison_number)), '') as prison_number,
              case when nullif(trim(prison_number), '') is not null
                   then regexp_full_match(upper(trim(prison_number)), '[A-Z][0-9]{{4}}[A-Z]{{2}}') end as prison_number_valid,
              nullif(upper(trim(crn)), '') as crn,
              case when same_as is not null then system || ':' || same_as end as same_as,
              {"case when len(event_dates) > 0 then event_dates end" if events else "null::date[]"} as event_dates,
              _record_no
            from (select parsed.*, parsed.pnc as r_pnc, parsed.cro as r_cro from parsed) r
            left join _link_fore f on f.raw = r.forenames
            left join _link_sur s on s.raw = r.surname
            )
            select * exclude (_record_no), {fingerprint} as fingerprint, _record_no as record_no
            from std order by _record_no
        """)
    finally:
        con.unregister("_link_fore")
        con.unregister("_link_sur")
    return con.execute(f"select count(*) from {table}").fetchall()[0][0]


def sources_digest(sources: dict[str, dict]) -> str:
    """A short digest of the source queries (recorded with each linkage run)."""
    return hashlib.sha256(yaml.safe_dump(sources, sort_keys=True).encode()).hexdigest()[:12]
