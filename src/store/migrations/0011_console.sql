-- The tenant console: its users, their sessions, and the review of verifications.

-- A person who signs in to a tenant's console. The password is an argon2id PHC string.
CREATE TABLE console_users (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER,
    created_at INTEGER NOT NULL,
    last_login_at INTEGER
);
CREATE UNIQUE INDEX console_users_email ON console_users (email);

-- A signed-in browser: only the SHA-256 of its cookie is kept.
CREATE TABLE console_sessions (
    token_hash BLOB PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES console_users(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX console_sessions_user ON console_sessions (user_id);

-- A person's decision on a verification that landed in review: one per job (the primary key is
-- what stops two reviewers deciding the same job twice).
CREATE TABLE job_reviews (
    job_id TEXT PRIMARY KEY REFERENCES jobs(id),
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    outcome TEXT NOT NULL,
    comment TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX job_reviews_tenant ON job_reviews (tenant_id, at);
