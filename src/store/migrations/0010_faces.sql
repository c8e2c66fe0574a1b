-- Enrolled faces (the 1:N index's source of truth) and the selfie embedding of each job.

-- One enrolled face: its SFace embedding sealed under the subject's data key (AAD: the face
-- id), so erasing the subject shreds it with everything else of theirs.
CREATE TABLE faces (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    subject_id TEXT NOT NULL,
    collection TEXT NOT NULL,
    sealed BLOB NOT NULL,
    job_id TEXT,
    quality TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX faces_tenant_subject ON faces (tenant_id, subject_id);

-- Every enrolment and removal, in commit order (writers are serialised), so each node's index
-- follows the database: a node applies the events after the last one it saw. Only ids; pruned
-- after a day (a node that was away longer rebuilds at start).
CREATE TABLE face_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    face_id TEXT NOT NULL,
    at INTEGER NOT NULL
);

-- The selfie's embedding of a completed job (sealed under the subject's key, AAD
-- `<job id>:face`), so `POST /v1/faces {job_id}` enrols the face that was verified.
ALTER TABLE jobs ADD COLUMN face BLOB;
