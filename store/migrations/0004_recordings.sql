-- Call recordings: one two-channel WAV file per recorded call (caller, agent), written by the
-- server beside the database. The row says where the file is and how long it is; the
-- retention sweep deletes the file and then the row.
--
-- Portable DDL, like 0001-0003.

CREATE TABLE recordings (
    tenant_id    TEXT NOT NULL,
    call_id      TEXT NOT NULL,
    -- Absolute path of the WAV file on the server.
    path         TEXT NOT NULL,
    duration_ms  BIGINT NOT NULL,
    -- When the recording was finished (unix ms); retention counts from here.
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, call_id),
    FOREIGN KEY (tenant_id, call_id) REFERENCES calls (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX recordings_by_tenant_created ON recordings (tenant_id, created_at);
