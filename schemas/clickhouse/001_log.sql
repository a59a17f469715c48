-- The embedded event log (one-machine default). Kafka replaces these tables in production.
-- One partition per topic; offsets are assigned by the single writing process, gap-free.
CREATE TABLE IF NOT EXISTS {db}.log_records
(
    topic      LowCardinality(String),
    partition  UInt32,
    offset     UInt64,
    key        String,
    value      String CODEC(ZSTD(3)),
    headers    Map(String, String),
    ts         DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 1000;

-- Committed consumer positions: the next offset a group reads. Latest `version` wins.
CREATE TABLE IF NOT EXISTS {db}.log_offsets
(
    group      String,
    topic      LowCardinality(String),
    partition  UInt32,
    offset     UInt64,
    version    UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (group, topic, partition);
