-- Where a trunk is defined: 'config' (the config file's [[trunks]], mirrored at start) or
-- 'api' (created by the operator over the API: a plain trunk admitting its source networks).
ALTER TABLE trunks ADD COLUMN source TEXT NOT NULL DEFAULT 'config';
