-- The tenant's face-match decision threshold on calibrated similarity; requests may only be stricter.
ALTER TABLE tenants ADD COLUMN face_match_threshold REAL NOT NULL DEFAULT 0.75;
