-- What GET and list answer for each VM and binding, stored with it: the JSON clients read,
-- after an 8-byte tag naming the renderer that wrote it (Store.renderer). A list of 100 VMs
-- then reads 100 values instead of three range reads decoded into records and encoded again.
-- NULL: stale, rendered again before the transaction that made it stale commits
-- (GroupCommitWriter). x'' (rows from before this migration) or another renderer's tag:
-- read from the columns as before, until Store.renderMissingRepresentations reaches it.
-- The triggers make any change to what a representation shows mark it stale, whichever code
-- path wrote it.
ALTER TABLE vms ADD COLUMN representation BLOB DEFAULT x'';
ALTER TABLE bindings ADD COLUMN representation BLOB DEFAULT x'';
CREATE INDEX vms_unrendered ON vms(id) WHERE representation IS NULL AND deletion_requested_at IS NULL;
CREATE INDEX bindings_unrendered ON bindings(id) WHERE representation IS NULL AND deletion_requested_at IS NULL;

-- An update that leaves the representation as it was changed something it shows.
CREATE TRIGGER vms_representation_stale AFTER UPDATE ON vms
    WHEN NEW.representation IS OLD.representation AND OLD.representation IS NOT NULL
BEGIN
    UPDATE vms SET representation = NULL WHERE id = NEW.id;
END;
CREATE TRIGGER bindings_representation_stale AFTER UPDATE ON bindings
    WHEN NEW.representation IS OLD.representation AND OLD.representation IS NOT NULL
BEGIN
    UPDATE bindings SET representation = NULL WHERE id = NEW.id;
END;

-- A VM shows its memory regions and the VMM holding it.
CREATE TRIGGER vm_regions_inserted AFTER INSERT ON vm_memory_regions
BEGIN
    UPDATE vms SET representation = NULL WHERE id = NEW.vm_id AND representation IS NOT NULL;
END;
CREATE TRIGGER vm_regions_updated AFTER UPDATE ON vm_memory_regions
BEGIN
    UPDATE vms SET representation = NULL WHERE id IN (OLD.vm_id, NEW.vm_id) AND representation IS NOT NULL;
END;
CREATE TRIGGER vm_regions_deleted AFTER DELETE ON vm_memory_regions
BEGIN
    UPDATE vms SET representation = NULL WHERE id = OLD.vm_id AND representation IS NOT NULL;
END;
CREATE TRIGGER vmm_holders_inserted AFTER INSERT ON vmm_holders
BEGIN
    UPDATE vms SET representation = NULL WHERE id = NEW.vm_id AND representation IS NOT NULL;
END;
CREATE TRIGGER vmm_holders_updated AFTER UPDATE ON vmm_holders
BEGIN
    UPDATE vms SET representation = NULL WHERE id IN (OLD.vm_id, NEW.vm_id) AND representation IS NOT NULL;
END;
CREATE TRIGGER vmm_holders_deleted AFTER DELETE ON vmm_holders
BEGIN
    UPDATE vms SET representation = NULL WHERE id = OLD.vm_id AND representation IS NOT NULL;
END;
