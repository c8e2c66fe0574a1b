-- The console's second factor and a verification's run time in milliseconds.

-- A user's TOTP secret, sealed under the `console` data key (AAD: the user id), and the last
-- 30-second step a code was accepted for (a code is good once).
ALTER TABLE console_users ADD COLUMN totp_secret BYTEA;
ALTER TABLE console_users ADD COLUMN totp_last_step BIGINT;

-- A session whose password was right but whose second factor is still to come: it opens no
-- page but the code form.
ALTER TABLE console_sessions ADD COLUMN mfa_pending BIGINT NOT NULL DEFAULT 0;

-- When a job was claimed (ms) and how long it ran (ms), for the console's p95.
ALTER TABLE jobs ADD COLUMN started_ms BIGINT;
ALTER TABLE jobs ADD COLUMN run_ms BIGINT;
CREATE INDEX jobs_tenant_finished ON jobs (tenant_id, finished_at);
