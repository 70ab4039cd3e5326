"""Where the project's own files live: the checkout (pom, infra) and the ignored jar cache."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from genai_apm.errors import GenaiApmError


def project_root() -> Path:
    """The checkout holding ``infra/pom.xml``: ``$GENAI_APM_HOME``, else beside this package."""
    if os.environ.get("GENAI_APM_HOME"):
        return Path(os.environ["GENAI_APM_HOME"]).resolve()
    return Path(__file__).resolve().parents[1]


def jars_dir(group: str) -> Path:
    """``.cache/jars/<group>``: the Maven module of that name copies its classpath there."""
    return project_root() / ".cache" / "jars" / group


def jars(group: str) -> list[Path]:
    """The jars of one group, resolving them with Maven first if the cache is empty."""
    found = sorted(jars_dir(group).glob("*.jar"))
    if found:
        return found
    resolve_jars()
    found = sorted(jars_dir(group).glob("*.jar"))
    if not found:
        raise GenaiApmError(f"no jars in {jars_dir(group)} after resolving infra/pom.xml")
    return found


# Flink filesystem plugins (infra/flink-plugins): each in its own folder, as Flink requires
PLUGINS = ("s3-fs-hadoop",)


def plugins_dir() -> Path:
    """``.cache/jars/plugins``, FLINK_PLUGINS_DIR for every Flink process genai-apm starts;
    resolves the jars first if a plugin's folder is empty."""
    for plugin in PLUGINS:
        jars(f"plugins/{plugin}")
    return jars_dir("plugins")


def resolve_jars() -> None:
    """Run Maven on ``infra/pom.xml``; a no-op network-wise once ~/.m2 has the artifacts."""
    pom = project_root() / "infra" / "pom.xml"
    if not pom.is_file():
        raise GenaiApmError(f"{pom} not found; set GENAI_APM_HOME to the genai-apm checkout")
    mvn = shutil.which("mvn")
    if mvn is None:
        raise GenaiApmError("Maven (mvn) is not on PATH; install it to resolve the JVM jars")
    result = subprocess.run(
        [mvn, "-q", "-B", "-f", str(pom), "package"], capture_output=True, text=True
    )
    if result.returncode != 0:
        last = (result.stdout + result.stderr).strip().splitlines()[-1:] or ["(no output)"]
        raise GenaiApmError(f"Maven could not resolve the jars in {pom}: {last[0]}")


def java_executable() -> str:
    """``$JAVA_HOME/bin/java`` or ``java`` on PATH; Kafka 4 and Flink 2 need Java 17+."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise GenaiApmError(
            "Java is not installed (no JAVA_HOME, no java on PATH); install JDK 17+"
        )
    return found
