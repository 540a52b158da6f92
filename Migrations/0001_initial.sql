-- Bindery's initial schema: desired state, status, the host PASID space, the
-- reconciler's operations journal, idempotency records and the audit chain.
-- Addresses (u64 in the kernel) are stored as INTEGER; the API caps them below 2^63.
-- Times are RFC 3339 UTC text. JSON columns hold compact JSON text.

-- A VM's IOMMU context (one VFIO container or one iommufd IOAS).
CREATE TABLE vms (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    labels              TEXT NOT NULL DEFAULT '{}',
    generation          INTEGER NOT NULL DEFAULT 1,
    resource_version    INTEGER NOT NULL DEFAULT 1,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    deletion_requested_at TEXT,
    deleted_at          TEXT,                      -- tombstone once torn down
    phase               TEXT NOT NULL DEFAULT 'Pending',
    observed_generation INTEGER NOT NULL DEFAULT 0,
    conditions          TEXT NOT NULL DEFAULT '[]'
);
-- A name is unique among live VMs; a deleted VM's name can be used again.
CREATE UNIQUE INDEX vms_live_name ON vms(name) WHERE deleted_at IS NULL;

-- Guest memory regions DMA-mapped into the VM's context.
CREATE TABLE vm_memory_regions (
    vm_id           TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
    position        INTEGER NOT NULL,
    guest_address   INTEGER NOT NULL CHECK (guest_address >= 0),
    size            INTEGER NOT NULL CHECK (size > 0),
    backing_path    TEXT,
    backing_offset  INTEGER NOT NULL DEFAULT 0 CHECK (backing_offset >= 0),
    PRIMARY KEY (vm_id, position)
);

-- PCI devices: the latest inventory snapshot plus the desired assignment.
CREATE TABLE devices (
    address             TEXT PRIMARY KEY,          -- 0000:3b:00.0
    vendor_id           INTEGER NOT NULL,
    device_id           INTEGER NOT NULL,
    class_code          INTEGER NOT NULL,
    iommu_group         INTEGER,
    driver              TEXT,
    numa_node           INTEGER,
    pasid_supported     INTEGER NOT NULL DEFAULT 0,
    pasid_width         INTEGER NOT NULL DEFAULT 0,
    ats_supported       INTEGER NOT NULL DEFAULT 0,
    pri_supported       INTEGER NOT NULL DEFAULT 0,
    present             INTEGER NOT NULL DEFAULT 1,
    inventoried_at      TEXT NOT NULL,
    vm_id               TEXT REFERENCES vms(id),   -- desired assignment
    managed             INTEGER NOT NULL DEFAULT 0,
    original_driver     TEXT,                      -- restored when a managed device is released
    generation          INTEGER NOT NULL DEFAULT 1,
    resource_version    INTEGER NOT NULL DEFAULT 1,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    phase               TEXT NOT NULL DEFAULT 'Unassigned',
    observed_generation INTEGER NOT NULL DEFAULT 0,
    conditions          TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX devices_by_group ON devices(iommu_group);
CREATE INDEX devices_by_vm ON devices(vm_id);

-- Guest PASID bindings (guest page tables bound for nested translation).
CREATE TABLE bindings (
    id                   TEXT PRIMARY KEY,
    vm_id                TEXT NOT NULL REFERENCES vms(id),
    device_address       TEXT NOT NULL REFERENCES devices(address),
    type                 TEXT NOT NULL CHECK (type = 'guest-page-table'),
    guest_pasid          INTEGER NOT NULL CHECK (guest_pasid > 0),
    requested_host_pasid INTEGER CHECK (requested_host_pasid > 0),
    format               TEXT NOT NULL,
    version              INTEGER NOT NULL,
    page_table_address   INTEGER NOT NULL CHECK (page_table_address >= 0),
    address_width        INTEGER NOT NULL,
    format_fields        TEXT NOT NULL DEFAULT '{}', -- e.g. vtd flags, pat, emt
    generation           INTEGER NOT NULL DEFAULT 1,
    resource_version     INTEGER NOT NULL DEFAULT 1,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    deletion_requested_at TEXT,
    deleted_at           TEXT,                     -- tombstone once unbound
    phase                TEXT NOT NULL DEFAULT 'Pending',
    observed_generation  INTEGER NOT NULL DEFAULT 0,
    conditions           TEXT NOT NULL DEFAULT '[]',
    host_pasid           INTEGER,                  -- in use in the kernel
    last_error_errno     TEXT,
    last_error_call      TEXT,
    next_retry_at        TEXT
);
CREATE UNIQUE INDEX bindings_live_guest_pasid
    ON bindings(device_address, guest_pasid) WHERE deleted_at IS NULL;
CREATE INDEX bindings_by_vm ON bindings(vm_id);
CREATE INDEX bindings_by_phase ON bindings(phase);

-- The host PASID space, per device: a host PASID belongs to at most one binding.
CREATE TABLE host_pasids (
    device_address TEXT NOT NULL REFERENCES devices(address),
    pasid          INTEGER NOT NULL CHECK (pasid > 0),
    binding_id     TEXT NOT NULL REFERENCES bindings(id),
    allocated_at   TEXT NOT NULL,
    PRIMARY KEY (device_address, pasid)
);
CREATE UNIQUE INDEX host_pasids_by_binding ON host_pasids(binding_id);

-- The reconciler's journal: an intent row before each kernel call, its result after.
CREATE TABLE operations (
    id             INTEGER PRIMARY KEY,
    resource_type  TEXT NOT NULL,
    resource_id    TEXT NOT NULL,
    action         TEXT NOT NULL,
    generation     INTEGER NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('intent', 'succeeded', 'failed')),
    detail         TEXT NOT NULL DEFAULT '{}',
    kernel_call    TEXT,
    errno_name     TEXT,
    started_at     TEXT NOT NULL,
    finished_at    TEXT
);
CREATE INDEX operations_open ON operations(state) WHERE state = 'intent';
CREATE INDEX operations_by_resource ON operations(resource_type, resource_id);

-- Idempotency-Key records for POST: the first answer, replayed for the same body.
CREATE TABLE idempotency_keys (
    identity        TEXT NOT NULL,
    key             TEXT NOT NULL,
    request_sha256  BLOB NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('in-flight', 'completed')),
    status          INTEGER,
    response_headers TEXT,
    response_body   BLOB,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    PRIMARY KEY (identity, key)
);
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys(expires_at);

-- The audit history: append-only and hash-chained.
-- hash = SHA-256(prev_hash || canonical bytes of the event); the first prev_hash is 32 zero bytes.
CREATE TABLE audit_events (
    seq             INTEGER PRIMARY KEY CHECK (seq > 0),
    time            TEXT NOT NULL,
    actor_identity  TEXT NOT NULL,
    actor_role      TEXT,
    remote_address  TEXT,
    request_id      TEXT,
    action          TEXT NOT NULL,
    resource_type   TEXT NOT NULL,
    resource_id     TEXT,
    outcome         TEXT NOT NULL CHECK (outcome IN ('success', 'denied', 'failed')),
    http_status     INTEGER,
    before_json     TEXT,
    after_json      TEXT,
    prev_hash       BLOB NOT NULL CHECK (length(prev_hash) = 32),
    hash            BLOB NOT NULL CHECK (length(hash) = 32)
);
CREATE INDEX audit_by_actor ON audit_events(actor_identity, seq);
CREATE INDEX audit_by_resource ON audit_events(resource_type, resource_id, seq);
CREATE INDEX audit_by_time ON audit_events(time);
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused'); END;
