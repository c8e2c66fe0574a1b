-- Hardening (issue 16): key permissions, and what else the hardening needs.

-- What a key may read or manage besides calling modules (JSON array of names, see
-- auth::permissions). New keys get ["results:read"]. Keys from before this migration: a live key
-- with every module keeps every permission (it could do everything, and integrations must not
-- break on upgrade); a sandbox key or one narrowed to some modules gets the default only.
ALTER TABLE api_keys ADD COLUMN permissions TEXT NOT NULL DEFAULT '["results:read"]';
UPDATE api_keys SET permissions =
    '["results:read","results:read_all","media:read","media:write","subjects:erase","workflow:read","workflow:write","webhooks:read","webhooks:write","audit:read","usage:read"]'
    WHERE environment = 'live' AND scopes IS NULL;

-- The secret that signs a job's callback_url deliveries: one per tenant, sealed with the
-- `webhooks` data key (associated data `callback_secret:<tenant>`), never an API key's secret.
CREATE TABLE callback_secrets (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants(id),
    secret      BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);

-- The operator's floors for a tenant's workflow (JSON, see workflow::config::Floors; NULL = the
-- defaults). The face-match floor is the existing face_match_threshold.
ALTER TABLE tenants ADD COLUMN workflow_floors TEXT;

-- Lookups by target (was a subject erased before? the audit trail of one key or job).
CREATE INDEX audit_log_tenant_target ON audit_log(tenant_id, target);

-- Fair job claims look up each tenant's running jobs and when it was last served.
CREATE INDEX jobs_tenant_status ON jobs(tenant_id, status);
CREATE INDEX jobs_tenant_started ON jobs(tenant_id, started_at);

-- Jobs submitted with a sandbox key: their units go to the sandbox allowance, never billed, and
-- their results say so.
ALTER TABLE jobs ADD COLUMN sandbox INTEGER NOT NULL DEFAULT 0;

-- A tenant's audit search walks its own entries, newest first.
CREATE INDEX audit_log_tenant_seq ON audit_log(tenant_id, seq);
-- Jobs queued by sandbox keys before this migration stay sandbox jobs (never billed).
UPDATE jobs SET sandbox = 1 WHERE status IN ('queued', 'running')
    AND key_id IN (SELECT id FROM api_keys WHERE environment = 'sandbox');

-- Erasure finds a subject's jobs and deliveries without scanning the tenant's history.
CREATE INDEX jobs_tenant_subject ON jobs(tenant_id, subject_id);
CREATE INDEX webhook_deliveries_tenant_subject ON webhook_deliveries(tenant_id, subject_id);
