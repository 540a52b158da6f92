-- Signed checkpoints of the audit chain: a seq, the chain's hash at that seq and a time,
-- signed with the data dir's Ed25519 key (audit-signing-key). Verification checks each one
-- against the chain, so events lost from the tail show (the checkpoint outlives them), and a
-- checkpoint altered or signed by another key shows too. Exported with the history
-- (GET /v1/audit/checkpoints), they let an auditor off the host prove what the chain held.
CREATE TABLE audit_checkpoints (
    seq         INTEGER PRIMARY KEY CHECK (seq > 0),
    head_hash   BLOB NOT NULL CHECK (length(head_hash) = 32),
    time        TEXT NOT NULL,
    public_key  BLOB NOT NULL CHECK (length(public_key) = 32),
    signature   BLOB NOT NULL CHECK (length(signature) = 64)
);
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only: UPDATE refused'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only: DELETE refused'); END;
