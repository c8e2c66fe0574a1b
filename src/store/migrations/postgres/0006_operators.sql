-- The operator's console: its people and their sessions, apart from every tenant's. The columns
-- are those of console_users and console_sessions (tenant_id is always empty here), so the same
-- statements serve both.
CREATE TABLE operators (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    created_at BIGINT NOT NULL,
    last_login_at BIGINT,
    totp_secret BYTEA,
    totp_last_step BIGINT
);
CREATE UNIQUE INDEX operators_email ON operators (email);

CREATE TABLE operator_sessions (
    token_hash BYTEA PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    mfa_pending BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX operator_sessions_user ON operator_sessions (user_id);
