-- Uploaded plugins and which version each tenant runs.
--
-- A plugin version is the tenant's component (wasm bytes), stored once per tenant and content
-- hash, numbered 1, 2, 3 … per tenant in upload order, with what describe() reported and the
-- native artifact the compile child produced (NULL until compiled; replaced when an engine
-- upgrade makes it stale: compatibility_hash says which engine made it).
--
-- plugin_activations is the history of activations. A tenant's active version is its latest
-- activation that was not rolled back; rolling back marks the latest one, so repeated
-- roll-backs walk back through the history.

CREATE TABLE plugins (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    version_number      BIGINT NOT NULL,
    name                TEXT NOT NULL,
    plugin_version      TEXT NOT NULL,
    world_version       TEXT NOT NULL,
    content_hash        TEXT NOT NULL,
    size_bytes          BIGINT NOT NULL,
    -- describe() as JSON: {"name", "version", "schemas": [...]}
    info_json           TEXT NOT NULL,
    wasm                BYTEA NOT NULL,
    artifact            BYTEA,
    artifact_hash       TEXT,
    compatibility_hash  TEXT,
    created_at          BIGINT NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, version_number),
    UNIQUE (tenant_id, content_hash)
);

CREATE TABLE plugin_activations (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    plugin_id       TEXT NOT NULL,
    activated_at    BIGINT NOT NULL,
    rolled_back_at  BIGINT,
    FOREIGN KEY (tenant_id, plugin_id) REFERENCES plugins (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX plugin_activations_by_tenant ON plugin_activations (tenant_id, activated_at);
