-- State several nodes share through the database (see ARCHITECTURE.md, "Scale-out").

-- Units held under a quota while the work runs: one row per module unit. A request's holds
-- lapse at `expires_at` if its node dies; a queued job's are kept until the job ends.
CREATE TABLE quota_holds (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    counter TEXT NOT NULL,
    period TEXT NOT NULL,
    job_id TEXT,
    expires_at BIGINT NOT NULL
);
CREATE INDEX quota_holds_slot ON quota_holds (tenant_id, counter, period, expires_at);
CREATE INDEX quota_holds_job ON quota_holds (job_id);

-- A running job belongs to one node until its lease ends; the node renews it while it works.
ALTER TABLE jobs ADD COLUMN claimed_by TEXT;
ALTER TABLE jobs ADD COLUMN lease_until BIGINT;

-- Signatures seen, when the replay cache is shared (PostgreSQL); a single node keeps its own
-- journal file.
CREATE TABLE replay_seen (
    fp BYTEA PRIMARY KEY,
    expires BIGINT NOT NULL
);
CREATE INDEX replay_seen_expires ON replay_seen (expires);

-- GCRA rate buckets shared by every node (PostgreSQL without Redis): the theoretical arrival
-- time of each key's bucket, in milliseconds.
CREATE TABLE rate_buckets (
    key_id TEXT NOT NULL,
    bucket TEXT NOT NULL,
    tat_ms BIGINT NOT NULL,
    PRIMARY KEY (key_id, bucket)
);
