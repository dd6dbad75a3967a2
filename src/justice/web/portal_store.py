"""The provider portal's submissions: their rows in the serving store, their files on disk, the
encryption of uploaded files and the retention purge.

A submission is one cohort file a provider (or an analyst) sent for evaluation. Its row in
``portal_submissions`` says whose it is (the provider organisation), what was sent, and how far
the evaluation has gone (``queued`` → ``running`` → ``done`` or ``failed``). Its files live under
``HOME/portal``:

- ``uploads/<id>.cohort``: the uploaded file, encrypted with AES-256-GCM (the ``cryptography``
  package) under the key in ``HOME/portal/portal.key`` (0600, made on first use; see
  `Settings.portal_key_path`), the submission id bound in as associated data, so a file copied
  onto another submission's name does not decrypt. The key is never in the store: a copy of the
  store alone opens nothing.
- ``reports/<id>/``: the evaluation's report folder (`justice.evaluate.report.write_report`),
  aggregate figures and the identification table by row number, without person ids.

The plain text of an upload exists only in memory and, while it is read or evaluated, in a
private folder on a memory file system (``/dev/shm`` where there is one), removed at once after.

Ids are 24 random URL-safe characters (144 bits): not guessable, and checked against the user's
organisation on every route all the same (`visible_to`).

Retention: `purge_expired` deletes the upload and the report of every submission sent more than
`Settings.portal_retention_days` ago, and files no row owns; the row stays (who sent what, when,
and the outcome), marked ``purged_at``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import os
import re
import secrets
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from justice.errors import ConfigError
from justice.serving.store import metadata
from justice.settings import Settings

log = logging.getLogger(__name__)

STATUSES = ("queued", "running", "done", "failed")
MAX_UPLOAD_ENV = "JUSTICE_PORTAL_MAX_UPLOAD_MB"
DEFAULT_MAX_UPLOAD_MB = 10.0
"""The largest cohort file taken unless JUSTICE_PORTAL_MAX_UPLOAD_MB says otherwise: a cohort
row (names, date of birth, gender, PNC and prison number, start date) is 60 to 80 bytes of CSV,
so 10 MB is about 130,000 participants (more as xlsx), more than one programme has; while the
upload is checked it is held in memory (never spooled to a plain-text temporary file), so the
limit also bounds what one upload can make the service hold."""
HIGHEST_MAX_UPLOAD_MB = 100.0
ORPHAN_AGE = dt.timedelta(hours=1)
"""A file under HOME/portal that no submission owns is deleted once it is this old."""
STALE_RUNNING = dt.timedelta(hours=1)
"""A submission `running` with no progress for this long was interrupted (the process stopped)."""

KINDS = {"csv": ".csv", "xlsx": ".xlsx"}
_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_MAGIC = b"JPV1"  # the format of an encrypted upload: magic, 12-byte nonce, AES-GCM ciphertext

portal_submissions = sa.Table(
    "portal_submissions", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("organisation", sa.String(200), index=True),  # NULL: the file named no provider
    sa.Column("uploaded_by", sa.String(100), nullable=False),
    sa.Column("uploaded_at", sa.DateTime, nullable=False, index=True),
    sa.Column("file_name", sa.String(200), nullable=False),
    sa.Column("file_kind", sa.String(8), nullable=False),
    sa.Column("file_bytes", sa.Integer, nullable=False),
    sa.Column("programme", sa.String(200), nullable=False),
    sa.Column("participants", sa.Integer, nullable=False),
    sa.Column("rows_left_out", sa.Integer, nullable=False, default=0),
    sa.Column("exclude_bad_rows", sa.Boolean, nullable=False, default=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("stage", sa.String(200)),
    sa.Column("started_at", sa.DateTime),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("error", sa.Text),  # what the sender is told when it failed
    sa.Column("error_detail", sa.Text),  # the technical reason, shown to analysts only
    sa.Column("purged_at", sa.DateTime),
)


def utcnow() -> dt.datetime:
    """Now in UTC, naive (as the store keeps datetimes)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def new_submission_id() -> str:
    """A fresh, unguessable submission id."""
    return secrets.token_urlsafe(18)


def is_submission_id(value: str) -> bool:
    """Whether `value` has the form of a submission id (anything else is not looked up)."""
    return bool(_ID.match(value or ""))


def portal_dir(settings: Settings) -> Path:
    """HOME/portal: uploads/, reports/ and (unless set elsewhere) the key file."""
    return settings.home / "portal"


def upload_path(settings: Settings, submission_id: str) -> Path:
    """Where a submission's encrypted upload is kept."""
    return portal_dir(settings) / "uploads" / f"{submission_id}.cohort"


def report_dir(settings: Settings, submission_id: str) -> Path:
    """Where a submission's report folder is written."""
    return portal_dir(settings) / "reports" / submission_id


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


# ---------------------------------------------------------------- what a file is

class UploadRefused(Exception):
    """An uploaded file the portal does not take, with the words to show the sender."""


def max_upload_bytes() -> int:
    """The largest cohort file the portal takes, in bytes: JUSTICE_PORTAL_MAX_UPLOAD_MB
    (megabytes of 1,000,000 bytes, more than 0 and at most 100), else 10 MB."""
    text = os.environ.get(MAX_UPLOAD_ENV, "").strip()
    if not text:
        return int(DEFAULT_MAX_UPLOAD_MB * 1_000_000)
    try:
        megabytes = float(text)
    except ValueError:
        raise ConfigError(f"{MAX_UPLOAD_ENV}={text[:40]!r} is not a number of megabytes") from None
    if not 0 < megabytes <= HIGHEST_MAX_UPLOAD_MB:
        raise ConfigError(f"{MAX_UPLOAD_ENV}={text[:40]!r}: the largest upload must be more than "
                          f"0 and at most {HIGHEST_MAX_UPLOAD_MB:g} MB (the upload is held in memory "
                          "while it is checked)")
    return int(megabytes * 1_000_000)


def size_text(limit: int) -> str:
    """A size limit as the pages say it: "10 MB", "0.5 MB"."""
    return f"{limit / 1_000_000:g} MB"


def too_large(limit: int) -> str:
    """What the sender is told about a file over `limit` bytes."""
    return f"The selected file must be smaller than {size_text(limit)}"


def file_kind(name: str, data: bytes, limit: int) -> str:
    """'csv' or 'xlsx' for an upload named `name` holding `data` (at most `limit` bytes),
    checked by its content (an .xlsx must be a workbook, a .csv text); raise UploadRefused
    saying what is wrong."""
    suffix = Path(name).suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise UploadRefused(f"The selected file must be a CSV or an Excel (.xlsx) file; "
                            f"{name or 'it'} is {suffix or 'a file with no extension'}")
    if not data:
        raise UploadRefused("The selected file is empty")
    if len(data) > limit:
        raise UploadRefused(too_large(limit))
    kind = _kind_of_content(data)
    if kind is None:
        raise UploadRefused("The selected file is not a CSV or an Excel (.xlsx) file: save it "
                            "from your spreadsheet as .xlsx or CSV and try again")
    if KINDS[kind] != suffix:
        raise UploadRefused(f"The selected file is named {suffix} but holds "
                            f"{'an Excel workbook' if kind == 'xlsx' else 'text (CSV)'}: "
                            f"rename it {Path(name).stem}{KINDS[kind]} or save it again")
    return kind


def _kind_of_content(data: bytes) -> str | None:
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, ValueError):
            return None
        if "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names):
            return "xlsx"
        return None
    head = data[:65_536]
    if b"\x00" in head:
        return None  # binary (or UTF-16, which the cohort reader does not take either)
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = head.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    # Cut at a multi-byte character the 64 KB boundary split: not a control character.
    control = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\r\n\f")
    return "csv" if control == 0 else None


def clean_file_name(name: str) -> str:
    """The upload's name as shown and as the report names it: the last path part, printable."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[:200] or "cohort"


@contextlib.contextmanager
def plain_copy(data: bytes, file_name: str, kind: str) -> Iterator[Path]:
    """The plain text `data` as a file named like the upload (with the suffix of its `kind`), in
    a private folder on a memory file system where there is one, removed when the block ends."""
    shm = Path("/dev/shm")
    where = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    folder = Path(tempfile.mkdtemp(prefix="justice-portal-", dir=where))  # 0700
    try:
        stem = re.sub(r"[^A-Za-z0-9._ -]+", "_", Path(file_name).stem)[:100] or "cohort"
        path = folder / f"{stem}{KINDS[kind]}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- encryption at rest

def _aesgcm():
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        raise ConfigError("the provider portal keeps uploaded files encrypted with the "
                          "`cryptography` package, which is not installed: install it "
                          "(pip install cryptography) and restart the service") from None
    return AESGCM


def load_key(settings: Settings) -> bytes:
    """The portal's 256-bit file key from `Settings.portal_key_path`, made (0600) on first use;
    refused if others may read it."""
    path = settings.portal_key_path
    if not path.exists():
        _private_dir(path.parent)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another worker made it first: use theirs
        else:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32) + "\n")
    mode = path.stat().st_mode
    if mode & 0o077:
        raise ConfigError(f"the provider portal's key file {path} may be read by others "
                          f"(permissions {mode & 0o777:o}): run `chmod 600 {path}`")
    for _ in range(50):
        text = path.read_text(encoding="ascii").strip()
        if text:
            break
        # Another worker created the file a moment ago and is writing it.
        time.sleep(0.01)
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigError(f"the provider portal's key file {path} does not hold a 256-bit key "
                          "(64 hexadecimal digits); restore it from its backup (files encrypted "
                          "under a lost key cannot be read)")
    return key


def encrypt(settings: Settings, data: bytes, submission_id: str) -> bytes:
    """`data` encrypted for the submission `submission_id` (its id bound as associated data)."""
    cipher = _aesgcm()(load_key(settings))
    nonce = secrets.token_bytes(12)
    return _MAGIC + nonce + cipher.encrypt(nonce, data, submission_id.encode())


def decrypt(settings: Settings, blob: bytes, submission_id: str) -> bytes:
    """The plain text of an upload encrypted by `encrypt` for `submission_id`."""
    if not blob.startswith(_MAGIC) or len(blob) < len(_MAGIC) + 12 + 16:
        raise ConfigError(f"the upload of submission {submission_id} is not an encrypted portal "
                          "file")
    from cryptography.exceptions import InvalidTag

    nonce, body = blob[4:16], blob[16:]
    try:
        return _aesgcm()(load_key(settings)).decrypt(nonce, body, submission_id.encode())
    except InvalidTag:
        raise ConfigError(f"the upload of submission {submission_id} does not decrypt: the key "
                          "file changed, or the file was altered or belongs to another "
                          "submission") from None


def read_upload(settings: Settings, submission_id: str) -> bytes:
    """The plain text of a submission's upload (decrypted in memory)."""
    return decrypt(settings, upload_path(settings, submission_id).read_bytes(), submission_id)


def _write_upload(settings: Settings, submission_id: str, data: bytes) -> Path:
    sealed = encrypt(settings, data, submission_id)  # first: nothing is written if it fails
    path = upload_path(settings, submission_id)
    _private_dir(path.parent)
    partial = path.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(sealed)
    partial.replace(path)
    return path


# ---------------------------------------------------------------- submissions

@dataclass(frozen=True)
class NewSubmission:
    """What an upload that passed the checks says about itself."""

    organisation: str | None
    uploaded_by: str
    file_name: str
    file_kind: str
    data: bytes
    programme: str
    participants: int
    rows_left_out: int
    exclude_bad_rows: bool


def create_submission(settings: Settings, engine: sa.Engine, new: NewSubmission, *,
                      now: dt.datetime | None = None) -> str:
    """Keep the upload (encrypted) and queue its evaluation; the new submission's id."""
    submission_id = new_submission_id()
    now = now or utcnow()
    path = _write_upload(settings, submission_id, new.data)
    try:
        with engine.begin() as conn:
            conn.execute(portal_submissions.insert().values(
                id=submission_id, organisation=new.organisation, uploaded_by=new.uploaded_by,
                uploaded_at=now, file_name=new.file_name, file_kind=new.file_kind,
                file_bytes=len(new.data), programme=new.programme[:200],
                participants=new.participants, rows_left_out=new.rows_left_out,
                exclude_bad_rows=new.exclude_bad_rows, status="queued",
                stage="Waiting to start", updated_at=now))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return submission_id


def get_submission(conn: sa.Connection, submission_id: str) -> sa.RowMapping | None:
    """The submission's row, or None (also for a value that is not an id at all)."""
    if not is_submission_id(submission_id):
        return None
    return conn.execute(sa.select(portal_submissions)
                        .where(portal_submissions.c.id == submission_id)).mappings().first()


def visible_to(user, submission: sa.RowMapping) -> bool:
    """Whether `user` may see `submission`: analysts all, a provider its own organisation's."""
    if user.role == "analyst":
        return True
    return (user.role == "provider" and user.provider is not None
            and submission["organisation"] == user.provider)


def list_submissions(conn: sa.Connection, organisation: str | None, *,
                     every_organisation: bool = False) -> list[sa.RowMapping]:
    """Submissions newest first: of `organisation`, or all with `every_organisation`."""
    query = sa.select(portal_submissions).order_by(portal_submissions.c.uploaded_at.desc(),
                                                   portal_submissions.c.id)
    if not every_organisation:
        query = query.where(portal_submissions.c.organisation == organisation)
    return list(conn.execute(query).mappings())


def claim_next(engine: sa.Engine, *, now: dt.datetime | None = None) -> str | None:
    """Mark the oldest queued submission running and return its id (None when none waits); two
    runners never claim the same one."""
    now = now or utcnow()
    with engine.begin() as conn:
        candidates = conn.execute(
            sa.select(portal_submissions.c.id).where(portal_submissions.c.status == "queued")
            .order_by(portal_submissions.c.uploaded_at, portal_submissions.c.id).limit(5)
        ).scalars().all()
        for submission_id in candidates:
            claimed = conn.execute(
                portal_submissions.update()
                .where(portal_submissions.c.id == submission_id,
                       portal_submissions.c.status == "queued")
                .values(status="running", stage="Starting", started_at=now, updated_at=now))
            if claimed.rowcount == 1:
                return submission_id
    return None


def set_stage(engine: sa.Engine, submission_id: str, stage: str) -> None:
    """Record how far a running evaluation has got (shown on its page)."""
    with engine.begin() as conn:
        conn.execute(portal_submissions.update().where(portal_submissions.c.id == submission_id)
                     .values(stage=stage, updated_at=utcnow()))


def finish(engine: sa.Engine, submission_id: str, status: str, *, error: str | None = None,
           error_detail: str | None = None) -> None:
    """Record the end of an evaluation: ``done``, or ``failed`` with what the sender is told."""
    if status not in ("done", "failed"):
        raise ValueError(f"a finished submission is done or failed, not {status!r}")
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(portal_submissions.update().where(portal_submissions.c.id == submission_id)
                     .values(status=status, stage=None, finished_at=now, updated_at=now,
                             error=error, error_detail=error_detail))


def fail_interrupted(engine: sa.Engine, *, now: dt.datetime | None = None) -> list[str]:
    """Mark failed the submissions left `running` with no progress for STALE_RUNNING (their
    process stopped mid-way); their ids."""
    now = now or utcnow()
    with engine.begin() as conn:
        stale = conn.execute(
            sa.select(portal_submissions.c.id)
            .where(portal_submissions.c.status == "running",
                   portal_submissions.c.updated_at <= now - STALE_RUNNING)).scalars().all()
        for submission_id in stale:
            conn.execute(portal_submissions.update()
                         .where(portal_submissions.c.id == submission_id)
                         .values(status="failed", stage=None, finished_at=now, updated_at=now,
                                 error="The evaluation was interrupted (the service restarted). "
                                       "Upload the file again.",
                                 error_detail="running with no progress for "
                                              f"{STALE_RUNNING}: the process stopped"))
    return list(stale)


def purge_expired(settings: Settings, engine: sa.Engine, *,
                  now: dt.datetime | None = None) -> list[str]:
    """Delete the uploads and reports of submissions sent more than the retention period ago
    (not one still running), and any file no submission owns; the ids purged."""
    now = now or utcnow()
    cutoff = now - dt.timedelta(days=settings.portal_retention_days)
    with engine.connect() as conn:
        expired = conn.execute(
            sa.select(portal_submissions.c.id)
            .where(portal_submissions.c.uploaded_at <= cutoff,
                   portal_submissions.c.purged_at.is_(None),
                   portal_submissions.c.status != "running")).scalars().all()
    purged = []
    for submission_id in expired:
        upload_path(settings, submission_id).unlink(missing_ok=True)
        shutil.rmtree(report_dir(settings, submission_id), ignore_errors=True)
        with engine.begin() as conn:
            conn.execute(portal_submissions.update()
                         .where(portal_submissions.c.id == submission_id)
                         .values(purged_at=now, updated_at=now))
        purged.append(submission_id)
    _remove_orphans(settings, engine)
    if purged:
        log.info("portal: deleted the files of %d submission(s) past %d days", len(purged),
                 settings.portal_retention_days)
    return purged


def _remove_orphans(settings: Settings, engine: sa.Engine) -> None:
    # Files of a submission whose row was never written (a crash between the two) or is gone.
    # Only old ones: an upload is written a moment before its row.
    folders = [portal_dir(settings) / "uploads", portal_dir(settings) / "reports"]
    old_enough = time.time() - ORPHAN_AGE.total_seconds()
    found = {}
    for folder in folders:
        if folder.is_dir():
            for entry in folder.iterdir():
                if entry.stat().st_mtime < old_enough:
                    # A report's staging folder is named ".<id>.<random>".
                    found.setdefault(entry.name.lstrip(".").split(".")[0], []).append(entry)
    if not found:
        return
    with engine.connect() as conn:
        live = set(conn.execute(sa.select(portal_submissions.c.id)
                                .where(portal_submissions.c.id.in_(list(found)),
                                       portal_submissions.c.purged_at.is_(None))).scalars())
    for key, entries in found.items():
        if key in live or not key:
            continue
        for entry in entries:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
