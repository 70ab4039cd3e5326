"""`genai-apm compact` on S3 (the session's moto server): a closed hour of many checkpoint
files becomes one object, and `genai-apm query` returns the same rows before and after."""

from __future__ import annotations

import pytest

from genai_apm import aws, cli, compact
from genai_apm.serve import query
from tests.compact_fixture import HOUR, hour_of_minute_files

pytestmark = pytest.mark.integration

BUCKET = "genai-apm-compact-it"
SQL = (
    "SELECT dt, hour, window_start, model_id, requests, latency_p99_ms, "
    "CAST(latency_hist AS VARCHAR) AS hist FROM latency_1m ORDER BY ALL"
)


def test_a_closed_hour_on_s3_becomes_one_object(settings, unique, tmp_path, monkeypatch, capsys):
    s = settings.replace(
        aws={"access_key_id": "testing", "secret_access_key": "testing"},
        output={"tables_path": f"s3://{BUCKET}/{unique}"},
    )
    s3 = aws.client(s.aws, "s3")
    s3.create_bucket(Bucket=BUCKET)
    local = tmp_path / "tables"
    folder, _ = hour_of_minute_files(local, "latency_1m", HOUR, files=15)
    for f in folder.iterdir():
        s3.upload_file(str(f), BUCKET, f"{unique}/{f.relative_to(local).as_posix()}")
    prefix = f"{unique}/latency_1m/dt={HOUR:%Y-%m-%d}/hour=13/"

    def keys() -> list[str]:
        answer = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return sorted(o["Key"][len(prefix) :] for o in answer.get("Contents", []))

    before = query.run(s, SQL)
    assert len(before[1]) == 60 * 3 and len(keys()) == 16

    # the files were just uploaded: not closed until they are old enough
    assert compact.run(s, out=lambda _: None).merged == {}
    assert len(keys()) == 16

    # as the CLI runs it right after a finished backfill
    monkeypatch.setenv("GENAI_APM_OUTPUT_TABLES_PATH", s.output.tables_path)
    monkeypatch.setenv("GENAI_APM_AWS_ENDPOINT_URL", s.aws.endpoint_url)
    monkeypatch.setenv("GENAI_APM_AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("GENAI_APM_AWS_SECRET_ACCESS_KEY", "testing")
    assert cli.main(["compact", "--after-minutes", "0"]) == 0
    assert "latency_1m: 1 partitions, 15 files -> 1" in capsys.readouterr().out
    names = keys()
    assert names[0] == "_SUCCESS" and len(names) == 2
    assert names[1].startswith(compact.MERGED_PREFIX) and names[1].endswith(".parquet")
    assert query.run(s, SQL) == before
