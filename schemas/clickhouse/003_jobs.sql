-- One row per job: the fold of all its events (projector/tables/jobs.ts). `last_seq` is the
-- version: the row that has seen the most events wins. `is_deleted` hides jobs the scheduler
-- invalidated at submit time (Flux `invalidate`). Query with FINAL.
-- state: pending | running | completed | failed | canceled | timeout (one vocabulary for every
-- scheduler); sched_state and result keep the scheduler's own words.
CREATE TABLE IF NOT EXISTS {db}.jobs{suffix}
(
    cluster             LowCardinality(String),
    scheduler           LowCardinality(String),
    job_id              UInt64,
    user                String,
    userid              Nullable(UInt32),
    queue               LowCardinality(String),
    name                String,
    ntasks              UInt32,
    ncores              UInt32,
    ngpus               UInt32,
    nnodes              UInt32,
    nodes               Array(String),
    state               LowCardinality(String),
    sched_state         LowCardinality(String),
    result              LowCardinality(String),
    success             Nullable(Bool),
    exit_code           Nullable(Int32),
    waitstatus          Nullable(Int32),
    exception_type      String,
    exception_severity  Nullable(UInt8),
    exception_note      String,
    urgency             Int32,
    priority            Nullable(Int64),
    held                Bool,
    dependencies        Array(String),
    time_limit_s        Nullable(Float64),
    t_submit            DateTime64(6, 'UTC'),
    t_eligible          Nullable(DateTime64(6, 'UTC')),
    t_start             Nullable(DateTime64(6, 'UTC')),
    t_end               Nullable(DateTime64(6, 'UTC')),
    t_inactive          Nullable(DateTime64(6, 'UTC')),
    wait_s              Nullable(Float64),
    run_s               Nullable(Float64),
    last_seq            UInt32,
    last_event          LowCardinality(String),
    last_event_ts       DateTime64(6, 'UTC'),
    is_deleted          UInt8
)
ENGINE = ReplacingMergeTree(last_seq, is_deleted)
ORDER BY (cluster, job_id)
SETTINGS non_replicated_deduplication_window = 1000;
