-- Due deliveries by endpoint, for the per-endpoint cap of the delivery worker (WEBHOOK_ENDPOINT_CONCURRENCY).
--
-- The worker claims, for each enabled endpoint, its earliest due deliveries up to the share it has free: one
-- range of this index per endpoint. A claim in one next_attempt_at order over all endpoints (012's
-- webhook_deliveries_due) had to read past the whole backlog of an endpoint at its cap to reach another
-- endpoint's deliveries. This index replaces that one, so a delivery still costs the same number of index
-- entries. `if not exists`: on a large table, create it first with `create index concurrently` (same name and
-- columns) outside a transaction; this migration then only drops the old one.
create index if not exists webhook_deliveries_endpoint_due on webhook_deliveries (endpoint_id, next_attempt_at)
  where status = 'pending';
drop index webhook_deliveries_due;
