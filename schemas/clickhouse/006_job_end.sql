-- How a job's process ended, one rule for every scheduler (projector/tables/exit.ts): exit_code is
-- the exit status when it exited (null when it did not), signal / signal_name the signal that
-- ended it, oom whether the scheduler says it ran out of memory. urgency is Flux's (null for
-- Slurm, which has none); nice is Slurm's (null for Flux). Added to data directories made before
-- them; rows projected earlier keep the defaults until `replay --rebuild` (or a replay of their
-- range) re-derives them.
ALTER TABLE {db}.jobs{suffix} ADD COLUMN IF NOT EXISTS signal Nullable(UInt8) AFTER exit_code;
ALTER TABLE {db}.jobs{suffix} ADD COLUMN IF NOT EXISTS signal_name LowCardinality(String) AFTER signal;
ALTER TABLE {db}.jobs{suffix} ADD COLUMN IF NOT EXISTS oom Bool AFTER signal_name;
ALTER TABLE {db}.jobs{suffix} MODIFY COLUMN urgency Nullable(Int32);
ALTER TABLE {db}.jobs{suffix} ADD COLUMN IF NOT EXISTS nice Nullable(Int32) AFTER urgency;
