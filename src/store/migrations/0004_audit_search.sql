-- Full-text search over the audit log (external content: the text lives once, in audit_log).
CREATE VIRTUAL TABLE audit_fts USING fts5(
    actor, action, target, details,
    content = 'audit_log', content_rowid = 'seq', tokenize = 'unicode61'
);
INSERT INTO audit_fts (rowid, actor, action, target, details)
    SELECT seq, actor, action, coalesce(target, ''), details FROM audit_log;
CREATE TRIGGER audit_log_index AFTER INSERT ON audit_log BEGIN
    INSERT INTO audit_fts (rowid, actor, action, target, details)
    VALUES (new.seq, new.actor, new.action, coalesce(new.target, ''), new.details);
END;
