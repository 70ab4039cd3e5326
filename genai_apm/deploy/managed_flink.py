"""`make package`: the zip Amazon Managed Service for Apache Flink runs (infra/aws/pipeline.yaml).

Layout (the run options in infra/aws/pipeline.yaml point at these paths):
  main.py                                   infra/managed-flink/main.py: runs the named job
  python/genai_apm/...                      the package, laid out as pip installs it
  .cache/jars/flink/genai-apm-managed-flink.jar   connectors for Flink 2.2 (infra/managed-flink)
  application_properties.json               example runtime properties, for a local try-out

The runtime is FLINK-2_2 (Java 17, Python 3.12, PyFlink and its dependencies preinstalled;
no pip at deploy time). genai_apm's job code needs nothing beyond PyFlink and the standard
library; tests/integration/test_managed_flink_package.py runs the zip as the service does.

The jar must be built first (``make package`` runs Maven with the managed-flink profile).
Entries are sorted and dated 1980-01-01, so the same sources give the same zip, byte for byte.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
import zipfile
from pathlib import Path

from genai_apm.deploy import aws_templates
from genai_apm.errors import GenaiApmError

ROOT = Path(__file__).resolve().parents[2]
JAR = Path(".cache/jars/managed-flink/genai-apm-managed-flink.jar")
MAIN = Path("infra/managed-flink/main.py")
PROPERTIES = aws_templates.AWS_DIR / "application_properties.json"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def build_jar(root: Path = ROOT) -> Path:
    """Maven's managed-flink profile: the shaded connector jar (what `make package` runs)."""
    import shutil
    import subprocess

    mvn = shutil.which("mvn")
    if mvn is None:
        raise GenaiApmError("Maven (mvn) is not on PATH; it builds the package's connector jar")
    pom = root / "infra" / "pom.xml"
    command = [mvn, "-q", "-B", "-f", str(pom), "-P", "managed-flink", "-pl", "managed-flink"]
    result = subprocess.run([*command, "package"], capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stdout + result.stderr).strip().splitlines()[-1:] or ["(no output)"]
        raise GenaiApmError(f"Maven could not build {JAR}: {last[0]}")
    return root / JAR


def python_files(root: Path = ROOT) -> dict[str, Path]:
    """Path inside python/ -> source file, for every package and package-data file that
    pyproject.toml declares (its package-dir mapping: jobs/ is genai_apm/jobs, ...)."""
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    setup = project["tool"]["setuptools"]
    package_dir: dict[str, str] = setup["package-dir"]
    data: dict[str, list[str]] = setup.get("package-data", {})
    files: dict[str, Path] = {}
    for package in setup["packages"]:
        # a sub-package without its own mapping lives inside its nearest mapped ancestor's
        # folder (genai_apm.deploy.aws_templates: genai_apm/ + deploy/aws_templates)
        parts = package.split(".")
        mapped = next(n for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in package_dir)
        source = root / package_dir[".".join(parts[:mapped])] / "/".join(parts[mapped:])
        target = package.replace(".", "/")
        patterns = ["*.py", *data.get(package, [])]
        for pattern in patterns:
            for path in sorted(source.glob(pattern)):
                if path.is_file():
                    files[f"{target}/{path.relative_to(source).as_posix()}"] = path
    return files


def entries(root: Path = ROOT, jar: Path | None = None) -> dict[str, Path]:
    """Name in the zip -> file on disk."""
    jar = jar or root / JAR
    if not jar.is_file():
        raise GenaiApmError(f"{JAR} is missing: run `make package` (Maven builds it first)")
    out = {
        aws_templates.PACKAGE_MAIN: root / MAIN,
        PROPERTIES.name: root / PROPERTIES,
        aws_templates.PACKAGE_JAR: jar,
    }
    out |= {
        f"{aws_templates.PACKAGE_PYTHON}{name}": path for name, path in python_files(root).items()
    }
    return out


def build(output: Path, root: Path = ROOT, jar: Path | None = None) -> Path:
    files = entries(root, jar)
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, files[name].read_bytes())
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m genai_apm.deploy.managed_flink", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--output", type=Path, default=ROOT / "dist" / aws_templates.PACKAGE_ZIP, help="zip path"
    )
    args = parser.parse_args(argv)
    try:
        out = build(args.output)
    except GenaiApmError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    size = out.stat().st_size / 1e6
    print(
        f"wrote {out} ({size:.1f} MB): upload it to the ArtifactBucket of infra/aws/pipeline.yaml"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
