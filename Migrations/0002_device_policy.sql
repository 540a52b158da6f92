-- The device policy's verdict per device, refreshed with every inventory sync: NULL when the
-- device may be assigned, else the rule that refuses it (in-use, host-class, not-allowed,
-- no-iommu-group) and a sentence saying why.
ALTER TABLE devices ADD COLUMN refusal_rule TEXT;
ALTER TABLE devices ADD COLUMN refusal_reason TEXT;
