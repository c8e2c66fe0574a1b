-- Foundation: tenants, their API keys, wrapped data keys, the audit chain and usage events.
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    plan        TEXT NOT NULL CHECK (plan IN ('free', 'pro', 'enterprise')),
    status      TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    -- AES-256-GCM under the 'api_key_secret' data key; HMAC needs the secret, so it is not hashed.
    secret_enc   BLOB NOT NULL,
    label        TEXT,
    status       TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
CREATE INDEX api_keys_tenant ON api_keys(tenant_id);

-- One data key per family of secrets, wrapped by the master key.
CREATE TABLE data_keys (
    family      TEXT PRIMARY KEY,
    wrapped     BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    tenant_id   TEXT,
    target      TEXT,
    details     TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

CREATE TABLE usage_events (
    id                INTEGER PRIMARY KEY,
    request_id        TEXT NOT NULL,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id),
    key_id            TEXT,
    module            TEXT NOT NULL,
    unit_price_minor  INTEGER NOT NULL DEFAULT 0,
    billed            INTEGER NOT NULL DEFAULT 1,
    at                INTEGER NOT NULL
);
CREATE INDEX usage_events_tenant_at ON usage_events(tenant_id, at);
