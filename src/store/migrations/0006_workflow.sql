-- Per-tenant workflow configuration (JSON; absent = the built-in defaults).
CREATE TABLE workflow_configs (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants(id),
    config      TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Verification jobs. Inputs and results are personal data: both are sealed with the subject's
-- data key (erasing the subject shreds them). The input row is deleted once the job is done.
CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    key_id           TEXT,
    request_id       TEXT NOT NULL,
    subject_id       TEXT NOT NULL,
    reference        TEXT,
    idempotency_key  TEXT,
    callback_url     TEXT,
    status           TEXT NOT NULL,        -- queued | running | completed | failed
    attempts         INTEGER NOT NULL DEFAULT 0,
    score            INTEGER,
    decision         TEXT,
    error            TEXT,
    result           BLOB,                 -- sealed JSON
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER
);
CREATE UNIQUE INDEX jobs_idempotency ON jobs(tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_tenant_created ON jobs(tenant_id, created_at, id);
CREATE INDEX jobs_status ON jobs(status, created_at);

CREATE TABLE job_inputs (
    job_id  TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    sealed  BLOB NOT NULL
);

-- Tenant webhook endpoints; the signing secret is sealed with the `webhooks` data key.
CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    url         TEXT NOT NULL,
    events      TEXT NOT NULL,             -- comma-separated
    secret      BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    deleted_at  INTEGER
);
CREATE INDEX webhooks_tenant ON webhooks(tenant_id);

-- One row per event to deliver to one endpoint; the payload is sealed (it carries results).
CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    webhook_id       TEXT REFERENCES webhooks(id),
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    url              TEXT NOT NULL,
    key_id           TEXT,                 -- callback_url deliveries are signed with this key
    subject_id       TEXT,                 -- payload sealed with this subject's key (erasure shreds it)
    event            TEXT NOT NULL,
    payload          BLOB NOT NULL,
    status           TEXT NOT NULL,        -- pending | delivered | failed
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_status      INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    delivered_at     INTEGER
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
CREATE INDEX webhook_deliveries_tenant ON webhook_deliveries(tenant_id, created_at);

CREATE TABLE webhook_attempts (
    delivery_id  TEXT NOT NULL REFERENCES webhook_deliveries(id),
    attempt      INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    status       INTEGER,
    error        TEXT,
    duration_ms  INTEGER NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
