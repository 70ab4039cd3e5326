"""`genai-apm compact`: every closed hour of a Parquet table rewritten as one file.

Flink's filesystem sink merges the files of one checkpoint only (``auto-compaction``), so a
partition ``<table>/dt=D/hour=H`` gets a file for each checkpoint that brought it rows: ~60
an hour for a 1-minute table, up to 720 for a table of single records at 5 s checkpoints
(docs/sinks.md). Nothing in the sink merges across checkpoints: a partition-commit policy
runs once the files are already visible, and the rolling policy cannot hold a bulk-format
file open over a checkpoint. So this runs beside the jobs (cron, or after a backfill) and
rewrites each *closed* partition into one ``genai-apm-compacted-<uuid>.parquet`` file.

Closed: the partition's hour ended at least ``output.compact_after_minutes`` ago and no
object in it, committed or in flight, changed for that long; that covers the watermark
delay, a checkpoint and a window emitted after its hour (cost_1h). A partition that gets a
file later (a long window, a late backfill) is merged again on the next run, its earlier
merged file included: running twice changes nothing, and no row is read twice or lost.

What readers see (they take the files not starting with '.' or '_': Athena, Spark, DuckDB
with ``[!._]*``, ``genai-apm query``):

- local folders: the merged file is written into a folder under ``<root>/.genai-apm-compact/``
  (outside every table, so no reader's glob reaches it; DuckDB's ``*`` matches hidden
  names), which then takes the partition's place in one ``renameat2(RENAME_EXCHANGE)``: a
  listing sees the old files or the merged one, never both, never neither. The old files
  stay there (``<table>/dt=D/hour=H.replaced-<time>``) for ``keep_replaced_s`` (a reader that
  listed them before the swap can still open them), then a later run deletes them. Anything
  in the partition the merge did not read (a file that arrived meanwhile) is moved back at
  once.
- S3: there is no atomic multi-object change. The merged object is written first, then the
  merged-away objects are deleted in one DeleteObjects request: a listing between the two
  (well under a second) sees an hour twice; never a gap. A query that must not see that
  should not run while ``compact`` does (or use a table format with snapshots, e.g. Iceberg).

Files of one partition with different schemas (written by two versions) are left alone,
with a line saying so: Athena cannot read mixed timestamp encodings in one table anyway.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from genai_apm.errors import GenaiApmError
from genai_apm.settings.config import Settings

MERGED_PREFIX = "genai-apm-compacted-"
WORK_DIR = ".genai-apm-compact"
SUCCESS = "_SUCCESS"
REPLACED = ".replaced-"


def committed(name: str) -> bool:
    """Readers take these: in-flight files and markers start with '.' or '_'."""
    return not name.startswith((".", "_"))


def hour_end(dt: str, hour: str) -> datetime:
    """The end of partition dt=YYYY-MM-DD/hour=HH (UTC)."""
    return datetime.strptime(f"{dt} {hour}", "%Y-%m-%d %H").replace(tzinfo=UTC) + timedelta(hours=1)


@dataclass
class Report:
    """What a run did, per table: files before and after in the partitions it merged."""

    merged: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def add(self, table: str, partition: str, files: int) -> None:
        self.merged.setdefault(table, []).append((partition, files))

    def summary(self) -> str:
        lines = [
            f"{table}: {len(parts)} partitions, {sum(n for _, n in parts)} files -> {len(parts)}"
            for table, parts in sorted(self.merged.items())
        ]
        lines += [f"left alone: {reason}" for reason in self.skipped]
        return "\n".join(lines) or "nothing to compact"


def merge_files(sources: list[Path], target: Path) -> int | None:
    """One Parquet file of all rows of ``sources`` (same schema), written to ``target``;
    its row count, checked against the sources' metadata. None when schemas differ."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schemas = [pq.read_schema(s) for s in sources]
    if any(not s.equals(schemas[0]) for s in schemas[1:]):
        return None
    expected = sum(pq.ParquetFile(s).metadata.num_rows for s in sources)
    # oldest first: the merged file keeps the order the rows were committed in
    table = pa.concat_tables(pq.read_table(s) for s in sources)
    # the sinks' encoding: SNAPPY, timestamps stay INT64 millis (docs/sinks.md "Timestamps")
    pq.write_table(table, target, compression="snappy", coerce_timestamps=None)
    written = pq.ParquetFile(target).metadata.num_rows
    if written != expected:
        raise GenaiApmError(f"merging into {target} wrote {written} rows of {expected}")
    return written


def _exchange(a: Path, b: Path) -> None:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE)."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        raise GenaiApmError("compacting local tables needs Linux's renameat2 (glibc 2.28+)")
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) != 0:
        err = ctypes.get_errno()
        raise GenaiApmError(f"cannot swap {a} and {b}: {os.strerror(err)}")


class LocalTables:
    def __init__(self, root: Path, *, keep_replaced_s: float, now: Callable[[], float]):
        self.root, self.keep_replaced_s, self.now = root, keep_replaced_s, now

    def partitions(self, tables: list[str] | None):
        for table in sorted(p for p in self.root.iterdir() if p.is_dir() and committed(p.name)):
            if tables and table.name not in tables:
                continue
            for part in sorted(table.glob("dt=*/hour=*")):
                if part.is_dir():
                    yield table.name, part

    def newest_change(self, part: Path) -> float:
        times = [part.stat().st_mtime]
        for f in part.iterdir():
            try:
                times.append(f.stat().st_mtime)
            except FileNotFoundError:  # a writer renamed or removed it meanwhile
                times.append(self.now())
        return max(times)

    def compact(self, part: Path) -> int | None:
        sources = sorted(
            (f for f in part.iterdir() if f.is_file() and committed(f.name)),
            key=lambda f: (f.stat().st_mtime, f.name),
        )
        if len(sources) < 2:
            return 0
        # same filesystem as the partition (renameat2 needs that), outside every table
        work = self.root / WORK_DIR / part.relative_to(self.root).parent
        work.mkdir(parents=True, exist_ok=True)
        staging = work / f"{part.name}.{uuid.uuid4().hex[:12]}"
        staging.mkdir()
        try:
            if merge_files(sources, staging / f"{MERGED_PREFIX}{uuid.uuid4()}.parquet") is None:
                shutil.rmtree(staging)
                return None
            if (part / SUCCESS).exists():
                (staging / SUCCESS).touch()
            _exchange(staging, part)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        # `staging` now holds what the partition held: whatever the merge did not read
        # (a file committed meanwhile, an in-flight file a writer will rename) goes back
        merged = {s.name for s in sources} | {SUCCESS}
        for leftover in staging.iterdir():
            if leftover.name not in merged:
                leftover.rename(part / leftover.name)
        stamp = f"{self.now():.0f}"
        staging.rename(work / f"{part.name}{REPLACED}{stamp}")
        return len(sources)

    def remove_replaced(self) -> None:
        """Folders of merged-away files, once no reader can still be reading them."""
        for old in self.root.glob(f"{WORK_DIR}/*/dt=*/hour=*{REPLACED}*"):
            stamp = old.name.rsplit(REPLACED, 1)[1]
            if stamp.isdigit() and self.now() - int(stamp) >= self.keep_replaced_s:
                shutil.rmtree(old, ignore_errors=True)


class S3Tables:
    def __init__(self, settings: Settings, uri: str):
        from genai_apm import aws

        self.bucket, prefix = aws.split_s3_uri(uri)
        self.base = f"{prefix}/" if prefix else ""
        self.s3 = aws.client(settings.aws, "s3")
        self.uri = uri

    def _objects(self, prefix: str) -> list[dict]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [o for page in pages for o in page.get("Contents", [])]

    def partitions(self, tables: list[str] | None):
        """(table, partition prefix, its objects) for every dt=/hour= partition."""
        found: dict[tuple[str, str], list[dict]] = {}
        for obj in self._objects(self.base):
            parts = obj["Key"][len(self.base) :].split("/")
            if (
                len(parts) != 4
                or not parts[1].startswith("dt=")
                or not parts[2].startswith("hour=")
            ):
                continue
            if tables and parts[0] not in tables:
                continue
            found.setdefault((parts[0], "/".join(parts[1:3])), []).append(obj)
        for (table, partition), objects in sorted(found.items()):
            yield table, partition, objects

    def compact(self, table: str, partition: str, objects: list[dict]) -> int | None:
        sources = sorted(
            (o for o in objects if committed(o["Key"].rsplit("/", 1)[1])),
            key=lambda o: (o["LastModified"], o["Key"]),
        )
        if len(sources) < 2:
            return 0
        prefix = f"{self.base}{table}/{partition}/"
        with tempfile.TemporaryDirectory(prefix="genai-apm-compact-") as scratch:
            local = []
            for i, obj in enumerate(sources):
                path = Path(scratch) / f"{i:06d}"
                self.s3.download_file(self.bucket, obj["Key"], str(path))
                local.append(path)
            target = Path(scratch) / "merged.parquet"
            if merge_files(local, target) is None:
                return None
            # first the merged object, then the deletes: a listing in between sees the hour
            # twice for a moment, never not at all (module docstring)
            self.s3.upload_file(
                str(target), self.bucket, f"{prefix}{MERGED_PREFIX}{uuid.uuid4()}.parquet"
            )
        keys = [o["Key"] for o in sources]
        for i in range(0, len(keys), 1000):  # DeleteObjects takes 1,000 keys a request
            answer = self.s3.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True},
            )
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise GenaiApmError(
                    f"S3 kept {len(answer['Errors'])} merged-away objects of {prefix} "
                    f"({first.get('Code')}: {first.get('Key')}); their rows are now counted "
                    "twice: delete them by hand"
                )
        return len(sources)


def run(
    settings: Settings,
    *,
    tables_path: str | None = None,
    tables: list[str] | None = None,
    after_minutes: float | None = None,
    keep_replaced_s: float = 600.0,
    now: Callable[[], float] = time.time,
    out: Callable[[str], None] = print,
) -> Report:
    """Merge every closed partition of the tables under ``tables_path`` (default:
    output.tables_path), local or s3://; ``tables`` limits it to those names."""
    root = tables_path or settings.output.tables_path
    wait_s = 60 * (
        settings.output.compact_after_minutes if after_minutes is None else after_minutes
    )
    report = Report()

    def closed(dt: str, hour: str, newest: float) -> bool:
        ended = hour_end(dt, hour).timestamp()
        return now() - ended >= wait_s and now() - newest >= wait_s

    def done(table: str, partition: str, files: int | None) -> None:
        if files is None:
            report.skipped.append(f"{table}/{partition}: its files' schemas differ")
            out(f"{table}/{partition}: files with different schemas, left as they are")
        elif files:
            report.add(table, partition, files)
            out(f"{table}/{partition}: {files} files -> 1")

    if root.startswith("s3://"):
        s3 = S3Tables(settings, root)
        try:
            for table, partition, objects in s3.partitions(tables):
                dt, hour = (p.split("=", 1)[1] for p in partition.split("/"))
                newest = max(o["LastModified"].timestamp() for o in objects)
                if closed(dt, hour, newest):
                    done(table, partition, s3.compact(table, partition, objects))
        except Exception as e:  # botocore's errors have no common base worth importing
            if type(e).__module__.startswith(("botocore", "boto3")):
                raise GenaiApmError(f"cannot compact {root}: {e}") from None
            raise
        return report
    folder = Path(root.removeprefix("file://"))
    if not folder.is_dir():
        raise GenaiApmError(f"no tables under {folder} (output.tables_path)")
    local = LocalTables(folder, keep_replaced_s=keep_replaced_s, now=now)
    local.remove_replaced()
    for table, part in local.partitions(tables):
        dt, hour = part.parent.name.split("=", 1)[1], part.name.split("=", 1)[1]
        if closed(dt, hour, local.newest_change(part)):
            done(table, f"{part.parent.name}/{part.name}", local.compact(part))
    local.remove_replaced()
    return report
