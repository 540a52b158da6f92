-- One-time attach tokens: POST /v1/vms/{id}/attachments issues one, the VMM socket spends it.
-- Only the token's SHA-256 is kept; a token opens one VM's devices, once, before it expires.
CREATE TABLE attach_tokens (
    token_sha256  BLOB PRIMARY KEY,
    vm_id         TEXT NOT NULL REFERENCES vms(id),
    issuer        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    used_at       TEXT,
    used_by_pid   INTEGER,
    used_by_uid   INTEGER
);
CREATE INDEX attach_tokens_vm ON attach_tokens (vm_id);

-- The VMM holding a VM's devices now (at most one per VM), from its socket peer credentials.
CREATE TABLE vmm_holders (
    vm_id   TEXT PRIMARY KEY REFERENCES vms(id),
    pid     INTEGER NOT NULL,
    uid     INTEGER NOT NULL,
    gid     INTEGER NOT NULL,
    issuer  TEXT NOT NULL,
    since   TEXT NOT NULL
);
