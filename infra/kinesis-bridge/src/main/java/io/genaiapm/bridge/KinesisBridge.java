package io.genaiapm.bridge;

import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Comparator;
import java.util.Optional;
import java.util.Properties;
import java.util.stream.Stream;

import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.connectors.kinesis.FlinkKinesisConsumer;
import org.apache.flink.streaming.connectors.kinesis.serialization.KinesisDeserializationSchema;

/**
 * Kinesis Data Streams -> Kafka, exactly once: the official polling Kinesis consumer
 * (flink-connector-kinesis 4.3.0-1.19) into Flink's transactional Kafka sink, on Flink 1.19.
 *
 * <p>Every shard is read from {@code start_position} (TRIM_HORIZON or LATEST) on the first
 * start; afterwards from the sequence numbers in the last checkpoint. A shard is read by one
 * subtask, in order, and its records are written with the shard id as the Kafka key, so one
 * shard's records land in one partition in the shard's order. Kafka transactions commit on
 * checkpoints: read_committed consumers see every record once.
 *
 * <p>With {@code local=true} (the {@code genai-apm bridge kinesis} process) this JVM runs its
 * own Flink mini cluster, checkpoints to {@code checkpoint_dir} and resumes from the newest
 * complete checkpoint there. On Managed Flink the service owns checkpoints and restores.
 */
public final class KinesisBridge {
    private KinesisBridge() {}

    public static void main(String[] args) throws Exception {
        try {
            BridgeConfig cfg = BridgeConfig.load(args);
            StreamExecutionEnvironment env = environment(cfg);
            build(env, cfg);
            env.execute("genai-apm kinesis bridge");
        } catch (BridgeConfig.BridgeError e) {
            System.err.println("error: " + e.getMessage());
            System.exit(2);
        }
    }

    static StreamExecutionEnvironment environment(BridgeConfig cfg) throws IOException {
        if (!Boolean.parseBoolean(cfg.optional("local", "false"))) {
            return StreamExecutionEnvironment.getExecutionEnvironment();
        }
        Configuration conf = new Configuration();
        // pass-through Flink options (checkpoint interval, restart strategy, ...)
        Properties flink = cfg.withPrefix("flink.");
        for (String key : flink.stringPropertyNames()) {
            conf.setString(key, flink.getProperty(key));
        }
        Path dir = localPath(cfg.required("checkpoint_dir"));
        Files.createDirectories(dir);
        conf.setString("state.checkpoint-storage", "filesystem");
        conf.setString("state.checkpoints.dir", dir.toUri().toString());
        conf.setString("execution.checkpointing.mode", "EXACTLY_ONCE");
        // a killed process leaves its last checkpoint for the next start
        conf.setString(
                "execution.checkpointing.externalized-checkpoint-retention",
                "RETAIN_ON_CANCELLATION");
        Optional<Path> latest = latestCheckpoint(dir);
        if (latest.isPresent()) {
            conf.setString("execution.savepoint.path", latest.get().toUri().toString());
            System.err.println("resuming from " + latest.get());
        }
        return StreamExecutionEnvironment.getExecutionEnvironment(conf);
    }

    static Path localPath(String location) {
        return location.startsWith("file:") ? Paths.get(URI.create(location)) : Paths.get(location);
    }

    /** The newest chk-N folder with a _metadata file (a complete checkpoint) under any job's folder. */
    static Optional<Path> latestCheckpoint(Path dir) throws IOException {
        try (Stream<Path> jobs = Files.list(dir)) {
            return jobs.filter(Files::isDirectory)
                    .flatMap(KinesisBridge::children)
                    .filter(p -> p.getFileName().toString().startsWith("chk-"))
                    .filter(p -> Files.isRegularFile(p.resolve("_metadata")))
                    .max(Comparator.comparingLong(KinesisBridge::checkpointId));
        }
    }

    private static Stream<Path> children(Path dir) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.collect(java.util.stream.Collectors.toList()).stream();
        } catch (IOException e) {
            return Stream.empty();
        }
    }

    // checkpoint ids keep counting up across restores, so the highest is the newest
    private static long checkpointId(Path chk) {
        try {
            return Long.parseLong(chk.getFileName().toString().substring(4));
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    static void build(StreamExecutionEnvironment env, BridgeConfig cfg) {
        Properties kinesis = new Properties();
        kinesis.setProperty("aws.region", cfg.required("aws.region"));
        String endpoint = cfg.optional("aws.endpoint", "");
        if (!endpoint.isEmpty()) {
            kinesis.setProperty("aws.endpoint", endpoint);
        }
        String start = cfg.optional("start_position", "TRIM_HORIZON");
        if (!start.equals("TRIM_HORIZON") && !start.equals("LATEST")) {
            throw new BridgeConfig.BridgeError(
                    "bridge setting start_position must be TRIM_HORIZON or LATEST, not " + start);
        }
        kinesis.setProperty("flink.stream.initpos", start);
        // the connector's own options: retries and backoff for GetRecords, ListShards, ...
        kinesis.putAll(cfg.withPrefix("kinesis."));

        FlinkKinesisConsumer<ShardRecord> source =
                new FlinkKinesisConsumer<>(cfg.required("stream"), new Records(), kinesis);

        String topic = cfg.required("kafka.topic");
        KafkaSink<ShardRecord> sink =
                KafkaSink.<ShardRecord>builder()
                        .setBootstrapServers(cfg.required("kafka.bootstrap_servers"))
                        .setKafkaProducerConfig(cfg.withPrefix("kafka.properties."))
                        .setDeliveryGuarantee(DeliveryGuarantee.EXACTLY_ONCE)
                        .setTransactionalIdPrefix(
                                cfg.optional("kafka.transactional_id_prefix", "genai-apm-kinesis-bridge"))
                        .setRecordSerializer(
                                KafkaRecordSerializationSchema.<ShardRecord>builder()
                                        .setTopic(topic)
                                        .setKeySerializationSchema(new ShardKey())
                                        .setValueSerializationSchema(new Payload())
                                        .build())
                        .build();

        // uids keep the source's shard offsets and the sink's transactions addressable in state
        env.addSource(source).uid("kinesis-source").name("kinesis " + cfg.required("stream"))
                .sinkTo(sink).uid("kafka-sink").name("kafka " + topic);
    }

    static final class Records implements KinesisDeserializationSchema<ShardRecord> {
        @Override
        public ShardRecord deserialize(
                byte[] value,
                String partitionKey,
                String seqNum,
                long approxArrivalTimestamp,
                String stream,
                String shardId) {
            return new ShardRecord(shardId, partitionKey, seqNum, value);
        }

        @Override
        public TypeInformation<ShardRecord> getProducedType() {
            return TypeInformation.of(ShardRecord.class);
        }
    }

    static final class ShardKey implements SerializationSchema<ShardRecord> {
        @Override
        public byte[] serialize(ShardRecord r) {
            return r.shardId.getBytes(StandardCharsets.UTF_8);
        }
    }

    static final class Payload implements SerializationSchema<ShardRecord> {
        @Override
        public byte[] serialize(ShardRecord r) {
            return r.data;
        }
    }
}
