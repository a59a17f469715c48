-- One row per job event, with its log position. (cluster, job_id, seq) is the event's identity:
-- a republished copy collapses onto the same row (the one at the highest log offset wins).
CREATE TABLE IF NOT EXISTS {db}.job_events{suffix}
(
    cluster        LowCardinality(String),
    scheduler      LowCardinality(String),
    job_id         UInt64,
    seq            UInt32,
    name           LowCardinality(String),
    ts             DateTime64(6, 'UTC'),
    ts_source      LowCardinality(String),
    context        String,
    raw            String CODEC(ZSTD(3)),
    user           String,
    scribe_id      LowCardinality(String),
    published_at   DateTime64(3, 'UTC'),
    log_topic      LowCardinality(String),
    log_partition  UInt32,
    log_offset     UInt64
)
ENGINE = ReplacingMergeTree(log_offset)
ORDER BY (cluster, job_id, seq)
SETTINGS non_replicated_deduplication_window = 1000;
