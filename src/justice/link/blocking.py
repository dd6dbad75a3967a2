"""A lookup table of blocking keys, so one record finds its candidates in milliseconds.

Every blocking rule of the model is a conjunction of equalities between the same expression on
the two records (``l.dob = r.dob and left(l.surname, 2) = left(r.surname, 2)``). For each rule
and record, the 64-bit hash of the rule number and the record's values of those expressions is
its *key* for that rule (no key when a value is null, as null never equals anything). Two records
satisfy the rule exactly when their keys are equal (bar a 1-in-2^64 hash collision, which only
adds a candidate: every candidate is then scored in full). `linkage.block_keys` holds
(key, record_no) sorted by key, so a probe's dozen keys are found by zonemap-pruned scans.

A rule may also hold one *side* condition, ``(l.X is null or r.X is null)``: the pairs that
agree on the equalities and where at least one record lacks X (names that sound alike, one
date of birth missing). Such a rule is keyed too, in two halves: a record lacking X is filed
under the key tagged 0, any other under the key tagged 1; a probe lacking X looks up both tags,
any other only tag 0. So in `linkage.block_keys` equal keys are candidates only for rules
without a side (two records filed under tag 1 are not); the rule's SQL is the exact test.
A rule may also hold one *list* condition, ``list_has_any(l.X, r.X)`` (the two records share an
element of the list X: an event on the same day). A record is then filed under one key per
element of X, the element hashed in the condition's place, and a probe looks up one key per
element of its own X. A list rule has no side condition.
A rule of neither form is left out of the table and scanned for directly.
"""

from __future__ import annotations

import re
import threading

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _split_top(expr: str, sep: str) -> list[str]:
    """Split on `sep` outside parentheses and quotes."""
    parts, depth, quote, cur, i = [], 0, False, [], 0
    while i < len(expr):
        ch = expr[i]
        if ch == "'":
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
        if not quote and depth == 0 and expr.startswith(sep, i):
            parts.append("".join(cur))
            cur = []
            i += len(sep)
            continue
        cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def conjuncts(sql: str) -> list[str] | None:
    """The top-level AND terms of a SQL condition (not inside parentheses, quotes or CASE ... END);
    None when the condition is not one conjunction of them: a top-level OR (`a and b or c` is
    `(a and b) or c`), a BETWEEN (whose AND is no conjunction) or a comment."""
    if "--" in sql or "/*" in sql:
        return None
    parts, depth, start, quote, i = [], 0, 0, None, 0
    while i < len(sql):
        ch = sql[i]
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif word := _WORD.match(sql, i):
            w = word.group(0).lower()
            if sql[i - 1:i] != "." and not (i and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
                # (a keyword, not a column such as l.end, nor the tail of a longer word)
                if w == "case":
                    depth += 1
                elif w == "end":
                    depth -= 1
                elif w == "between" or (w == "or" and depth == 0):
                    return None
                elif w == "and" and depth == 0:
                    parts.append(sql[start:i])
                    start = word.end()
            i = word.end()
            continue
        i += 1
    parts.append(sql[start:])
    return [p.strip() for p in parts if p.strip()]


def key_expressions(rule: str) -> list[str] | None:
    """The left-hand expressions (over `l.`) of a rule made of `expr(l) = expr(r)` equalities,
    or None when the rule is not of that form."""
    exprs = []
    for part in conjuncts(rule.strip()) or []:
        sides = _split_top(part, "=")
        if len(sides) != 2:
            return None
        left, right = (s.strip() for s in sides)
        if re.search(r"\br\.", left) or re.search(r"\bl\.", right):
            return None
        if re.sub(r"\bl\.", "r.", left) != right:
            return None
        exprs.append(left)
    return exprs or None


_SIDE = re.compile(r"^\(\s*l\.([A-Za-z_][A-Za-z0-9_]*)\s+is\s+null\s+or\s+"
                   r"r\.([A-Za-z_][A-Za-z0-9_]*)\s+is\s+null\s*\)$", re.IGNORECASE)
_LIST = re.compile(r"^list_has_any\(\s*l\.([A-Za-z_][A-Za-z0-9_]*)\s*,\s*r\.([A-Za-z_][A-Za-z0-9_]*)\s*\)$",
                   re.IGNORECASE)
# In a list rule's expressions, the place of the list's element.
ELEMENT = "$element"


def rule_key(rule: str) -> tuple[list[str], str | None] | None:
    """A keyed rule's left-hand expressions (over `l.`) and its side column (None when it has
    no side condition): equalities `expr(l) = expr(r)`, at least one, and at most one
    ``(l.X is null or r.X is null)``; or, in a list rule, at most one ``list_has_any(l.X, r.X)``,
    whose place among the expressions is ELEMENT (see `list_column`). None when the rule is not
    of that form."""
    exprs, side, listed = [], None, False
    for part in conjuncts(rule.strip()) or []:
        m = _SIDE.match(part.strip())
        if m:
            if side is not None or m.group(1) != m.group(2):
                return None
            side = m.group(1)
            continue
        m = _LIST.match(part.strip())
        if m:
            if listed or m.group(1) != m.group(2):
                return None
            listed = True
            exprs.append(ELEMENT)
            continue
        one = key_expressions(part)
        if one is None:
            return None
        exprs += one
    if listed and side is not None:
        return None
    return (exprs, side) if exprs and exprs != [ELEMENT] else None


def list_column(rule: str) -> str | None:
    """The list column X of a keyed rule's ``list_has_any(l.X, r.X)``, or None."""
    for part in conjuncts(rule.strip()) or []:
        m = _LIST.match(part.strip())
        if m:
            return m.group(1)
    return None


def rule_texts(model: dict) -> list[str]:
    return [r["blocking_rule"] if isinstance(r, dict) else r for r in model["blocking_rules_to_generate_predictions"]]


def key_sql(number: int, exprs: list[str], alias: str, tag: int | None = None,
            listed: str | None = None, as_list: bool = False) -> tuple[str, str]:
    """(hash expression, all-present condition) for rule `number` over table alias `alias`; a
    side rule's half is hashed with its `tag`. In a list rule (`listed`, its list column) the
    expression is ``unnest``: a row per element. With `as_list` it is a list of keys (one, or
    one per element of a list rule's list)."""
    over = [e if e == ELEMENT else re.sub(r"\bl\.", f"{alias}.", e) for e in exprs]
    present = " and ".join([f"({e}) is not null" for e in over if e != ELEMENT]
                           + ([f"{alias}.{listed} is not null"] if listed else []))
    element = "_element" if as_list else f"unnest({alias}.{listed})"
    args = [element if e == ELEMENT else e for e in over] + ([] if tag is None else [str(tag)])
    key = f"hash({number}, {', '.join(args)})"
    if not as_list:
        return key, present
    return (f"list_transform({alias}.{listed}, lambda _element: {key})" if listed else f"[{key}]"), present


def probe_lookups(model: dict, alias: str = "r") -> tuple[list[tuple[str, str]], list[str]]:
    """A probe's candidate search: (key, condition) SQL over the probe `alias` for each key it
    looks up in `linkage.block_keys` (a side rule's tag 0 always, its tag 1 when the probe lacks
    the side column), each a list of keys (one, or a list rule's one per element), and the rules
    that have no key (to scan for)."""
    keyed, unkeyed = [], []
    for i, rule in enumerate(rule_texts(model)):
        rk = rule_key(rule)
        if rk is None:
            unkeyed.append(rule)
            continue
        exprs, side = rk
        listed = list_column(rule)
        key, present = key_sql(i, exprs, alias, None if side is None else 0, listed, as_list=True)
        keyed.append((key, present))
        if side is not None:
            key1, _ = key_sql(i, exprs, alias, 1, as_list=True)
            keyed.append((key1, f"{present} and {alias}.{side} is null"))
    return keyed, unkeyed


def block_keys_sql(model: dict, records: str = "linkage.records") -> str | None:
    """The query giving (key, record_no) of every record of `records` for each keyed blocking rule
    of `model`, sorted by key; None when no rule has a key. A side rule files a record lacking the
    side column under its tag 0 and any other under its tag 1 (see the module docstring)."""
    parts = []
    for i, rule in enumerate(rule_texts(model)):
        rk = rule_key(rule)
        if rk is None:
            continue
        exprs, side = rk
        if side is None:
            key, present = key_sql(i, exprs, "l", listed=list_column(rule))
            parts.append(f"select {key} as key, l.record_no from {records} l where {present}")
            continue
        key0, present = key_sql(i, exprs, "l", 0)
        key1, _ = key_sql(i, exprs, "l", 1)
        parts.append(f"select case when l.{side} is null then {key0} else {key1} end as key, l.record_no "
                     f"from {records} l where {present}")
    return f"select * from ({' union all '.join(parts)}) order by key" if parts else None


def build_block_keys(con, model: dict, records: str = "linkage.records", table: str = "linkage.block_keys") -> int:
    """(Re)build `table` from `records` for the model's blocking rules; returns its row count."""
    sql = block_keys_sql(model, records)
    if sql is None:
        con.execute(f"create or replace table {table} (key ubigint, record_no bigint)")
        return 0
    con.execute(f"create or replace table {table} as {sql}")
    return con.execute(f"select count(*) from {table}").fetchall()[0][0]


class BlockKeysInBackground:
    """`build_block_keys` begun on a second connection to `con`'s database, in a thread, so the
    keys are hashed and sorted while the caller's thread works in Python (clustering); `install`
    then writes them to `table` on `con`, inside the caller's transaction. The keys come back as
    Arrow (about 250 MB at a million records), not as a table of the second connection: its
    commit would come after the caller's transaction began, which would not see it. `records`
    must be named with its catalog (the second connection's default database is the in-memory
    one) and must not change until `install`."""

    def __init__(self, con, model: dict, records: str = "wh.linkage.records") -> None:
        self.sql = block_keys_sql(model, records)
        self.keys = None
        self.error: BaseException | None = None
        self.cursor = con.cursor()
        self.thread = threading.Thread(target=self._build, name="block-keys", daemon=True)
        self.thread.start()

    def _build(self) -> None:
        try:
            if self.sql is not None:
                self.keys = self.cursor.sql(self.sql).to_arrow_table()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread by install()
            self.error = exc

    def install(self, con, table: str = "linkage.block_keys") -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error
        if self.keys is None:
            con.execute(f"create or replace table {table} (key ubigint, record_no bigint)")
            return
        con.register("_link_block_keys_next", self.keys)
        try:
            # A scan keeps the rows in their (key) order.
            con.execute(f"create or replace table {table} as select * from _link_block_keys_next")
        finally:
            con.unregister("_link_block_keys_next")
            self.keys = None

    def close(self) -> None:
        """Stop the query if it still runs (the run failed or was interrupted before `install`),
        wait for the thread, and let its connection and keys go."""
        if self.thread.is_alive():
            self.cursor.interrupt()
        again = None
        while self.thread.is_alive():
            try:
                self.thread.join()
            except KeyboardInterrupt as exc:
                # Ctrl-C again while waiting: the query is stopped, but the thread must end
                # before its connection (and the caller's) may close.
                again = exc
                self.cursor.interrupt()
        self.keys = None
        self.cursor.close()
        if again is not None:
            raise again


def all_rules_keyed(model: dict) -> bool:
    """Whether every blocking rule of `model` has a key (is a conjunction of equalities, with at
    most one side condition)."""
    return all(rule_key(rule) is not None for rule in rule_texts(model))


def build_blocked_pairs(con, model: dict, records: str, table: str,
                        bound: tuple[str, list[str], list[str]] | None = None, keep: float | None = None,
                        tf_schema: str = "wh.linkage", tightening: str | None = None) -> int:
    """(Re)build `table` with every pair of `records` that satisfies a blocking rule of `model`,
    once, in the shape of Splink's blocked pairs (``match_key``: the first rule the pair
    satisfies, as a string; ``join_key_l`` < ``join_key_r``: the records' unique ids), for
    Splink's predict to score (``register_blocked_pairs_for_predict``). Returns the pair count.

    These are the pairs Splink's own blocking finds (a pair is kept under the first rule it
    satisfies, as Splink keeps it), found as equal keys per rule (see the module docstring): one
    hash join on a 64-bit key per rule instead of Splink's string joins, each followed by a
    check of every earlier rule, which at a million records took most of predict. `records`
    must number its rows (`record_no`) in `unique_id` order. Needs `all_rules_keyed(model)`.

    With `bound` (explain.weight_upper_bound: an upper bound on a pair's match weight, its
    columns and term-frequency columns, the lookups in `tf_schema`) and `keep`, a pair whose
    bound is below `keep` is left out: Splink's threshold would drop it anyway (its weight is at
    most the bound), and at a million records it is most candidate pairs (people who share a
    name and nothing else), whose full comparison was most of predict's work. With
    `tightening` too (explain.weight_bound_tightening, over the same columns) the pairs the bound
    keeps are tested again against the bound less it: at a million records that leaves 2.3
    million pairs of 6.1 for Splink (most pairs with one name in common differ in the other by
    more than any string similarity allows), for a string similarity on the 6.1 million."""
    parts, sided = [], []
    for i, rule in enumerate(rule_texts(model)):
        rk = rule_key(rule)
        if rk is None:
            raise ValueError(f"blocking rule {rule!r} has no key; score it with Splink's own blocking")
        exprs, side = rk
        key, present = key_sql(i, exprs, "l", listed=list_column(rule))
        if side is None:
            parts.append(f"select {i}::utinyint as rule, {key} as key, l.record_no from {records} l where {present}")
        else:
            sided.append(f"select {i}::utinyint as rule, {key} as key, l.record_no, l.{side} is null as side "
                         f"from {records} l where {present}")
    # A plain rule's pairs: equal keys. A side rule's: each record lacking the side column with
    # every other of its key, once (two such records from the lower record number only).
    key_pairs = []
    if parts:
        con.execute(f"create or replace temp table _link_rule_keys as {' union all '.join(parts)}")
        key_pairs.append("""
                select a.record_no as l, b.record_no as r, a.rule
                from _link_rule_keys a join _link_rule_keys b
                  on a.key = b.key and a.rule = b.rule and a.record_no < b.record_no""")
    if sided:
        con.execute(f"create or replace temp table _link_side_keys as {' union all '.join(sided)}")
        key_pairs.append("""
                select least(a.record_no, b.record_no) as l, greatest(a.record_no, b.record_no) as r, a.rule
                from _link_side_keys a join _link_side_keys b
                  on a.key = b.key and a.rule = b.rule and a.record_no <> b.record_no
                where a.side and (not b.side or a.record_no < b.record_no)""")
    if not key_pairs:
        raise ValueError("the model has no blocking rules")
    key_pairs = " union all ".join(key_pairs)
    if bound is not None:
        # The bound's columns once per record, term frequencies joined on (not once per pair):
        # only the columns the bound reads (not a costly level's lists of names, say).
        used = [c for c in bound[1] if re.search(rf"\b{c}_[lr]\b", bound[0])]
        bound_cols = used + [f"tf_{c}" for c in bound[2]]
        con.execute(f"""
            create or replace temp table _link_bound_records as
            select l.record_no{"".join(f", l.{c}" for c in used)}{"".join(f", t_{c}.tf_{c}" for c in bound[2])}
            from {records} l
            {"".join(f" left join {tf_schema}.tf_{c} t_{c} on t_{c}.{c} = l.{c}" for c in bound[2])}""")
    try:
        # record_no follows unique_id order, so l.record_no < r.record_no is Splink's
        # l.unique_id < r.unique_id.
        con.execute(f"""
            create or replace table {table} as
            with p as (select l, r, min(rule) as rule from ({key_pairs}) group by all)
            select p.rule::varchar as match_key, l.unique_id as join_key_l, r.unique_id as join_key_r
            from p join {records} l on l.record_no = p.l join {records} r on r.record_no = p.r
        """ if bound is None else f"""
            create or replace table {table} as
            with p as (select l, r, min(rule) as rule from ({key_pairs}) group by all),
            c as (
                select p.l, p.r, p.rule,
                       {", ".join(f"l.{c} as {c}_l, r.{c} as {c}_r" for c in bound_cols)}
                from p join _link_bound_records l on l.record_no = p.l
                join _link_bound_records r on r.record_no = p.r),
            kept as (select l, r, rule from c where {bound[0]} >= {float(keep)!r} - 1e-9{
                "" if tightening is None else f" and {bound[0]} + {tightening} >= {float(keep)!r} - 1e-9"})
            select kept.rule::varchar as match_key, l.unique_id as join_key_l, r.unique_id as join_key_r
            from kept join {records} l on l.record_no = kept.l join {records} r on r.record_no = kept.r
        """)
    finally:
        con.execute("drop table if exists _link_rule_keys")
        con.execute("drop table if exists _link_side_keys")
        con.execute("drop table if exists _link_bound_records")
    return con.execute(f"select count(*) from {table}").fetchall()[0][0]
