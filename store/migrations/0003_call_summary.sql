-- A summary of each call and the caller's sentiment, for the call detail and for greeting a
-- returning caller with what happened last time.
--
-- Portable DDL, like 0001 and 0002: TEXT only, plain ADD COLUMN. Both columns stay NULL until
-- a summary is written (after the call, or never).

-- Free text, a few sentences.
ALTER TABLE calls ADD COLUMN summary TEXT;
-- One of 'positive', 'neutral', 'negative' (checked by the application, not the schema).
ALTER TABLE calls ADD COLUMN sentiment TEXT;

-- The returning-caller lookup: a tenant's calls from one number, newest first.
CREATE INDEX calls_by_tenant_caller_started ON calls (tenant_id, caller, started_at DESC);
