"""Flink's code splitter and Janino answered from disk (genai_apm/flink/codesplit_cache.py):
the splitter's answers are Flink's, a class compiled from cached bytecode behaves as Janino's,
one file per distinct input, and the next JVM reads them back instead of doing the work."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

from genai_apm.flink import codesplit_cache

pytestmark = pytest.mark.integration

# a generated-looking class with a method long enough to be split at a small limit
CODE = textwrap.dedent(
    """
    public class Gen {
      public int f(int a) {
        int b = a + 1;
        int c = b * 2;
        int d = c - 3;
        int e = d / 4;
        return a + b + c + d + e;
      }
    }
    """
)

# in a JVM of its own (this test process's JVM may have started without the agent): the
# wrapped splitter and Flink's original (renamed split$uncached) on the same inputs
PROBE = textwrap.dedent(
    """
    import json, sys
    from genai_apm.flink import env
    from genai_apm.settings import config

    settings = config.load(path=None, environ={}).replace(
        flink={"plan_cache_dir": sys.argv[1]}, stack={"state_dir": sys.argv[2]}
    )
    env.table_env(settings, "probe")
    from pyflink.java_gateway import get_gateway

    splitter = get_gateway().jvm.org.apache.flink.table.codesplit.JavaCodeSplitter
    code = sys.argv[3]
    out = {}
    for limit in (60, 60, 4000):
        out.setdefault(str(limit), []).append(splitter.split(code, limit, 10000))
    out["original"] = {
        str(limit): getattr(splitter, "split$uncached")(code, limit, 10000) for limit in (60, 4000)
    }
    jvm = get_gateway().jvm
    compile_utils = jvm.org.apache.flink.table.runtime.generated.CompileUtils
    loader = jvm.Thread.currentThread().getContextClassLoader()
    gen = compile_utils.compile(loader, "Gen", out["60"][0])
    out["f"] = [gen.getDeclaredConstructor(None).newInstance(None).f(a) for a in (5, -7, 100)]
    print("PROBE " + json.dumps(out))
    """
)


def probe(plans, state) -> dict:
    # a JVM of its own: nothing of this worker's gateway (PyFlink marks a process that has one,
    # and its JVM_ARGS would carry this worker's agent and folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFLINK_") and k != "JVM_ARGS"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(plans), str(state), CODE],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    for line in done.stdout.splitlines():
        if line.startswith("PROBE "):
            return json.loads(line.removeprefix("PROBE "))
    raise AssertionError(done.stderr[-3000:])


def f(a: int) -> int:
    """Gen.f in Python (Java's int division truncates toward zero)."""
    b = a + 1
    c = b * 2
    d = c - 3
    e = int(d / 4)
    return a + b + c + d + e


def numbered(code: str) -> str:
    """The splitter names the fields and methods it adds from JVM-wide counters (``$7``,
    ``_split3``):
    the same input split twice differs only there, and each answer is consistent within
    its class, which is all that is ever compiled."""
    return re.sub(r"(\$|_split)\d+", r"\1N", code)


def test_split_answers_are_flinks_and_read_back_by_the_next_jvm(tmp_path):
    plans = tmp_path / "plans"
    first = probe(plans, tmp_path / "s1")
    # Flink's answers, for a code it had to split and one it did not; the repeat is the
    # first answer again (read back), not a new split with other counter values
    assert first["original"]["60"] != CODE  # the small limit really split the method
    assert numbered(first["60"][0]) == numbered(first["original"]["60"])
    assert first["60"][1] == first["60"][0]
    assert numbered(first["4000"][0]) == numbered(first["original"]["4000"])
    # the split class compiled by Janino computes what the source says
    assert first["f"] == [f(a) for a in (5, -7, 100)]
    answers = sorted((plans / "codesplit").glob("*.java"))
    assert len(answers) == 2  # one per distinct (code, limits)
    (compiled,) = (plans / "codesplit" / "classes").glob("*.classes")
    assert {a.read_text() for a in answers} == {first["60"][0], first["4000"][0]}

    # the next JVM reads them back: same answers, no new file, the files touched
    for a in answers:
        old = a.stat().st_mtime_ns
        os.utime(a, ns=(old - 10**9, old - 10**9))
    before = {a: a.stat().st_mtime_ns for a in [*answers, compiled]}
    second = probe(plans, tmp_path / "s2")
    assert second["60"] == first["60"] and second["4000"] == first["4000"]
    assert second["f"] == first["f"]  # the class defined from the cached bytecode
    assert sorted((plans / "codesplit").glob("*.java")) == answers
    assert list((plans / "codesplit" / "classes").glob("*.classes")) == [compiled]
    assert all(a.stat().st_mtime_ns > before[a] for a in before)


def test_prune_keeps_the_most_recently_used(tmp_path):
    (tmp_path / "classes").mkdir()
    for i in range(5):
        for f in (tmp_path / f"{i}.java", tmp_path / "classes" / f"{4 - i}.classes"):
            f.write_text(str(i))
            os.utime(f, (1000 + i, 1000 + i))
    codesplit_cache.prune(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.glob("*.java")) == ["3.java", "4.java"]
    assert sorted(p.name for p in tmp_path.glob("classes/*")) == ["0.classes", "1.classes"]
