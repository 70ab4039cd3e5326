"""Start-up: Flink's code splitter and Janino answered from disk (infra/codesplit-cache).

Every class Flink's planner generates (operators, aggregation handlers, projections) passes
through ``JavaCodeSplitter.split`` as it is created, which parses and rewrites it with an
ANTLR Java grammar so that no method outgrows the JVM's limits: for the `all` job loaded from
a cached plan (plan_cache.py) about four fifths of the client's work (JFR of a
bench/startup.py run: 206 of 251 samples under translateToPlan). Then Janino compiles each
class twice, for the JobMaster (which builds the job graph from the operators' classes) and
for the tasks (another class loader). Both are deterministic in their input, so a small Java
agent in the local Flink JVM keeps their answers in a folder keyed by the SHA-256 of the code
(and of which Flink jar did the work) and only does the work for code it has not seen. (The
splitter numbers the fields and methods it adds from a JVM-wide counter, so two splits of
one class differ in those numbers only; either is a valid class.) The agent wraps nothing
else; if a Flink version lacks either method, it leaves that class alone and says so.

On with ``flink.codesplit_cache`` where the plans are cached (``flink.plan_cache``; the same
folder's ``codesplit/``), in JVMs genai-apm starts itself: never on Managed Flink or under
`flink run`, whose client JVM is not ours.
"""

from __future__ import annotations

from pathlib import Path

from genai_apm.flink import plan_cache
from genai_apm.home import jars_dir
from genai_apm.settings.config import Settings

AGENT_JAR = "genai-apm-codesplit-cache.jar"
# answers kept of each kind, most recently used first (~80 MB at most): the `all` job has ~200
# classes (splits of 1-60 KB, ~20 KB of bytecode each), make test ~1,200
KEEP = 3000


def folder(settings: Settings) -> Path | None:
    """Where the answers live (beside the plans); None when start-up caching is off."""
    plans = plan_cache.folder(settings)
    if plans is None or not settings.flink.codesplit_cache:
        return None
    return plans / "codesplit"


def jvm_option(settings: Settings) -> str | None:
    """``-javaagent:...`` for the local Flink JVM, or None (off, or the jar not built)."""
    where = folder(settings)
    agent = jars_dir("agent") / AGENT_JAR
    if where is None or not agent.is_file():
        return None
    where.mkdir(parents=True, exist_ok=True)
    prune(where)
    return f"-javaagent:{agent}={where}"


def prune(where: Path, keep: int = KEEP) -> None:
    """Drop all but the ``keep`` most recently used splits and compiled classes (a hit
    touches its file)."""
    for answers in (list(where.glob("*.java")), list((where / "classes").glob("*.classes"))):
        if len(answers) <= keep:
            continue
        answers.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        for old in answers[keep:]:
            old.unlink(missing_ok=True)
