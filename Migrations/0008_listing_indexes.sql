-- Lists skip what is being deleted (deletion_requested_at set): these partial indexes hold
-- only what lists show, in id order, so a page (and a page filtered by VM or by device)
-- reads just its rows, however many tombstones and bindings of other owners there are.
-- Without them a filter by a device with few bindings walked every binding ever made.
CREATE INDEX vms_listed ON vms(id) WHERE deletion_requested_at IS NULL;
CREATE INDEX bindings_listed ON bindings(id) WHERE deletion_requested_at IS NULL;
CREATE INDEX bindings_listed_by_vm ON bindings(vm_id, id) WHERE deletion_requested_at IS NULL;
CREATE INDEX bindings_listed_by_device ON bindings(device_address, id) WHERE deletion_requested_at IS NULL;
