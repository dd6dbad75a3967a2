"""Streaming XML reader: one element level per raw table, children linked to parents by key.

A spec of format ``xml`` declares each table at an element path relative to the document's root
element (``TableSpec.source``, e.g. ``CaseMessage/Case/Defendants/Defendant``). A table whose
path lies under another table's path is that table's child: its rows carry copies of the
parent row's ``parent_key`` fields (our names; a parent's own parent keys can be passed down
too), so ``offences`` join to ``defendants`` join to ``case_messages``. The table with the
shortest path (the *record*, e.g. ``CaseMessage``) is the unit of streaming.

Field sources (``FieldSpec.source``) are paths relative to the table's element:

* ``PersonalDetails/Surname``: the text of that element;
* ``@MessageID``, ``Case/@Status``: an attribute;
* ``/CaseMessages/@MessageDate``: an attribute of an ancestor (``/`` is the document root), so
  a file-level value such as the message date can be put on every record.

Steps are local names; options ``namespace`` puts every step in that namespace (elements in
another namespace never match a declared field, so they arrive as new columns). Options::

    root: CaseMessages                    # the expected root element (local name)
    namespace: "urn:justice-sim:xhibit:1" # the namespace of every element
    schema: crown.xsd                     # optional: validate each record against this XSD
    chunk_rows: 100000                    # rows per Batch
    check_first: true                     # check the whole file is well-formed before reading

``schema`` is a path relative to the spec file, an absolute path, or a package resource
``package.name:file.xsd``. Each record is validated on its own (wrapped in copies of its
ancestors); an invalid record is rejected whole (rule ``schema_invalid``, the schema's first
complaint as the reason). An XSD normally forbids undeclared elements, so with ``schema`` on, a
new element rejects its record instead of arriving as a new column.

Values
------
The file's encoding is what its XML declaration (or byte order mark) says, else UTF-8, as XML
requires; the spec's ``encoding`` is documentation only. Every value is the element's text (or
the attribute's value) exactly as in the file after XML parsing: entities and character
references decoded, CDATA merged, nothing trimmed or converted. An element that is present but
empty (``<Forename1/>``, ``<Surname></Surname>``) gives ``""``; an element (or attribute) that
is absent gives null. Text is taken from the element itself, not its descendants; its child
elements are read as fields or new columns of their own.

Undeclared elements and attributes inside a table's element (outside its child tables) are kept:
each leaf element or attribute becomes a column named ``x_`` + its relative path in snake case
(``PersonalDetails/MiddleName`` -> ``x_personal_details_middle_name``; the second and later
occurrences of a repeated one get ``_2``, ``_3``...) and is listed in ``Batch.new_columns``.
Undeclared attributes of the root are kept the same way on the record table. An element beside
the records that no table declares (a trailer, say) is not silently skipped: it becomes a
reject of the record table (rule ``undeclared_element``). Comments and processing instructions
are ignored.

Locators
--------
An XPath to the element: ``/CaseMessages/CaseMessage[12]/Case/Defendants/Defendant[1]``. Table
elements always carry their position among same-named siblings (1-based); other steps carry it
only when their parent has more than one element of that name. A duplicated record (the
emitter's ``duplicate_row`` mess: a ``CaseMessage`` sent twice byte for byte) is read twice with
different locators; removing duplicates is staging's job.

Rejects
-------
An element with a row-level problem is rejected whole, with its descendants (they are in its
``raw``, the element re-serialized by lxml, so nothing is lost; its child tables get no rows
from it): ``required_missing`` (a required field absent), ``repeated_element`` (a declared field
occurs more than once), ``field_too_long`` (a value over 1,000,000 characters),
``schema_invalid``. For each table, elements read = rows + rejects, where an element under a
rejected ancestor is not read on its own.

Whole-file problems raise, naming the file and what to do:

* SourceError: the file is empty, unreadable, not well-formed XML (truncated, garbage bytes,
  bytes that are not in the declared encoding: XML well-formedness is a property of the whole
  document, so the parser's file, line and column are given and the file must be re-extracted),
  or its root element or namespace is not the spec's;
* SchemaDriftError: a required field is absent from every element of its table in the file
  (the source has changed: update the spec or the source). When only some elements lack it,
  those are rejected instead.

Atomic files
------------
A half-read file must never look like a complete one. By default (``check_first``) the reader
checks the whole file is well-formed with a parse that builds nothing (libxml2 speed, constant
memory) before it yields any batch, so a truncated or damaged file raises before any batch of it
is yielded. That parse is done only when a batch is due before the end of the file: a file of
fewer than ``chunk_rows`` rows (the daily files) is proven well-formed by the reading itself.
Rows are then streamed: records are parsed one at a time and cleared; rows are buffered, and
once ``chunk_rows`` rows are held over all tables every table's are yielded (and the rest at the
end), so memory stays bounded however big the file is (a 270 MB, million-row file reads in about
200 MB). A few problems can still only be known at the end of the file (a required field absent
throughout) and raise after earlier batches were yielded; so the caller must treat a file's
batches as one unit: stage them, and commit the file's load only when the generator is exhausted
without an exception. A file with fewer than ``chunk_rows`` rows in all yields nothing until the
whole of it has been read.

Every table gets at least one Batch per file (possibly empty, so the caller sees its columns).
Batches of one table may differ in their ``x_`` columns (a new element first seen late in a big
file); the caller unions them.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pyarrow as pa
from lxml import etree

from justice.errors import ConfigError, SchemaDriftError, SourceError
from justice.sources.reading import (
    REJECT_SCHEMA,
    Batch,
    Lineage,
    extra_column,
    lineage_arrays,
    snake_name,
)
from justice.sources.spec import SourceSpec, TableSpec

CHUNK_ROWS = 100_000
MAX_FIELD_CHARS = 1_000_000
_SNIFF_BYTES = 1 << 16
_SNIFF_PIECE = 1 << 12
"""The root is looked for in pieces this small: libxml2's pull parser takes milliseconds over a
64 KiB piece (it reports every element in it), and the root is in the first few hundred bytes."""
_PARSER_OPTIONS = {"huge_tree": True, "resolve_entities": False, "no_network": True,
                   "load_dtd": False}
"""huge_tree: a text node over libxml2's 10 MB limit is a row reject (field_too_long), not a
broken file. No entity resolution, no network, no DTD: a feed cannot make the reader fetch or
expand anything."""

_STEP = re.compile(r"^@?[A-Za-z_][\w.\-]*$")


# --- spec compilation ----------------------------------------------------------------------


@dataclass(eq=False)
class _Node:
    """One step of a table's element tree: what is declared at this path."""

    children: dict[str, _Node] = field(default_factory=dict)
    attrs: dict[str, str] = field(default_factory=dict)
    """Attribute name -> our field name."""
    leaves: dict[str, str] = field(default_factory=dict)
    """The plain children (see `plain`): tag -> our field name. Most children are."""
    leaf_index: dict[str, int] = field(default_factory=dict)
    """`leaves` with each field's position in the table's row instead of its name."""
    attr_index: dict[str, int] = field(default_factory=dict)
    """`attrs` with each field's position in the table's row."""
    field: str | None = None
    """Our field name taking this element's text."""
    table: _Table | None = None
    """A child table whose elements are at this path."""
    leads_to_table: bool = False
    """A child table lies at or under this path (so steps here get locator positions)."""
    local: str = ""
    """The element's local name."""
    plain: bool = False
    """A declared leaf: a field, nothing declared below, no table."""
    rel: tuple[str, ...] = ()
    """Local names from the table's element down to this one (for x_ column names)."""
    field_index: int | None = None
    """The position of `field` in the table's row."""


@dataclass(eq=False)
class _Table:
    spec: TableSpec
    steps: tuple[str, ...]
    """Clark names from the root's child down to the table's element."""
    local: str
    """The element's local name (for locators)."""
    parent: _Table | None = None
    tree: _Node = field(default_factory=_Node)
    absolute: list[tuple[str, int, str]] = field(default_factory=list)
    """Ancestor attributes: (our name, levels up from the element, attribute name)."""
    columns: tuple[str, ...] = ()
    """Parent keys then declared fields (our names), the row's column order."""
    required: tuple[tuple[str, str], ...] = ()
    """(our name, source) of required fields."""
    required_index: tuple[int, ...] = ()
    """Positions of the required fields in the row (in `required`'s order)."""
    parent_index: tuple[tuple[int, int], ...] = ()
    """(position in this table's row, position in the parent's row) of each parent key."""
    absolute_index: tuple[tuple[int, int, str], ...] = ()
    """`absolute` with each field's position in the row instead of its name."""


def _qualify(step: str, ns: str | None) -> str:
    if step.startswith("@"):
        return step[1:]
    return f"{{{ns}}}{step}" if ns else step


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _split(path: str, where: str, spec: SourceSpec) -> list[str]:
    steps = path.split("/")
    bad = [s for s in steps if not _STEP.match(s)]
    if bad or any(s.startswith("@") for s in steps[:-1]):
        raise ConfigError(f"{spec.path}: {where}: {path!r} is not an element path like "
                          "'A/B', 'A/@attr' or '/Root/@attr' (local names, no predicates)")
    return steps


def _compile(spec: SourceSpec) -> list[_Table]:
    ns = spec.options.get("namespace") or None
    root = spec.options.get("root")
    tables: list[_Table] = []
    for t in spec.tables:
        where = f"table {t.name}"
        if not t.source:
            raise ConfigError(f"{spec.path}: {where}: an xml table needs source: its element path "
                              "relative to the root, e.g. CaseMessage/Case")
        steps = _split(t.source.strip("/"), f"{where}.source", spec)
        if steps[-1].startswith("@"):
            raise ConfigError(f"{spec.path}: {where}.source: {t.source!r} must name an element")
        qualified = tuple(_qualify(s, ns) for s in steps)
        if any(other.steps == qualified for other in tables):
            raise ConfigError(f"{spec.path}: {where}.source: {t.source!r} is another table's "
                              "source too; one element path is one table")
        tables.append(_Table(spec=t, steps=qualified, local=steps[-1]))

    # Parents before children (shorter paths first), so a parent's columns are known.
    for tab in sorted(tables, key=lambda t: len(t.steps)):
        # parent: the table with the longest path that is a prefix of this one
        best = None
        for other in tables:
            n = len(other.steps)
            if n < len(tab.steps) and tab.steps[:n] == other.steps and (
                    best is None or n > len(best.steps)):
                best = other
        tab.parent = best
        where = f"{spec.path}: table {tab.spec.name}"
        if tab.spec.parent_key and best is None:
            raise ConfigError(f"{where}: parent_key given but no table's path contains "
                              f"{tab.spec.source!r}")
        for key in tab.spec.parent_key:
            if best is None or key not in best.columns:
                raise ConfigError(f"{where}: parent_key {key!r} is not a field (or parent key) of "
                                  f"the parent table {best.spec.name if best else None}")
            if key in {f.name for f in tab.spec.fields}:
                raise ConfigError(f"{where}: parent_key {key!r} is also one of its own fields")
        tab.columns = (*tab.spec.parent_key, *(f.name for f in tab.spec.fields))
        tab.required = tuple((f.name, f.source) for f in tab.spec.fields if f.required)

    for tab in tables:  # the element trees: declared fields, then child tables
        where = f"{spec.path}: table {tab.spec.name}"
        for f in tab.spec.fields:
            if f.source.startswith("/"):
                steps = _split(f.source[1:], f"{where}: field {f.name}", spec)
                elems = tuple(_qualify(s, ns) for s in steps[:-1])
                if not steps[-1].startswith("@") or not elems or (
                        root and steps[0] != root) or elems[1:] != tab.steps[:len(elems) - 1]:
                    raise ConfigError(f"{where}: field {f.name}: an absolute source must be an "
                                      f"attribute of the root or another ancestor of the table's "
                                      f"element, like /{root or 'Root'}/@Attr; got {f.source!r}")
                tab.absolute.append((f.name, len(tab.steps) + 1 - len(elems), steps[-1][1:]))
                continue
            steps = _split(f.source, f"{where}: field {f.name}", spec)
            node = tab.tree
            for s in steps[:-1]:
                node = node.children.setdefault(_qualify(s, ns), _Node())
            last = steps[-1]
            if last.startswith("@"):
                node.attrs[last[1:]] = f.name
            else:
                node = node.children.setdefault(_qualify(last, ns), _Node())
                node.field = f.name
        if tab.parent is not None:
            rel = tab.steps[len(tab.parent.steps):]
            node = tab.parent.tree
            for s in rel:
                node.leads_to_table = True
                node = node.children.setdefault(s, _Node())
            node.leads_to_table = True
            node.table = tab

    for tab in tables:
        for node in _all_nodes(tab.tree):
            node.plain = (node.field is not None and not node.children and not node.attrs
                          and node.table is None)
        for node in (tab.tree, *_all_nodes(tab.tree)):
            node.leaves = {tag: c.field for tag, c in node.children.items() if c.plain}
        # Rows are lists in column order: the reader addresses fields by position.
        position = {name: i for i, name in enumerate(tab.columns)}
        _index_nodes(tab.tree, (), position)
        tab.required_index = tuple(position[name] for name, _ in tab.required)
        tab.absolute_index = tuple((position[name], up, attr) for name, up, attr in tab.absolute)
        if tab.parent is not None:
            parent_position = {name: i for i, name in enumerate(tab.parent.columns)}
            tab.parent_index = tuple((position[k], parent_position[k])
                                     for k in tab.spec.parent_key)

    for tab in tables:  # a parent's field must not reach into a child table's element
        def check(node: _Node, tab: _Table = tab) -> None:
            for child in node.children.values():
                if child.table is not None and (child.field or child.attrs or any(
                        c.field or c.attrs for c in _descend(child))):
                    raise ConfigError(f"{spec.path}: table {tab.spec.name}: a field reaches into "
                                      f"the elements of table {child.table.spec.name}; declare "
                                      "it there")
                check(child)
        check(tab.tree)
    return tables


def _all_nodes(node: _Node) -> Iterator[_Node]:
    for tag, child in node.children.items():
        child.local = _local(tag)
        yield child
        yield from _all_nodes(child)


def _index_nodes(node: _Node, rel: tuple[str, ...], position: dict[str, int]) -> None:
    node.rel = rel
    node.leaf_index = {tag: position[name] for tag, name in node.leaves.items()}
    node.attr_index = {k: position[name] for k, name in node.attrs.items()}
    node.field_index = position[node.field] if node.field is not None else None
    for child in node.children.values():
        _index_nodes(child, (*rel, child.local), position)


def _descend(node: _Node) -> Iterator[_Node]:
    for child in node.children.values():
        if child.table is None:
            yield child
            yield from _descend(child)


def _load_schema(spec: SourceSpec) -> etree.XMLSchema | None:
    ref = spec.options.get("schema")
    if not ref:
        return None
    ref = str(ref)
    path = Path(ref)
    package, _, name = ref.partition(":")
    if not path.is_absolute() and name and re.fullmatch(r"[A-Za-z_][\w.]*", package):
        try:
            path = Path(str(resources.files(package).joinpath(name)))
        except ModuleNotFoundError:
            raise ConfigError(f"{spec.path}: options.schema: no package {package!r}") from None
    elif not path.is_absolute():
        path = Path(spec.path).parent / path
    try:
        return etree.XMLSchema(etree.parse(str(path)))
    except OSError:
        raise ConfigError(f"{spec.path}: options.schema: cannot read {path}") from None
    except (etree.XMLSyntaxError, etree.XMLSchemaParseError) as exc:
        raise ConfigError(f"{spec.path}: options.schema: {path} is not a valid XML schema: "
                          f"{exc}") from None


_CACHE: dict[int, tuple[SourceSpec, list[_Table], etree.XMLSchema | None]] = {}


def _compiled(spec: SourceSpec) -> tuple[list[_Table], etree.XMLSchema | None]:
    """The spec's compiled tables and schema, kept while the spec object lives (read is called
    once per file, often for thousands of files)."""
    hit = _CACHE.get(id(spec))
    if hit is None or hit[0] is not spec:
        if len(_CACHE) > 64:
            _CACHE.clear()
        hit = _CACHE[id(spec)] = (spec, _compile(spec), _load_schema(spec))
    return hit[1], hit[2]


# --- the reader ----------------------------------------------------------------------------


def _malformed(location: str, exc: etree.XMLSyntaxError) -> SourceError:
    line, column = exc.position if exc.position else (exc.lineno, exc.offset)
    what = exc.msg or str(exc)
    return SourceError(
        f"{location}: not well-formed XML at line {line}, column {column}: {what}. The file is "
        "damaged or incomplete (truncated, garbage bytes, or not in its declared encoding): "
        "load none of it, and re-extract the file from the source system.")


def _too_long(name: str, value: str) -> tuple[str, str]:
    reason = f"{name} has {len(value):,} characters, over the {MAX_FIELD_CHARS:,} limit"
    return ("field_too_long", reason)


class _NullTarget:
    """A parser target that builds nothing: parsing with it only checks well-formedness."""

    def close(self) -> None:
        return None


@dataclass
class _Buffer:
    """Rows and rejects of one table waiting to be yielded."""

    rows: list[list[str | None]] = field(default_factory=list)
    """Values in the table's column order."""
    x: list[dict[str, str] | None] = field(default_factory=list)
    """Per row, its undeclared values (x_ name -> value), or None."""
    has_x: bool = False
    locators: list[str] = field(default_factory=list)
    rejects: list[tuple[str, str, str, str]] = field(default_factory=list)
    """(locator, rule, reason, raw)."""
    yielded: bool = False


class _FileReader:
    def __init__(self, spec: SourceSpec, location: str, lineage: Lineage,
                 relative_name: str | None) -> None:
        self.spec, self.location, self.lineage = spec, location, lineage
        self.file = relative_name if relative_name is not None else location
        self.tables, self.schema = _compiled(spec)
        self.x_names: dict[str, dict[tuple[str, ...], str]] = {}
        """Per table: undeclared path -> its x_ column name (stable within a file)."""
        self.chunk = int(spec.options.get("chunk_rows", CHUNK_ROWS))
        self.ns = spec.options.get("namespace") or None
        self.root_name = spec.options.get("root")
        self.tops = [t for t in self.tables if t.parent is None]
        self.buffers = {t.spec.name: self._new_buffer(t) for t in self.tables}
        # Per table, per required field: [elements that had it, elements that lacked it].
        self.required_counts = {t.spec.name: [[0, 0] for _ in t.required] for t in self.tables}
        self.positions: dict[tuple[str, str], int] = {}
        self.root_x: list[tuple[str, str]] = []
        self.root_local = ""
        self.top_tags = {t.steps[-1] for t in self.tops}
        self.last_parent: etree._Element | None = None
        self.ploc_of: tuple[etree._Element | None, str] = (None, "")
        """The last records' parent and its locator."""
        self.unchecked = False
        """Well-formedness is still to be proven before a batch is yielded mid-file."""
        self.held = 0
        """Rows and rejects buffered over all tables."""

    @staticmethod
    def _new_buffer(tab: _Table) -> _Buffer:
        return _Buffer()

    # -- whole-file checks --

    def check_file(self) -> None:
        path = Path(self.location)
        try:
            size = path.stat().st_size
            with path.open("rb") as fh:
                head = fh.read(_SNIFF_BYTES)
        except OSError as exc:
            raise SourceError(f"{self.location}: cannot be read ({exc.strerror}); check the path "
                              "and permissions, or re-extract the file") from None
        if size == 0 or (size <= len(head) and not head.strip()):
            raise SourceError(f"{self.location}: the file is empty (no XML at all): the export "
                              "failed or was cut off; re-extract the file")
        tag = self._sniff_root()
        want = _qualify(self.root_name, self.ns) if self.root_name else None
        in_ns = not self.ns or tag.startswith(f"{{{self.ns}}}")
        if (want and tag != want) or not in_ns:
            got = f"namespace {tag[1:].split('}')[0]}" if tag.startswith("{") else "no namespace"
            expected = f"<{self.root_name or '*'}> in " + (
                f"namespace {self.ns}" if self.ns else "no namespace")
            raise SourceError(f"{self.location}: the root element is <{_local(tag)}> in {got}, "
                              f"but the spec ({self.spec.path}) expects {expected}: this "
                              f"is not a {self.spec.system} file, or the source has changed its "
                              "format; check the file, or update the spec")
        # The whole-file parse that proves well-formedness waits until a batch is about to be
        # yielded before the end of the file (see _full_batches): a file smaller than one batch
        # is proven well-formed by the reading itself, which raises before anything is yielded.
        self.unchecked = bool(self.spec.options.get("check_first", True))

    def check_well_formed(self) -> None:
        """Parse the whole file building nothing; raise if it is not well-formed XML."""
        self.unchecked = False
        parser = etree.XMLParser(target=_NullTarget(), **_PARSER_OPTIONS)
        try:
            etree.parse(self.location, parser)
        except etree.XMLSyntaxError as exc:
            raise _malformed(self.location, exc) from None

    def _sniff_root(self) -> str:
        """The root element's tag, from the first bytes of the file."""
        parser = etree.XMLPullParser(events=("start",), **_PARSER_OPTIONS)
        try:
            with open(self.location, "rb") as fh:
                while chunk := fh.read(_SNIFF_PIECE):
                    parser.feed(chunk)
                    for _, el in parser.read_events():
                        return el.tag
                parser.close()
        except etree.XMLSyntaxError as exc:
            raise _malformed(self.location, exc) from None
        raise SourceError(f"{self.location}: no root element (the file holds no XML element): "
                          "re-extract the file")

    # -- streaming --

    def batches(self) -> Iterator[Batch]:
        self.check_file()
        by_tag: dict[str, list[_Table]] = {}
        for t in self.tops:
            by_tag.setdefault(t.steps[-1], []).append(t)
        context = etree.iterparse(self.location, events=("end",), tag=list(by_tag),
                                  remove_comments=True, remove_pis=True, **_PARSER_OPTIONS)
        root = None
        try:
            for _, el in context:
                if root is None:
                    root = el.getroottree().getroot()
                    self._root_seen(root)
                tab = self._match_top(el, by_tag[el.tag])
                if tab is None:
                    continue  # same name at another depth: part of something else
                self._record(tab, el)
                parent = self.last_parent = el.getparent()
                el.clear()
                while (prev := el.getprevious()) is not None:
                    self._sibling_done(prev)
                    parent.remove(prev)
                yield from self._full_batches()
        except etree.XMLSyntaxError as exc:  # the file changed since check_file, or no check
            raise _malformed(self.location, exc) from None
        root = context.root
        if root is None:
            raise SourceError(f"{self.location}: no root element: re-extract the file")
        if not self.root_local:
            self._root_seen(root)
        for child in self.last_parent if self.last_parent is not None else root:
            self._sibling_done(child)  # anything after the last record
        self._check_drift()
        yield from self._final_batches()

    def _root_seen(self, root: etree._Element) -> None:
        self.root_local = _local(root.tag)
        for k, v in root.items():  # root attributes not declared by any table: new columns
            if not any(a[1] == len(t.steps) and a[2] == k for t in self.tops for a in t.absolute):
                self.root_x.append((k, v))

    def _match_top(self, el: etree._Element, candidates: list[_Table]) -> _Table | None:
        for tab in candidates:
            node, ok = el, True
            for step in reversed(tab.steps[:-1]):
                node = node.getparent()
                if node is None or node.tag != step:
                    ok = False
                    break
            if ok and node.getparent() is not None and node.getparent().getparent() is None:
                return tab
        return None

    def _sibling_done(self, sib: etree._Element) -> None:
        """A sibling of the records is being dropped: report it unless it is a (cleared) record."""
        if not isinstance(sib.tag, str):
            return
        if sib.tag in self.top_tags and len(sib) == 0 and not sib.attrib and sib.text is None:
            return  # a processed record
        tab = self.tops[0]
        parent = sib.getparent()
        loc = self._ancestor_locator(parent) + "/" + _local(sib.tag)
        raw = etree.tostring(sib, encoding="unicode", with_tail=False)
        reason = (f"<{_local(sib.tag)}> beside the {tab.local} records is not declared by any "
                  "table of the spec: declare a table for it if it carries data")
        self.buffers[tab.spec.name].rejects.append((loc, "undeclared_element", reason, raw))
        self.held += 1

    def _ancestor_locator(self, el: etree._Element | None) -> str:
        parts = []
        while el is not None:
            parent = el.getparent()
            step = _local(el.tag)
            if parent is not None:
                before = sum(1 for _ in el.itersiblings(el.tag, preceding=True))
                if before or any(True for _ in el.itersiblings(el.tag)):
                    step += f"[{before + 1}]"
            parts.append(step)
            el = parent
        return "/" + "/".join(reversed(parts))

    def _record(self, tab: _Table, el: etree._Element) -> None:
        parent = el.getparent()
        if parent is not self.ploc_of[0]:
            self.ploc_of = (parent, self._ancestor_locator(parent))
        ploc = self.ploc_of[1]
        key = (ploc, el.tag)
        pos = self.positions[key] = self.positions.get(key, 0) + 1
        loc = f"{ploc}/{tab.local}[{pos}]"
        if self.schema is not None:
            problem = self._schema_problem(el)
            if problem:
                self._reject(tab, loc, "schema_invalid", problem, el)
                return
        self._element(tab, el, loc, None)

    def _schema_problem(self, el: etree._Element) -> str | None:
        chain = []
        node = el.getparent()
        while node is not None:
            chain.append(node)
            node = node.getparent()
        chain.reverse()
        wrapper = etree.Element(chain[0].tag, dict(chain[0].attrib), nsmap=chain[0].nsmap)
        cur = wrapper
        for anc in chain[1:]:
            cur = etree.SubElement(cur, anc.tag, dict(anc.attrib))
        cur.append(copy.deepcopy(el))
        if self.schema.validate(wrapper):
            return None
        err = self.schema.error_log.filter_from_errors()
        first = err[0] if err else self.schema.error_log.last_error
        message = first.message if first is not None else "invalid"
        return (f"does not match the schema ({self.spec.options.get('schema')}): {message} "
                f"(source line {first.line if first is not None else '?'})")

    def _element(self, tab: _Table, el: etree._Element, loc: str, parent_row: list | None) -> None:
        # The row is a list in column order (parent keys, then fields); None is absent.
        row: list[str | None] = [None] * len(tab.columns)
        if parent_row is not None:
            for i, j in tab.parent_index:
                row[i] = parent_row[j]
        x: list[tuple[tuple[str, ...], str]] = []
        children: list[tuple[_Table, etree._Element, str]] = []
        problems: list[tuple[str, str]] = []
        self._visit(el, tab.tree, loc, row, x, children, problems)
        if tab.parent is None and self.root_x:
            x[:0] = [(("/" + self.root_local, "@" + k), v) for k, v in self.root_x]
        for i, up, attr in tab.absolute_index:
            anc = el
            for _ in range(up):
                anc = anc.getparent() if anc is not None else None
            value = anc.get(attr) if anc is not None else None
            if value is not None:
                row[i] = value
                if len(value) > MAX_FIELD_CHARS:
                    problems.append(_too_long(tab.columns[i], value))
        if tab.required_index:
            counts = self.required_counts[tab.spec.name]
            for k, i in enumerate(tab.required_index):
                if row[i] is None:
                    counts[k][1] += 1
                    name, source = tab.required[k]
                    problems.append(("required_missing", f"required {source} ({name}) is missing"))
                else:
                    counts[k][0] += 1
        xrow: dict[str, str] | None = None
        if x:
            xrow = {}
            for path, value in x:
                name = self._x_name(tab, path)
                base, n = name, 1
                while name in xrow:
                    n += 1
                    name = f"{base}_{n}"
                xrow[name] = value
            for name, value in xrow.items():
                if len(value) > MAX_FIELD_CHARS:
                    problems.append(_too_long(name, value))
        if problems:
            reason = "; ".join(r for _, r in problems)
            self._reject(tab, loc, problems[0][0], f"<{tab.local}>: {reason}", el)
            return
        buf = self.buffers[tab.spec.name]
        buf.rows.append(row)
        buf.x.append(xrow)
        if xrow:
            buf.has_x = True
        buf.locators.append(loc)
        self.held += 1
        for child_tab, child, child_loc in children:
            self._element(child_tab, child, child_loc, row)

    def _visit(self, el, node: _Node, loc: str, row: list, x: list, children: list,
               problems: list) -> None:
        """Fill `row` from `el`, the element at `node` of a table's tree (undeclared elements
        and attributes to `x`, child tables' elements to `children`, row problems to `problems`)."""
        attrs = node.attr_index
        for k, v in el.items():
            i = attrs.get(k)
            if i is None:
                x.append(((*node.rel, "@" + k), v))
            else:
                row[i] = v  # an attribute name cannot repeat within an element
                if len(v) > MAX_FIELD_CHARS:
                    problems.append(_too_long(node.attrs[k], v))
        declared = node.children
        leaves = node.leaf_index
        counts: dict[str, int] | None = None
        for child in el:
            tag = child.tag
            i = leaves.get(tag)
            if i is not None:  # the common case: a declared leaf
                text = child.text
                if text is None:
                    text = ""
                elif len(text) > MAX_FIELD_CHARS:
                    problems.append(_too_long(node.leaves[tag], text))
                if row[i] is not None:
                    what = f"<{declared[tag].local}> ({node.leaves[tag]})"
                    problems.append(("repeated_element", f"{what} occurs more than once"))
                else:
                    row[i] = text
                if len(child) or child.keys():
                    self._visit(child, declared[tag], loc, row, x, children, problems)
                continue
            sub = declared.get(tag)
            if sub is None:
                if tag.__class__ is str:
                    self._visit_undeclared(child, node.rel, tag, x)
                continue
            child_loc = loc
            if sub.leads_to_table:
                if counts is None:
                    counts = {}
                pos = counts[tag] = counts.get(tag, 0) + 1
                if sub.table is not None or pos > 1 or next(child.itersiblings(tag), None) \
                        is not None:
                    child_loc = f"{loc}/{sub.local}[{pos}]"
                else:
                    child_loc = f"{loc}/{sub.local}"
                if sub.table is not None:
                    children.append((sub.table, child, child_loc))
                    continue
            if sub.field_index is not None:
                text = child.text or ""
                if len(text) > MAX_FIELD_CHARS:
                    problems.append(_too_long(sub.field, text))
                if row[sub.field_index] is not None:
                    problems.append(("repeated_element",
                                     f"<{sub.local}> ({sub.field}) occurs more than once"))
                else:
                    row[sub.field_index] = text
            self._visit(child, sub, child_loc, row, x, children, problems)

    def _visit_unknown(self, el, rel: tuple[str, ...], x: list) -> None:
        """An undeclared element's attributes and descendants, all to `x`."""
        for k, v in el.items():
            x.append(((*rel, "@" + k), v))
        for child in el:
            if child.tag.__class__ is str:
                self._visit_undeclared(child, rel, child.tag, x)

    def _visit_undeclared(self, child, rel: tuple[str, ...], tag: str, x: list) -> None:
        path = (*rel, _local(tag))
        if len(child):
            text = child.text
            if text and text.strip():
                x.append((path, text))
            self._visit_unknown(child, path, x)
        else:
            for k, v in child.items():
                x.append(((*path, "@" + k), v))
            x.append((path, child.text or ""))

    def _x_name(self, tab: _Table, path: tuple[str, ...]) -> str:
        names = self.x_names.setdefault(tab.spec.name, {})
        name = names.get(path)
        if name is None:
            joined = "_".join(snake_name(_local(s.lstrip("@/"))) for s in path)
            name = extra_column(joined, set(names.values()) | set(tab.columns), "value")
            names[path] = name
        return name

    def _reject(self, tab: _Table, loc: str, rule: str, reason: str, el) -> None:
        raw = etree.tostring(el, encoding="unicode", with_tail=False)
        self.buffers[tab.spec.name].rejects.append((loc, rule, reason, raw))
        self.held += 1

    def _check_drift(self) -> None:
        for tab in self.tables:
            counts = self.required_counts[tab.spec.name]
            for (name, source), (present, missing) in zip(tab.required, counts, strict=True):
                if missing and not present:
                    raise SchemaDriftError(
                        f"{self.location}: no <{tab.local}> element ({tab.spec.source}, table "
                        f"{tab.spec.name}) has {source}, which the spec ({self.spec.path}) "
                        f"requires as {name}: the source's layout has changed; update the spec "
                        "or the source, then re-extract. Nothing of this file is to be loaded.")

    # -- batches --

    def _full_batches(self) -> Iterator[Batch]:
        """Once chunk_rows rows (and rejects) are held over all tables, yield every table's."""
        if self.held >= self.chunk:
            if self.unchecked:
                self.check_well_formed()
            for tab in self.tables:
                buf = self.buffers[tab.spec.name]
                if buf.rows or buf.rejects:
                    yield self._flush(tab)

    def _final_batches(self) -> Iterator[Batch]:
        for tab in self.tables:
            buf = self.buffers[tab.spec.name]
            if buf.rows or buf.rejects or not buf.yielded:
                yield self._flush(tab)

    def _flush(self, tab: _Table) -> Batch:
        name = tab.spec.name
        buf = self.buffers[name]
        self.held -= len(buf.rows) + len(buf.rejects)
        columns = list(zip(*buf.rows, strict=True)) if buf.rows else [()] * len(tab.columns)
        # A list, not zip's tuple: pyarrow converts a tuple of strings dozens of times slower.
        arrays = {c: pa.array(list(v), pa.string())
                  for c, v in zip(tab.columns, columns, strict=True)}
        x_names: dict[str, None] = {}
        if buf.has_x:
            for xrow in buf.x:
                if xrow:
                    x_names.update(dict.fromkeys(xrow))
            for c in x_names:
                arrays[c] = pa.array([r.get(c) if r else None for r in buf.x], pa.string())
        arrays.update(lineage_arrays(self.spec, name, self.file, buf.locators, self.lineage))
        rows = pa.table(arrays)
        if buf.rejects:
            locs, rules, reasons, raws = (list(c) for c in zip(*buf.rejects, strict=True))
            rej = lineage_arrays(self.spec, name, self.file, locs, self.lineage)
            rej.update(rule=pa.array(rules, pa.string()), reason=pa.array(reasons, pa.string()),
                       raw=pa.array(raws, pa.string()))
            rejects = pa.Table.from_pydict(rej, schema=REJECT_SCHEMA)
        else:
            rejects = REJECT_SCHEMA.empty_table()
        batch = Batch(table=name, rows=rows, rejects=rejects, new_columns=tuple(x_names))
        self.buffers[name] = self._new_buffer(tab)
        self.buffers[name].yielded = True
        return batch


def read(spec: SourceSpec, location: str, lineage: Lineage, *, cursor: str | None = None,
         relative_name: str | None = None) -> Iterator[Batch]:
    """Read one XML file of `spec` as Batches, one or more per table (see the module docstring).

    `location` is the file's path; `relative_name` (the path relative to the system's folder) is
    written to `_file`, else `location` is. `cursor` is unused: XML sources are loaded a file at
    a time. Commit a file's batches only once this generator is exhausted without an exception.
    """
    del cursor
    if spec.format != "xml":
        raise ConfigError(f"{spec.path}: format is {spec.format!r}, not xml")
    yield from _FileReader(spec, str(location), lineage, relative_name).batches()
