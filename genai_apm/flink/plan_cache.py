"""Submit a statement set through a compiled plan, cached by everything that shapes the plan.

Planning is most of a job's start-up here: for the `all` job the optimiser (rule programs,
common sub-plan digests) takes about half of the client's time before Flink runs anything
(`make profile JOB=all`). Flink can persist the optimised plan as JSON (`COMPILE PLAN`,
``StatementSet.compilePlan``) and run it again without optimising (``loadPlan``), which is what
this module does for a job whose plan it has seen before.

What keys a plan (so a changed job never runs a stale plan):
- each INSERT's logical plan as Calcite prints it before optimisation: the SQL of every view
  and insert, with every value the settings put into it (thresholds, percentiles, windows);
- every temporary table's schema and options, except the options that only say *where*
  (topic, path, bootstrap servers, client properties, offsets): temporary tables are not
  stored in a plan, Flink resolves them again when it loads one, so a test's own topics and
  folders reuse the plan of another with the same shape;
- the ``table.*`` options (Flink stores the ones an operator consumes inside the plan, e.g.
  the idle timeout and state TTL) and the runtime mode;
- Flink's version and the jars on the job's classpath (the project's functions' types are
  resolved into the plan).

A plan that cannot be compiled (a job with Python functions) or loaded runs the usual way.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

# table_env records the settings' cache folder here; empty: no cache (Managed Flink, or off)
DIR_OPTION = "genai-apm.plan-cache.dir"
# plans kept per folder, newest first: each is 0.1-3 MB of JSON
KEEP = 48

# table options that only address data: a loaded plan reads them from the table as
# registered now, so they stay out of the key
_ADDRESS_OPTIONS = {
    "topic",
    "topic-pattern",
    "path",
    "stream",
    "sink.transactional-id-prefix",
    "scan.startup.specific-offsets",
    "scan.startup.timestamp-millis",
    "scan.bounded.specific-offsets",
    "scan.bounded.timestamp-millis",
}
_ADDRESS_PREFIXES = ("properties.", "aws.")


def folder(settings) -> Path | None:
    """Where compiled plans are kept (``flink.plan_cache_dir``, else <project>/.cache/plans);
    None when the cache is off or the job runs on Managed Flink."""
    flink = settings.flink
    if not flink.plan_cache or flink.service_configured:
        return None
    from genai_apm.home import project_root

    return Path(flink.plan_cache_dir or project_root() / ".cache" / "plans")


def execute(t_env, statements):
    """``statements.execute()``, through the cached plan when one matches."""
    compiled = compiled_plan(t_env, statements)
    if compiled is None:
        return statements.execute()
    from pyflink.table.table_result import TableResult

    return TableResult(compiled.execute())


def compiled_plan(t_env, statements):
    """The statement set's compiled plan: loaded when cached, else compiled and cached; None
    when the cache is off or the plan cannot be compiled (then it runs the usual way)."""
    folder = t_env.get_config().get(DIR_OPTION, "")
    if not folder:
        return None
    try:
        key = plan_key(t_env, statements)
    except Exception as e:  # the fingerprint reads planner internals: never fail a job on it
        _note(f"plan cache: not used ({_first_line(e)})")
        return None
    path = Path(folder) / f"{key}.json"
    unsupported = path.with_suffix(".unsupported")
    if unsupported.exists():
        return None
    if path.exists():
        compiled = _load(t_env, path)
        if compiled is not None:
            os.utime(path)  # recently used: kept by _prune
            return compiled
    try:
        compiled = _statement_set(statements).compilePlan()
    except Exception as e:
        _write(unsupported, _first_line(e))
        _note(f"plan cache: this job's plan cannot be compiled ({_first_line(e)})")
        return None
    _write(path, compiled.asJsonString())
    _prune(Path(folder))
    return compiled


def plan_key(t_env, statements) -> str:
    """A hash of what the optimiser's output depends on (module docstring)."""
    from pyflink.java_gateway import get_gateway

    jvm = get_gateway().jvm
    digest = hashlib.sha256()

    def add(*parts: object) -> None:
        for part in parts:
            digest.update(str(part).encode())
            digest.update(b"\0")

    from pyflink.version import __version__

    add("flink", __version__)
    conf = t_env.get_config().get_configuration().to_dict()
    for key in sorted(conf):
        if key.startswith("table.") or key == "execution.runtime-mode":
            add(key, conf[key])
    for jar in sorted(filter(None, conf.get("pipeline.jars", "").split(";"))):
        file = Path(jar.removeprefix("file://"))
        stat = file.stat()
        add(file.name, stat.st_size, stat.st_mtime_ns)
    catalogs = t_env._j_tenv.getCatalogManager()
    for name in sorted(t_env.list_temporary_tables()):
        identifier = jvm.org.apache.flink.table.catalog.ObjectIdentifier.of(
            t_env.get_current_catalog(), t_env.get_current_database(), name
        )
        table = catalogs.getTable(identifier).get().getResolvedTable()
        if str(table.getTableKind()) != "TABLE":  # a view: its query is in the inserts' plans
            continue
        options = dict(table.getOptions())
        add("table", name, table.getResolvedSchema().toString())
        for option in sorted(options):
            if option not in _ADDRESS_OPTIONS and not option.startswith(_ADDRESS_PREFIXES):
                add(option, options[option])
    operations = _operations(statements)
    for i in range(operations.size()):
        operation = operations.get(i)
        add(
            "insert",
            operation.getContextResolvedTable().getIdentifier().asSummaryString(),
            operation.getChild().getCalciteTree().explain(),
        )
    return digest.hexdigest()[:32]


def _statement_set(statements):
    return statements._j_statement_set


def _operations(statements):
    """The statement set's INSERT operations (a protected field of Flink's StatementSetImpl)."""
    j_set = _statement_set(statements)
    cls = j_set.getClass()
    while cls is not None:
        for field in cls.getDeclaredFields():
            if field.getName() == "operations":
                field.setAccessible(True)
                return field.get(j_set)
        cls = cls.getSuperclass()
    raise LookupError("no operations field on the statement set")


def _load(t_env, path: Path):
    from pyflink.java_gateway import get_gateway

    plan_reference = get_gateway().jvm.org.apache.flink.table.api.PlanReference
    try:
        return t_env._j_tenv.loadPlan(plan_reference.fromFile(str(path)))
    except Exception as e:  # e.g. written by another Flink version: plan afresh, overwrite it
        _note(f"plan cache: {path.name} not loaded ({_first_line(e)}); planning again")
        return None


def _write(path: Path, text: str) -> None:
    """Write whole or not at all: parallel test workers may write the same plan."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)


def _prune(folder: Path) -> None:
    plans = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in plans[KEEP:]:
        old.unlink(missing_ok=True)


def _first_line(e: Exception) -> str:
    """The Java exception's own message when there is one (py4j's text is a stack trace)."""
    java = getattr(e, "java_exception", None)
    text = str(java.getMessage() if java is not None else e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
