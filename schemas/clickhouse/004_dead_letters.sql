-- Log messages the projector could not accept, with the reason and their log position.
-- Never dropped silently; fix the producer, then replay the range.
CREATE TABLE IF NOT EXISTS {db}.dead_letters{suffix}
(
    log_topic      LowCardinality(String),
    log_partition  UInt32,
    log_offset     UInt64,
    log_ts         DateTime64(3, 'UTC'),
    key            String,
    reason         String,
    payload        String CODEC(ZSTD(3))
)
ENGINE = ReplacingMergeTree
ORDER BY (log_topic, log_partition, log_offset)
SETTINGS non_replicated_deduplication_window = 1000;
