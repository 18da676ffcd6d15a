-- Tenants managed over the API: their settings, their API keys.
--
-- Portable DDL (see 0001): TEXT/BIGINT only, times as unix milliseconds.
--
-- Phone-number ownership needs no new column: phone_numbers.number is the primary key and
-- phone_numbers.tenant_id its owner; the store refuses to move a number between tenants
-- (Store::assign_phone_number answers Conflict) instead of overwriting the owner.

-- The tenant's settings as a JSON object (fallback text, LLM, limits, …); NULL: none set.
ALTER TABLE tenants ADD COLUMN settings_json TEXT;

CREATE TABLE api_keys (
    -- UUIDv7, shown in listings and used to revoke the key.
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- What the tenant calls the key, e.g. `crm export`.
    name          TEXT NOT NULL,
    -- The public start of the key (`vk_` and 8 characters), shown in listings.
    prefix        TEXT NOT NULL,
    -- Lowercase hex SHA-256 of the whole key. The key itself is never stored.
    key_hash      TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    -- Updated at most about once a minute.
    last_used_at  BIGINT,
    -- Set when the key is revoked; a revoked key no longer authenticates.
    revoked_at    BIGINT
);
CREATE UNIQUE INDEX api_keys_by_hash ON api_keys (key_hash);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, created_at);
