-- Per-tenant liveness thresholds as JSON (NULL = the built-in defaults).
ALTER TABLE tenants ADD COLUMN liveness_thresholds TEXT;
-- Facia-compatible `hash_id`: SHA-256 of the bearer credential (it needs no HMAC, so only its hash
-- is kept); the key's status and tenant govern it like any key.
ALTER TABLE api_keys ADD COLUMN facia_hash BLOB;
CREATE UNIQUE INDEX api_keys_facia_hash ON api_keys(facia_hash) WHERE facia_hash IS NOT NULL;
