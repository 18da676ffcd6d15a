-- Indexes for the read side of the API: the filtered, cursor-paged call list, extractions
-- across calls by schema, and the callers list.
--
-- Portable DDL, like 0001-0004. Lists are ordered newest first by (time, id) and paged with
-- a keyset cursor `(time, id) < (…)`, so each index ends with the time and the id; a
-- B-tree serves the descending order by walking it backwards.

-- GET /api/v1/calls for one tenant, with or without from/to and a cursor.
CREATE INDEX calls_by_tenant_started_id ON calls (tenant_id, started_at, id);
-- The operator's list across every tenant.
CREATE INDEX calls_by_started_id ON calls (started_at, id);
-- ?dialled=, ?status= (?caller= is served by calls_by_tenant_caller_started from 0003).
CREATE INDEX calls_by_tenant_dialled_started ON calls (tenant_id, dialled, started_at, id);
CREATE INDEX calls_by_tenant_status_started ON calls (tenant_id, status, started_at, id);

-- GET /api/v1/extractions?schema= (and without a schema), by creation time.
CREATE INDEX extractions_by_tenant_schema_created ON extractions (tenant_id, schema_id, created_at, id);
CREATE INDEX extractions_by_tenant_created ON extractions (tenant_id, created_at, id);

-- GET /api/v1/callers, most recent caller first.
CREATE INDEX callers_by_tenant_last_call ON callers (tenant_id, last_call_at, phone);
