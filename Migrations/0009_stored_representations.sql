-- What GET and list answer for each VM and binding, kept with it once a read asked for it:
-- the JSON clients read, after an 8-byte tag naming the build that rendered it
-- (StoredRepresentations). A list of 100 VMs then reads 100 values instead of three range
-- reads decoded into records and encoded again.
-- NULL, or another build's tag: not rendered; reads use the columns and ask the writer to
-- render it (Store.requestRendering). The tag alone: this build cannot keep it (a time in it
-- does not parse); reads use the columns. The triggers set it NULL in the transaction that
-- changes anything it shows, whichever code path wrote it: a tagged representation is current.
ALTER TABLE vms ADD COLUMN representation BLOB;
ALTER TABLE bindings ADD COLUMN representation BLOB;

-- An update that leaves the representation as it was changed something it shows. So only
-- StoredRepresentations.render writes the column, and never with another column: an UPDATE
-- setting both would escape this trigger.
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
