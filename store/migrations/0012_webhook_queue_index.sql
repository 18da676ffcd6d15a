-- The dispatcher takes each endpoint's oldest pending delivery, one at a time per endpoint.
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, status, created_at);
