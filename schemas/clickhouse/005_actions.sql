-- One row per command (an action an agent asked for): the fold of its command, approval and
-- command-result records (projector/tables/actions.ts); also one per request the MCP service
-- refused (a refusal record: status refused). `version` orders the records of one
-- command (requested < awaiting approval < approval < final result): the furthest along wins.
-- status: requested | awaiting_approval | accepted | rejected | failed | refused. Query with FINAL.
CREATE TABLE IF NOT EXISTS {db}.actions{suffix}
(
    cluster             LowCardinality(String),
    command_id          String,
    action              LowCardinality(String),
    job_ids             Array(String),
    args                String,
    requested_by        String,
    requested_user      String,
    requested_roles     Array(String),
    on_behalf_of        String,
    issued_at           DateTime64(3, 'UTC'),
    expires_at          DateTime64(3, 'UTC'),
    approval_required   Bool,
    approved_by         String,
    approved_at         Nullable(DateTime64(3, 'UTC')),
    rejected_by         String,
    status              LowCardinality(String),
    reason              String,
    results             String,
    result_at           Nullable(DateTime64(3, 'UTC')),
    scribe_id           LowCardinality(String),
    version             UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (cluster, command_id)
SETTINGS non_replicated_deduplication_window = 1000;
