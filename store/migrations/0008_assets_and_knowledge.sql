-- Tenant assets (audio prompts a plugin plays with play-asset) and knowledge items (the
-- tenant's reference texts: opening hours, price lists, FAQs).
--
-- An asset is stored as the server plays it: 8 kHz mono 16-bit little-endian PCM, converted
-- once at upload from the WAV the tenant sent.

CREATE TABLE assets (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           TEXT NOT NULL,
    pcm8k        BYTEA NOT NULL,
    duration_ms  BIGINT NOT NULL,
    -- Lowercase hex SHA-256 of the WAV as uploaded.
    content_hash TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE knowledge_items (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    title       TEXT NOT NULL,
    content     TEXT NOT NULL,
    -- JSON array of tag strings.
    tags        TEXT NOT NULL DEFAULT '[]',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX knowledge_items_by_tenant ON knowledge_items (tenant_id, updated_at);
