"""`genai-apm` commands that read what the jobs wrote: topics, tables, the HTML report,
compaction, the CloudWatch export and the Athena DDL."""

from __future__ import annotations

import json
import sys

from genai_apm.cli.common import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, load_settings


def cmd_consume(args) -> int:
    import datetime as dt

    from genai_apm.kafka import io as kafka_io
    from genai_apm.record_filter import RecordFilter, parse_since, table_columns, table_rows
    from genai_apm.serve import query

    settings = load_settings(args)
    keep = RecordFilter(args.model, args.app, parse_since(args.since, dt.datetime.now(dt.UTC)))
    filtering = keep != RecordFilter()
    shown, table = 0, []
    for value in kafka_io.consume(
        settings.kafka, args.topic, from_beginning=not args.latest, idle_timeout_s=args.idle_timeout
    ):
        try:
            record = json.loads(value)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            if filtering:  # a record that is not a JSON object has no field to match
                continue
            print(value.decode(errors="replace"))
        elif not keep(record):
            continue
        elif args.pretty:
            table.append(record)  # printed at the end: columns must be as wide as their data
        else:
            print(json.dumps(record, sort_keys=False))
        shown += 1
        if args.max and shown >= args.max:
            break
    if args.pretty and table:
        columns = table_columns(table, args.columns.split(",") if args.columns else None)
        print(query.format_table(columns, table_rows(table, columns)))
    print(f"-- {shown} record(s) from {args.topic}", file=sys.stderr)
    return 0


def cmd_query(args) -> int:
    from genai_apm.serve import query

    columns, rows = query.run(load_settings(args), args.sql, tables_path=args.tables_path)
    if args.format == "json":
        for row in rows:
            print(json.dumps(dict(zip(columns, row, strict=True)), default=str))
    elif args.format == "csv":
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    else:
        print(query.format_table(columns, rows))
    return 0


def cmd_report(args) -> int:
    from genai_apm.kafka import io as kafka_io
    from genai_apm.serve import report

    settings = load_settings(args)
    alerts = None
    if args.alerts_from_kafka:
        alerts = kafka_io.consume_json(
            settings.kafka, settings.topics.alerts, idle_timeout_s=3.0, until_end=True
        )
    written = report.build(
        settings, args.out, tables_path=args.tables_path, since=args.since, alerts=alerts
    )
    print(
        f"report: {written.path} ({written.charts} charts, {written.empty_panels} panels "
        "without data); open it in a browser"
    )
    return 0


def cmd_compact(args) -> int:
    from genai_apm import compact

    report = compact.run(
        load_settings(args),
        tables_path=args.tables_path,
        tables=args.table or None,
        after_minutes=args.after_minutes,
        out=lambda line: print(line, file=sys.stderr),
    )
    print(report.summary())
    return 0


def cmd_export(args) -> int:
    from genai_apm.export import cloudwatch

    settings = load_settings(args)
    if args.emf:
        settings = settings.replace(cloudwatch={"output": "emf"})
    where = "stdout (EMF)" if settings.cloudwatch.output == "emf" else "CloudWatch"
    print(f"exporting the metric topics to {where}", file=sys.stderr, flush=True)
    # Ctrl-C leaves the offsets of undelivered records uncommitted: they are sent again
    stats = cloudwatch.export(settings, once=args.once)
    print(stats.summary(), file=sys.stderr)
    return 0


def cmd_athena_ddl(args) -> int:
    from genai_apm.deploy import athena

    return athena.run(args)


def add_commands(add) -> None:
    """This module's subcommands and their arguments (``add(name, fn, help)``)."""
    s = add(
        "consume",
        cmd_consume,
        "print a topic's records as JSON lines, or as a table (--pretty), filtered",
    )
    s.add_argument("topic", help="e.g. genai.metrics.latency, genai.alerts")
    s.add_argument("--latest", action="store_true", help="only records arriving from now on")
    s.add_argument(
        "--idle-timeout",
        type=POSITIVE,
        default=5.0,
        help="stop after this many seconds without a record",
    )
    s.add_argument("--max", type=AT_LEAST_ONE, help="stop after this many records")
    s.add_argument("--model", help="only records with this model_id")
    s.add_argument("--app", help="only records with this app_id")
    s.add_argument(
        "--since",
        metavar="WHEN",
        help="only records from then on (by window_start, alert_time, session_start or "
        "event_time): ISO-8601 (2026-01-01T00:00Z) or a duration back from now (30m, 6h, 2d)",
    )
    s.add_argument(
        "--pretty", action="store_true", help="an aligned table when the records are read"
    )
    s.add_argument(
        "--columns",
        metavar="A,B,...",
        help="the table's columns (default: every field that is not a map or list)",
    )
    s = add("query", cmd_query, "run SQL with DuckDB over the Parquet tables (local or s3://)")
    s.add_argument("sql", help='e.g. "SELECT model_id, SUM(requests) FROM latency_1m GROUP BY 1"')
    s.add_argument("--tables-path", help="default: output.tables_path")
    s.add_argument(
        "--format", choices=["table", "csv", "json"], default="table", help="default table"
    )
    s = add(
        "report",
        cmd_report,
        "write a self-contained HTML dashboard from the Parquet tables (local or s3://)",
    )
    s.add_argument("--tables-path", help="default: output.tables_path")
    s.add_argument(
        "--out", default="report.html", metavar="FILE", help="the HTML file (default report.html)"
    )
    s.add_argument(
        "--since",
        metavar="WHEN",
        help="only windows from then on: ISO-8601 (2026-01-01T00:00Z) or a duration back from "
        "the newest window in the tables (30m, 6h, 2d)",
    )
    s.add_argument(
        "--alerts-from-kafka",
        action="store_true",
        help="also read the alert transitions on the alerts topic (streaming jobs send them "
        "there; bounded runs write them under <tables>/alerts)",
    )
    s = add(
        "compact",
        cmd_compact,
        "merge each closed hour of the Parquet tables into one file (local or s3://)",
    )
    s.add_argument("--tables-path", help="default: output.tables_path")
    s.add_argument("--table", action="append", help="only this table (repeatable)")
    s.add_argument(
        "--after-minutes",
        type=NON_NEGATIVE,
        help="an hour is closed this long after it ended and its last change "
        "(default: output.compact_after_minutes; 0 right after a finished backfill)",
    )
    s = add("export", cmd_export, "publish derived metric topics to a monitoring service")
    s.add_argument("target", choices=["cloudwatch"], help="the monitoring service")
    s.add_argument("--once", action="store_true", help="drain what is there, then exit")
    s.add_argument("--emf", action="store_true", help="EMF JSON lines on stdout, not the API")
    s = add("athena-ddl", cmd_athena_ddl, "write infra/athena (Athena DDL and example queries)")
    from genai_apm.deploy.athena import add_arguments

    add_arguments(s)
