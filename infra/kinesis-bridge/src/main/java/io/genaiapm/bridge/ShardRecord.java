package io.genaiapm.bridge;

/** One Kinesis record with where it came from: a Flink POJO (public fields, no-arg constructor). */
public class ShardRecord {
    public String shardId;
    public String partitionKey;
    public String sequenceNumber;
    public byte[] data;

    public ShardRecord() {}

    public ShardRecord(String shardId, String partitionKey, String sequenceNumber, byte[] data) {
        this.shardId = shardId;
        this.partitionKey = partitionKey;
        this.sequenceNumber = sequenceNumber;
        this.data = data;
    }
}
