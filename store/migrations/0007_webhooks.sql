-- Webhooks: each tenant's endpoints, and the durable outbox of deliveries to them.
--
-- A call event (call.started, call.ended, call.analyzed) is written to webhook_deliveries in
-- the same transaction as the call change it reports, one row per subscribed endpoint, so it
-- survives a crash or restart. The dispatcher leases due rows (lease_until), posts them, and
-- records the outcome: delivered, or another attempt at next_attempt_at, or failed for good.

CREATE TABLE webhook_endpoints (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url         TEXT NOT NULL,
    -- The HMAC-SHA256 signing key; shown to the tenant once, when the endpoint is created.
    secret      TEXT NOT NULL,
    -- Comma-separated event types the endpoint receives, e.g. "call.started,call.ended".
    events      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (tenant_id, id)
);

CREATE TABLE webhook_deliveries (
    -- event_id ':' endpoint_id: one delivery of one event to one endpoint.
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    endpoint_id      TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    -- The JSON body posted, exactly as signed.
    payload          TEXT NOT NULL,
    -- pending | delivered | failed
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    lease_until      BIGINT,
    -- The node (calls.node_id) holding the lease, so a restarted node can drop its own leases.
    leased_by        TEXT,
    last_status      BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    delivered_at     BIGINT,
    FOREIGN KEY (tenant_id, endpoint_id) REFERENCES webhook_endpoints (tenant_id, id)
        ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_by_tenant ON webhook_deliveries (tenant_id, created_at);
