-- The VMs the reconciler still has work on: not Ready, not yet at their generation, or being
-- deleted. The periodic resync reads only these (through this partial index), so its cost
-- follows the work outstanding, not the number of VMs: a million settled VMs cost it nothing.
CREATE INDEX vms_unsettled ON vms(id)
    WHERE deleted_at IS NULL AND (phase != 'Ready' OR observed_generation != generation OR deletion_requested_at IS NOT NULL);
