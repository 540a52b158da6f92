-- The iommufd object ids of each VM's context (IOAS, nesting parent, device ids, stage-1
-- HWPTs), written in the same transaction as the status they go with, while the iommufd is
-- kept in the service manager's fd store: a restart that adopts the iommufd needs them, and
-- the kernel has no call that lists them. Never guessed: iommufd reuses freed ids.
CREATE TABLE kernel_objects (
    vm_id      TEXT NOT NULL REFERENCES vms(id),
    name       TEXT NOT NULL,
    object_id  INTEGER NOT NULL CHECK (object_id >= 0),
    PRIMARY KEY (vm_id, name)
);
