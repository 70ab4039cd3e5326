"""One typed, frozen settings object, loaded once from a TOML file and environment variables.

Precedence, lowest to highest: defaults below, the config file (``--config``, ``$GENAI_APM_CONFIG``
or ``./genai-apm.toml``), then ``GENAI_APM_<SECTION>_<KEY>`` environment variables, e.g.
``GENAI_APM_KAFKA_BOOTSTRAP_SERVERS=b-1.msk:9098``. Unknown keys are errors, not silently ignored,
so a typo never leaves a production job on a default endpoint.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genai_apm.errors import GenaiApmError

ENV_PREFIX = "GENAI_APM_"
# variables that locate settings or the checkout (genai_apm.home) instead of holding a setting
NOT_SETTINGS = frozenset({f"{ENV_PREFIX}{n}" for n in ("CONFIG", "APP_PROPERTIES", "HOME")})
SECRET_KEYS = frozenset(
    {
        "sasl_password",
        "ssl_key_password",
        "aws_secret_access_key",
        "secret_access_key",
        "user_id_salt",
    }
)


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: str = ""
    # the Kafka client inside Flink jobs is the one flink-sql-connector-kafka relocates (the
    # default build); false where the plain client is bundled (the Managed Flink package,
    # `make package`): login module class names differ, and only the plain one takes MSK IAM
    shaded_client: bool = True
    # TLS, for security_protocol SSL or SASL_SSL (docs/security.md). PEM files, read by both
    # kafka-python and the Java client inside Flink. ssl_ca_file: the CA certificates the
    # broker's certificate must chain to; empty: the system's (Python) / the JVM's trust store.
    ssl_ca_file: str = ""
    # client authentication (mTLS), optional: ONE PEM file holding the certificate chain and its
    # PKCS#8 private key, because the Java client reads both from one keystore file, and the
    # Java client only accepts an encrypted key there, so ssl_key_password is then required
    ssl_cert_file: str = ""
    ssl_key_password: str = ""
    # verify that the broker's certificate names the host we connected to
    ssl_check_hostname: bool = True
    # earliest-offset | latest-offset | group-offsets (committed, falling back to earliest)
    startup_mode: str = "group-offsets"
    consumer_group: str = "genai-apm"
    partitions: int = 2
    # how long CLI clients wait for a broker before saying it cannot be reached
    connect_timeout_s: float = 10.0


@dataclass(frozen=True)
class TopicSettings:
    invocations: str = "genai.invocations"
    spans: str = "genai.spans"
    latency: str = "genai.metrics.latency"
    late: str = "genai.late"
    late_counts: str = "genai.metrics.late"
    deadletter: str = "genai.deadletter"
    pipeline: str = "genai.metrics.pipeline"
    errors: str = "genai.metrics.errors"
    cost: str = "genai.metrics.cost"
    # per SLO and minute: SLI, error budget, burn rates (jobs/slo.py)
    slo: str = "genai.metrics.slo"
    # per provider, model and region and minute: quota use, headroom, forecast (jobs/slo.py)
    quota: str = "genai.metrics.quota"
    alerts: str = "genai.alerts"
    anomalies: str = "genai.anomalies"
    # per window: how many anomaly incidents are open (a gauge for CloudWatch)
    anomaly_counts: str = "genai.metrics.anomalies"
    agents: str = "genai.metrics.agents"
    sessions: str = "genai.metrics.sessions"
    traces: str = "genai.metrics.traces"
    # prompt and response bodies, redacted, when privacy.store_bodies is on (docs/security.md,
    # "Prompt and response bodies"): a topic of its own, so its ACLs and retention can differ
    bodies: str = "genai.bodies"


@dataclass(frozen=True)
class IngestSettings:
    # "topic=format" pairs; format is native, bedrock or otlp-json. The ingest job writes
    # what they carry, validated, to topics.invocations and topics.spans.
    sources: tuple[str, ...] = ("genai.bedrock-logs=bedrock", "genai.otlp-spans=otlp-json")
    metrics_window_s: int = 60


LOCAL_GCS = ("", "ParallelGC", "G1GC", "SerialGC", "ZGC")  # -XX:+Use<name>


@dataclass(frozen=True)
class FlinkSettings:
    parallelism: int = 1
    # Bounded out-of-orderness of event time: larger means fewer late events, later results.
    watermark_delay_s: int = 5
    # A partition with no data for this long stops holding back the watermark.
    idle_timeout_s: int = 10
    # on-periodic (every 200 ms; cheap) or on-event (after every record: which events are
    # late then depends only on their order, so a backfill and a replay agree exactly)
    watermark_emit: str = "on-periodic"
    rest_address: str = "127.0.0.1:8081"
    # Parquet files and exactly-once Kafka output are committed on checkpoints, so a
    # read_committed consumer sees a closed window up to this much after it is written
    # (bench/freshness.py). Each checkpoint also flushes every window aggregation's local
    # buffer and commits a file per table partition written since the last one (merged by
    # the Parquet sinks' auto-compaction, docs/sinks.md)
    checkpoint_interval_s: int = 5
    # the interval of bounded runs (backfills, the demo, tests): nothing reads their output
    # before the end, so fewer barriers are cheaper (2 s instead of 10 s cost ~22% more
    # processing time on the `all` job). The end does not wait for it: once every task has
    # read all its input, Flink's JobMaster triggers the final checkpoint at once
    # (VertexEndOfDataListener; "Triggering a manual checkpoint" in the job log)
    bounded_checkpoint_interval_s: int = 10
    # where checkpoints go (file:// or s3://); empty: <stack.state_dir>/checkpoints. Never the
    # JobManager's memory: it caps state at 5 MiB and a bigger job then fails every
    # checkpoint and restarts without end
    checkpoint_dir: str = ""
    # hashmap (state on the JVM heap: fast, bounded by TaskManager memory), rocksdb or forst
    # (state on local disk, for state larger than memory; both ship in Flink's distribution)
    state_backend: str = "hashmap"
    # exactly-once: Kafka sinks write in transactions committed when a checkpoint completes,
    # so read_committed consumers never see a record twice after a failure, and see each one
    # up to a checkpoint interval later; at-least-once: records are visible at once, and a
    # restart from a checkpoint writes again what followed it (docs/delivery.md)
    delivery_guarantee: str = "exactly-once"
    # Kafka transactional ids are <prefix>.<job>.<sink table>.<topic>: two deployments sharing
    # a Kafka cluster need different prefixes, or they fence each other's producers
    transactional_id_prefix: str = "genai-apm"
    # a transaction open longer than this is aborted by the broker: it must cover a checkpoint
    # interval plus a restart, and stay within the broker's transaction.max.timeout.ms
    # (15 minutes by default, also on Amazon MSK)
    transaction_timeout_s: int = 900
    # resume a job from this savepoint or retained checkpoint (file:// or s3:// path to the
    # chk-N or savepoint folder); empty: start fresh from kafka.startup_mode
    restore_from: str = ""
    # true on Amazon Managed Service for Apache Flink (infra/aws/pipeline.yaml sets it): the
    # application's configuration decides checkpointing, state backend, parallelism and
    # restarts there, and from its Flink 2.2 runtime on the service throws when job code sets
    # an option missing from its list of programmatic ones (genai_apm.flink.env.SERVICE_SETTABLE)
    service_configured: bool = False
    # reuse a job's optimised plan when nothing that shapes it changed (flink/plan_cache.py:
    # the `all` job's submission about halves); folder empty: <project>/.cache/plans
    plan_cache: bool = True
    plan_cache_dir: str = ""
    # remember the planner's generated-code splitter's answers in <plan cache>/codesplit
    # (flink/codesplit_cache.py: most of a cached plan's submission); needs plan_cache
    codesplit_cache: bool = True
    # the standalone cluster's processes (`genai-apm cluster up`)
    jobmanager_memory: str = "1024m"
    taskmanager_memory: str = "1536m"
    task_slots: int = 2
    # jobs run without a cluster (`genai-apm submit`, the demo, backfills, tests) run in
    # PyFlink's local MiniCluster inside the Java gateway JVM: its heap (-Xmx; unset, the JVM
    # takes a quarter of the machine's memory and a long run grew to 6.9 GB) and its
    # TaskManager's managed memory (RocksDB/ForSt state, Python workers) and network buffers
    local_heap: str = "1024m"
    local_managed_memory: str = "128m"
    local_network_memory: str = "64m"
    # the garbage collector of the local JVM in bounded runs (backfills, the demo, tests, the
    # bench's throughput rows): the parallel one, because the jobs allocate a short-lived row
    # per record and operator and G1's concurrent work took a core's share on this 2-core
    # machine (`bench/run.py --rows all_p1`, 2 interleaved rounds: 26-29k -> 37-39k events/s
    # at 5,000 calls/s of event time, 9.5k -> 11.2-11.4k at 50). Unbounded jobs keep the JVM's
    # default (G1): with it the 10-minute soak kept up, and with the parallel collector its
    # only run fell behind (bench/results/soak-parallelgc-2026-12-03.json). "" leaves the
    # default everywhere; a -XX:+Use*GC in JVM_ARGS wins.
    local_gc: str = "ParallelGC"

    def __post_init__(self) -> None:
        if self.local_gc not in LOCAL_GCS:
            raise GenaiApmError(
                f"flink.local_gc must be one of {', '.join(map(repr, LOCAL_GCS))}, "
                f"not {self.local_gc!r}"
            )
        if self.watermark_emit not in ("on-periodic", "on-event"):
            raise GenaiApmError(
                f"flink.watermark_emit must be on-periodic or on-event, not {self.watermark_emit!r}"
            )
        if self.delivery_guarantee not in DELIVERY_GUARANTEES:
            raise GenaiApmError(
                f"config flink.delivery_guarantee: {self.delivery_guarantee!r} is not one of "
                + ", ".join(DELIVERY_GUARANTEES)
            )
        if self.state_backend not in STATE_BACKENDS:
            raise GenaiApmError(
                f"config flink.state_backend: {self.state_backend!r} is not one of "
                + ", ".join(STATE_BACKENDS)
            )
        for name in ("checkpoint_interval_s", "bounded_checkpoint_interval_s"):
            if getattr(self, name) < 1:
                raise GenaiApmError(f"config flink.{name}: must be at least 1 second")
        if self.transaction_timeout_s <= max(
            self.checkpoint_interval_s, self.bounded_checkpoint_interval_s
        ):
            raise GenaiApmError(
                "config flink.transaction_timeout_s must exceed flink.checkpoint_interval_s: "
                "a Kafka transaction stays open for a whole checkpoint interval"
            )


DELIVERY_GUARANTEES = ("exactly-once", "at-least-once")
STATE_BACKENDS = ("hashmap", "rocksdb", "forst")


@dataclass(frozen=True)
class LatencyJobSettings:
    tumbling_minutes: int = 1
    sliding_minutes: int = 5
    sliding_hop_minutes: int = 1
    percentiles: tuple[float, ...] = (0.5, 0.9, 0.95, 0.99)
    # DDSketch-style log buckets: any quantile read back from them is within this relative
    # error of the exact value at its rank
    histogram_relative_error: float = 0.01

    def __post_init__(self) -> None:
        _check_windows("latency", self)
        _check_percentiles("latency", self.percentiles)
        # gamma = (1 + a) / (1 - a) must be a growth factor above 1
        if not 0 < self.histogram_relative_error < 1:
            raise GenaiApmError(
                "config latency.histogram_relative_error: must be in (0, 1), not "
                f"{self.histogram_relative_error}"
            )


@dataclass(frozen=True)
class ErrorsJobSettings:
    tumbling_minutes: int = 1
    sliding_minutes: int = 5
    sliding_hop_minutes: int = 1

    def __post_init__(self) -> None:
        _check_windows("errors", self)


def _check_windows(section: str, s: LatencyJobSettings | ErrorsJobSettings) -> None:
    if min(s.tumbling_minutes, s.sliding_minutes, s.sliding_hop_minutes) <= 0:
        raise GenaiApmError(f"config {section}: window sizes must be positive")
    # Flink's HOP window needs a size that is a whole number of hops
    if s.sliding_minutes % s.sliding_hop_minutes:
        raise GenaiApmError(f"config {section}.sliding_hop_minutes must divide sliding_minutes")


def _check_percentiles(section: str, percentiles: tuple[float, ...]) -> None:
    for p in percentiles:
        if not 0 <= p <= 1:
            raise GenaiApmError(f"config {section}.percentiles: {p} is not in [0, 1]")


@dataclass(frozen=True)
class AlertSettings:
    # "name:metric:scope:op:threshold:window" over the errors job's rows (docs/alerts-and-cost.md);
    # a rate threshold may be written as a percentage, "5%"
    rules: tuple[str, ...] = (
        "throttle-rate:throttle_rate:model:>:5%:5m",
        "server-errors:server_errors:model:>:10:1m",
        "content-filtered:content_filtered_rate:app:>:10%:5m",
        "availability:availability_pct:model:<:95:5m",
    )
    # rate and percentage rules skip windows with fewer calls (the state carries over), so
    # two failures out of three calls do not page anyone
    min_requests: int = 20


@dataclass(frozen=True)
class CostSettings:
    # a pricing table (TOML, docs/alerts-and-cost.md); empty: the table shipped in the package
    pricing_file: str = ""
    window_minutes: int = 60
    # "name:scope:period:limit_usd", scope user, app or feature (or scope=key), period 1h or
    # 1d: spend over a rolling hour or day, re-evaluated every hop
    budgets: tuple[str, ...] = ("user-hourly:user:1h:5", "app-daily:app:1d:1000")
    budget_hour_hop_minutes: int = 5
    budget_day_hop_minutes: int = 60


@dataclass(frozen=True)
class AgentsJobSettings:
    # a session (conversation) ends after this long without a new span
    session_gap_minutes: int = 30
    # loop detection counts a tool's calls over this trailing range of a conversation
    max_session_hours: int = 8
    # how long after a span its parent may still arrive before the span counts as an orphan
    max_trace_minutes: int = 10
    window_minutes: int = 1
    percentiles: tuple[float, ...] = (0.5, 0.9, 0.99)
    # the same tool called this many times in a session: an agent_loop alert
    loop_repeats: int = 10
    # budgets per session: chat calls (agent cycles) and cost; 0 disables one
    cycle_budget: int = 60
    cost_budget_usd: float = 5.0

    def __post_init__(self) -> None:
        _check_percentiles("agents", self.percentiles)


@dataclass(frozen=True)
class AnomalySettings:
    window_minutes: int = 1
    # the baseline of a key: robust statistics (median, IQR) of its last N evaluated windows
    baseline_windows: int = 15
    # no alert until a key has this many baseline windows with a value
    warmup_windows: int = 8
    # open when a metric is this many robust standard deviations above its baseline median
    threshold: float = 5.0
    # open when this many of a key's windows in a row are anomalous (1: the first one)
    open_after_windows: int = 2
    # close after this many windows in a row without an anomalous metric
    close_after_windows: int = 2
    # mean, p99 and rate metrics need this many calls in the window (sums do not)
    min_requests: int = 30
    # the robust sd is at least this share of the baseline median: with threshold 5 nothing
    # below 2.25 x the baseline alerts, however steady the key was
    relative_floor: float = 0.25
    # table.exec.state.ttl: a key silent this long loses its baseline and warms up again
    state_ttl_hours: int = 6
    # per-event outliers: a call this many sd (of log tokens or log latency) above its app's
    # calls in the last outlier_range_minutes, once the app has outlier_min_calls there
    outliers: bool = True
    outlier_threshold: float = 6.0
    outlier_range_minutes: int = 10
    outlier_min_calls: int = 100
    # robust (median and IQR of the baseline windows) or zscore (their mean and standard
    # deviation, no relative floor: the simple baseline `genai-apm evaluate-anomalies`
    # compares with)
    detector: str = "robust"
    # up: only rises alert (tokens, latency, errors, spend); both: drops too (generic series)
    direction: str = "up"
    # daily seasonality: also judge each window against the same time of day on the key's
    # last N days (0: off; costs N x windows-per-day rows of state per key)
    seasonal_days: int = 0
    # root-cause attribution: an incident is explained by another hot key (a model, app or
    # user) that carries at least this share of its traffic in the window (docs/anomalies.md)
    explain_share: float = 0.5
    # > 0: a metric is anomalous only when its deviation also exceeds every deviation of the
    # key's previous N windows: the key's own recent extremes set the bar, so a noisy key
    # needs a bigger change than a steady one (jobs/detectors.py; 0: off, the threshold alone)
    history_windows: int = 0

    def __post_init__(self) -> None:
        for name, allowed in (("detector", ("robust", "zscore")), ("direction", ("up", "both"))):
            if getattr(self, name) not in allowed:
                raise GenaiApmError(
                    f"config anomalies.{name}: {getattr(self, name)!r} is not one of "
                    + ", ".join(allowed)
                )
        if not 0.0 < self.explain_share <= 1.0:
            raise GenaiApmError("config anomalies.explain_share: must be in (0, 1]")


@dataclass(frozen=True)
class SloSettings:
    # "name:sli:scope:objective:period[:measure:ms]" (objectives.py, docs/alerts-and-cost.md):
    # availability or latency (ttft / latency at or under ms) per model, app, model_app or all
    objectives: tuple[str, ...] = ("model-availability:availability:model:99.5%:30d",)
    # "severity:long:short:burn": ALARM while the burn rate over both windows exceeds burn
    # (the multi-window, multi-burn-rate set of the Google SRE workbook)
    burn_alerts: tuple[str, ...] = ("page:1h:5m:14.4", "page:6h:30m:6", "ticket:3d:6h:1")

    def __post_init__(self) -> None:
        from genai_apm import objectives

        objectives.objectives(self)
        objectives.burn_alerts(self)


@dataclass(frozen=True)
class QuotaSettings:
    # a quota table (TOML, docs/alerts-and-cost.md); empty: the table shipped in the package
    quota_file: str = ""
    # quota-headroom alert: use of tokens or requests per minute at or above this percentage...
    alert_use_pct: float = 80.0
    # ...or the forecast of minutes until the quota is exhausted at or under this horizon
    forecast_horizon_minutes: float = 10.0
    # the forecast extrapolates a least-squares line through this many minutes of use
    trend_minutes: int = 10
    # forecasts need this many minutes with calls in the trend window
    min_trend_points: int = 5

    def __post_init__(self) -> None:
        if not 0 < self.alert_use_pct <= 1000:
            raise GenaiApmError("config quota.alert_use_pct: must be in (0, 1000]")
        if self.forecast_horizon_minutes < 0:
            raise GenaiApmError("config quota.forecast_horizon_minutes: must not be negative")
        if self.trend_minutes < 2 or not 2 <= self.min_trend_points <= self.trend_minutes:
            raise GenaiApmError(
                "config quota: trend_minutes must be at least 2 and min_trend_points "
                "between 2 and trend_minutes (a line needs two points)"
            )


@dataclass(frozen=True)
class PrivacySettings:
    # replace user_id, in every job's input, by "uid:" + hex HMAC-SHA256(user_id_salt, user_id)
    # (docs/security.md); the same id always gives the same pseudonym under one salt
    hash_user_ids: bool = False
    # a secret: whoever has it can test guesses of user ids against the pseudonyms
    user_id_salt: str = ""
    # keep the prompt and response text of Bedrock logs and OTLP GenAI spans, every string put
    # through privacy.redact(), in topics.bodies and the `bodies` table, never in the analytics
    # events. Off: no body is extracted, and dead letters of those formats carry their bodies
    # replaced by a marker (docs/security.md, "Prompt and response bodies")
    store_bodies: bool = False


@dataclass(frozen=True)
class OutputSettings:
    # Parquet tables live under here as <table>/dt=YYYY-MM-DD/hour=HH/: a local folder or
    # s3://bucket[/prefix] (docs/sinks.md)
    tables_path: str = ".state/tables"
    # `genai-apm compact` merges a table's hour into one file once the hour ended and nothing
    # in it changed for this long: more than the watermark delay, a checkpoint interval and
    # the wait of a window emitted after its hour (genai_apm/compact.py, docs/sinks.md)
    compact_after_minutes: int = 20


@dataclass(frozen=True)
class StackSettings:
    state_dir: str = ".state"
    kafka_port: int = 9092
    controller_port: int = 9093
    kafka_heap: str = "512m"
    moto_port: int = 5000
    ready_timeout_s: int = 60


@dataclass(frozen=True)
class AwsSettings:
    region: str = "us-east-1"
    # Empty means real AWS; the local stack points this at the moto server.
    endpoint_url: str = ""
    # Empty: the default credential chain (env, profile, instance role). When endpoint_url is
    # set (moto, MinIO), S3 is addressed path-style.
    access_key_id: str = ""
    secret_access_key: str = ""


@dataclass(frozen=True)
class BridgeSettings:
    """`genai-apm bridge kinesis`: a Kinesis stream -> topics.invocations (docs/aws.md)."""

    stream: str = "genai-invocations"
    # where a first start reads every shard: TRIM_HORIZON (all retained) or LATEST; later
    # starts resume from the checkpoint
    start_position: str = "TRIM_HORIZON"
    # Kafka transactions commit on checkpoints: this is also the delay read_committed sees
    checkpoint_interval_s: int = 10
    # empty: <stack.state_dir>/kinesis-bridge/checkpoints
    checkpoint_dir: str = ""
    parallelism: int = 1
    # the Kinesis connector's polling: GetRecords pace per shard (5 calls/s/shard allowed),
    # new-shard discovery (splits, merges), retries with exponential backoff
    getrecords_interval_ms: int = 200
    shard_discovery_interval_ms: int = 10000
    max_retries: int = 10
    backoff_base_ms: int = 300
    backoff_max_ms: int = 10000
    restart_attempts: int = 5
    heap: str = "512m"


@dataclass(frozen=True)
class CloudWatchSettings:
    """`genai-apm export cloudwatch`: derived metric topics -> PutMetricData (docs/sinks.md)."""

    namespace: str = "GenAI/APM"
    # windows of the metric topics to publish; sliding windows would count calls twice
    windows: tuple[str, ...] = ("1m",)
    # StorageResolution 1 (high resolution, billed as such) instead of 60
    high_resolution: bool = False
    # api: PutMetricData; emf: Embedded Metric Format JSON lines on stdout (for a log agent)
    output: str = "api"
    max_attempts: int = 6
    backoff_base_s: float = 0.2
    backoff_max_s: float = 20.0
    # CloudWatch refuses data points older than two weeks: dead-letter them instead
    max_age_hours: float = 336.0
    consumer_group: str = "genai-apm-cloudwatch"

    def __post_init__(self) -> None:
        if self.output not in ("api", "emf"):
            raise GenaiApmError(f"cloudwatch.output must be api or emf, not {self.output!r}")
        if self.max_attempts < 1:
            raise GenaiApmError("cloudwatch.max_attempts must be at least 1")


@dataclass(frozen=True)
class Settings:
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    topics: TopicSettings = field(default_factory=TopicSettings)
    flink: FlinkSettings = field(default_factory=FlinkSettings)
    latency: LatencyJobSettings = field(default_factory=LatencyJobSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    errors: ErrorsJobSettings = field(default_factory=ErrorsJobSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    cost: CostSettings = field(default_factory=CostSettings)
    agents: AgentsJobSettings = field(default_factory=AgentsJobSettings)
    anomalies: AnomalySettings = field(default_factory=AnomalySettings)
    slo: SloSettings = field(default_factory=SloSettings)
    quota: QuotaSettings = field(default_factory=QuotaSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    stack: StackSettings = field(default_factory=StackSettings)
    aws: AwsSettings = field(default_factory=AwsSettings)
    cloudwatch: CloudWatchSettings = field(default_factory=CloudWatchSettings)
    bridge: BridgeSettings = field(default_factory=BridgeSettings)

    def __post_init__(self) -> None:
        # alert and budget rules are strings here (one env var can carry them); their syntax
        # and their references to windows are checked now, not when a job first needs them
        from genai_apm import rules

        rules.validate(self)
        _validate_security(self)

    def replace(self, **sections: dict[str, Any]) -> Settings:
        """A copy with some keys changed: ``s.replace(kafka={"partitions": 1})``."""
        changed = {
            name: dataclasses.replace(getattr(self, name), **values)
            for name, values in sections.items()
        }
        return dataclasses.replace(self, **changed)

    def redacted(self) -> dict[str, dict[str, Any]]:
        """The settings as plain dicts with secrets masked, safe to print or log."""
        out: dict[str, dict[str, Any]] = {}
        for section in dataclasses.fields(self):
            values = dataclasses.asdict(getattr(self, section.name))
            for key in SECRET_KEYS & values.keys():
                if values[key]:
                    values[key] = "***"
            out[section.name] = values
        return out


SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


def _validate_security(settings: Settings) -> None:
    """Mistakes that would surface as a client's stack trace, or silently weaken privacy."""
    k = settings.kafka
    if k.security_protocol not in SECURITY_PROTOCOLS:
        raise GenaiApmError(
            f"config kafka.security_protocol {k.security_protocol!r} is not one of "
            + ", ".join(SECURITY_PROTOCOLS)
        )
    if k.ssl_cert_file and not k.ssl_key_password:
        raise GenaiApmError(
            "config kafka.ssl_cert_file needs kafka.ssl_key_password: the Java client in Flink "
            "reads only encrypted private keys from a PEM file"
        )
    if settings.privacy.hash_user_ids and not settings.privacy.user_id_salt:
        raise GenaiApmError(
            "config privacy.hash_user_ids needs privacy.user_id_salt (a secret, e.g. from "
            "GENAI_APM_PRIVACY_USER_ID_SALT): unsalted hashes of user ids are easy to reverse"
        )


def _coerce(raw: Any, target: Any, where: str) -> Any:
    """Convert a TOML or env-var value to the declared field type, or fail naming ``where``."""
    origin = typing.get_origin(target)
    try:
        if origin is tuple:
            (item_type, _) = typing.get_args(target)
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            return tuple(
                _coerce(i.strip() if isinstance(i, str) else i, item_type, where)
                for i in items
                if i != ""
            )
        if target is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if target is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(raw)
            return int(raw)
        if target is float:
            return float(raw)
        if target is str:
            if not isinstance(raw, str | int | float):
                raise ValueError(raw)
            return str(raw)
    except (TypeError, ValueError):
        pass
    else:
        raise GenaiApmError(f"config {where}: unsupported type {target!r}")
    name = getattr(target, "__name__", str(target))
    raise GenaiApmError(f"config {where}: {raw!r} is not a valid {name}")


def _section_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _build(overrides: dict[str, dict[str, Any]], origin: str) -> dict[str, dict[str, Any]]:
    """Validate ``{section: {key: raw}}`` against the dataclasses and coerce every value."""
    sections = _section_types(Settings)
    built: dict[str, dict[str, Any]] = {}
    for section, values in overrides.items():
        if section not in sections:
            raise GenaiApmError(
                f"{origin}: unknown section [{section}] (known: {', '.join(sections)})"
            )
        if not isinstance(values, dict):
            raise GenaiApmError(f"{origin}: [{section}] must be a table of keys")
        keys = _section_types(sections[section])
        for key, raw in values.items():
            if key not in keys:
                raise GenaiApmError(
                    f"{origin}: unknown key {section}.{key} (known: {', '.join(keys)})"
                )
            built.setdefault(section, {})[key] = _coerce(raw, keys[key], f"{section}.{key}")
    return built


def _env_overrides(environ: typing.Mapping[str, str]) -> dict[str, dict[str, str]]:
    sections = _section_types(Settings)
    found: dict[str, dict[str, str]] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in NOT_SETTINGS:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section = next((s for s in sections if rest.startswith(s + "_")), None)
        if section is None:
            raise GenaiApmError(f"environment: {name} names no config section")
        found.setdefault(section, {})[rest[len(section) + 1 :]] = value
    return found


def default_config_path(environ: typing.Mapping[str, str]) -> Path | None:
    if environ.get(ENV_PREFIX + "CONFIG"):
        return Path(environ[ENV_PREFIX + "CONFIG"])
    local = Path("genai-apm.toml")
    return local if local.is_file() else None


def load(
    path: str | Path | None = None, environ: typing.Mapping[str, str] | None = None
) -> Settings:
    """Load settings: defaults, then the config file, then environment variables."""
    environ = os.environ if environ is None else environ
    config_path = Path(path) if path else default_config_path(environ)
    merged: dict[str, dict[str, Any]] = {}
    if config_path is not None:
        try:
            with open(config_path, "rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            raise GenaiApmError(f"config file {config_path} does not exist") from None
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise GenaiApmError(f"config file {config_path} is unreadable: {e}") from None
        merged = _build(data, str(config_path))
    from genai_apm.settings import app_properties  # Managed Flink's runtime properties, if any

    if (props := app_properties.properties_path(environ)) is not None:
        for section, values in _build(app_properties.overrides(props), str(props)).items():
            merged.setdefault(section, {}).update(values)
    for section, values in _build(_env_overrides(environ), "environment").items():
        merged.setdefault(section, {}).update(values)
    settings = Settings()
    try:
        return settings.replace(**merged)
    except TypeError as e:  # pragma: no cover - _build already checked the keys
        raise GenaiApmError(f"config: {e}") from None


def section_docs() -> dict[str, dict[str, Any]]:
    """Every section and key with its default, for ``genai-apm config`` and the docs."""
    return Settings().redacted()
