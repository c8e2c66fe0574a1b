-- Media: per-subject data keys (crypto-shredding) and encrypted, content-addressed blobs.
ALTER TABLE tenants ADD COLUMN media_retention_days INTEGER NOT NULL DEFAULT 30;
-- Which kinds of image a verification keeps; liveness frames are not kept unless asked for.
ALTER TABLE tenants ADD COLUMN media_kinds TEXT NOT NULL DEFAULT 'selfie,face_crop,document_front,document_back';

-- One data key per (tenant, subject), wrapped by the master key. Deleting the row makes every
-- blob sealed under it unreadable, wherever copies of the ciphertext survive.
CREATE TABLE subjects (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    id           TEXT NOT NULL,
    wrapped_key  BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- Only ids, sizes, the blob's address (sha256 of its ciphertext) and times: no plaintext facts.
CREATE TABLE media (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    subject_id  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    object      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    FOREIGN KEY (tenant_id, subject_id) REFERENCES subjects(tenant_id, id)
);
CREATE INDEX media_expiry ON media(expires_at);
CREATE INDEX media_subject ON media(tenant_id, subject_id);
