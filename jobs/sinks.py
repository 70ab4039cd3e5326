"""The sink factory every analytic writes through, bound to one job run: its name (Kafka
transactional ids), its settings, and whether it streams to Kafka or writes files only
(a backfill).

Sink table names follow the outputs they write: a declared output's Parquet table is
``<table>_table`` under ``<tables_path>/<table>/``, its topic's sink ``<topic>_out`` (the
attribute of ``settings.topics``), and an event stream that a backfill writes as JSON lines
instead (alerts, dead letters, anomaly events) ``<topic>_file``. Each sink is created once per
run, however many analytics of a combined job write it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from genai_apm.schemas.outputs import Columns
from genai_apm.settings.config import Settings


@dataclass(frozen=True)
class Output:
    """Where the rows of one declared output go: a Kafka sink (None in a backfill) and a
    Parquet table partitioned by ``partition_time``."""

    topic: str | None
    table: str
    partition_time: str


class Sinks:
    def __init__(self, t_env, settings: Settings, job: str, *, kafka: bool, tables_path: str):
        from genai_apm.connectors.kafka import sink_delivery

        self.t_env, self.settings, self.job = t_env, settings, job
        self.kafka, self.tables_path = kafka, tables_path
        # the transactional ids of exactly-once sinks must differ between jobs writing a topic
        self.delivery = sink_delivery(settings.flink, job)
        self._created: set[str] = set()

    def _create(self, name: str, ddl) -> str:
        if name not in self._created:
            self.t_env.execute_sql(ddl())
            self._created.add(name)
        return name

    def parquet(self, table: str, columns: Columns) -> str:
        from genai_apm.connectors import files

        return self._create(
            f"{table}_table",
            lambda: files.parquet_table_ddl(
                f"{table}_table", f"{self.tables_path}/{table}", columns
            ),
        )

    def topic(
        self,
        topic: str,
        columns: Columns,
        *,
        key: Sequence[str] = (),
        primary_key: Sequence[str] | None = None,
    ) -> str | None:
        """The sink of ``settings.topics.<topic>``: append-only JSON keyed by ``key``, or
        updating (upsert-kafka) by ``primary_key``; None without Kafka."""
        if not self.kafka:
            return None
        from genai_apm.connectors import kafka

        name = f"{topic}_out"
        where, k = getattr(self.settings.topics, topic), self.settings.kafka
        if primary_key is not None:
            return self._create(
                name,
                lambda: kafka.upsert_sink_ddl(
                    name, where, k, columns, primary_key=primary_key, delivery=self.delivery
                ),
            )
        return self._create(
            name,
            lambda: kafka.json_sink_ddl(
                name, where, k, columns, key_fields=key, delivery=self.delivery
            ),
        )

    def events(self, topic: str, folder: str, columns: Columns, *, key: Sequence[str] = ()) -> str:
        """A stream that must be kept in a backfill too (alerts, dead letters): its topic when
        streaming, JSON lines under ``<tables_path>/<folder>`` otherwise."""
        if self.kafka:
            return self.topic(topic, columns, key=key)
        return self.files(folder, columns, name=f"{topic}_file")

    def files(self, folder: str, columns: Columns, *, name: str | None = None) -> str:
        """Append-only JSON lines under ``<tables_path>/<folder>``."""
        from genai_apm.connectors import files

        name = name or f"{folder}_file"
        return self._create(
            name,
            lambda: files.json_lines_table_ddl(name, f"{self.tables_path}/{folder}", columns),
        )

    def output(self, table: str) -> Output:
        """The declared output ``table`` (genai_apm.schemas.outputs): its Parquet table and,
        when streaming, its topic with the declared key."""
        from genai_apm.schemas.outputs import declared

        d = declared(self.settings, table)
        topic = self.topic(d.topic, d.columns, key=d.key) if d.topic else None
        return Output(topic, self.parquet(d.name, d.columns), d.partition_time)

    def write(self, statements, output: Output, relation: str, columns: str = "*") -> None:
        """Insert ``SELECT columns FROM relation`` into the output's topic and table."""
        from genai_apm.connectors.files import partition_values

        if output.topic:
            statements.add_insert_sql(
                f"INSERT INTO `{output.topic}` SELECT {columns} FROM {relation}"
            )
        statements.add_insert_sql(
            f"INSERT INTO `{output.table}` "
            f"SELECT {columns}, {partition_values(output.partition_time)} FROM {relation}"
        )
