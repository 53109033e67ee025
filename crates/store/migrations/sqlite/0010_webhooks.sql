-- Outgoing webhooks (docs/webhooks.md). A subscription names the outbox
-- event kinds it wants; each matching event becomes one delivery row per
-- subscription (unique, so fanning out twice queues nothing twice), which
-- `deliver_due` claims with a lease, sends signed, and retries with backoff
-- until it is delivered or a dead letter.
CREATE TABLE webhook_subscriptions (
    id             TEXT PRIMARY KEY,
    url            TEXT NOT NULL,
    -- JSON array of patterns: exact kinds, `family.*` or `*`.
    event_kinds    TEXT NOT NULL,
    description    TEXT NOT NULL DEFAULT '',
    -- The signing secret, AES-256-GCM under the master keyring, bound to
    -- (webhook_subscriptions, secret, id). Shown once, at creation or rotation.
    secret_enc     BLOB NOT NULL,
    active         BIGINT NOT NULL DEFAULT 1,
    -- Only outbox events with a larger id are delivered to it (a new
    -- subscription gets what happens after it, not the history).
    from_event_id  BIGINT NOT NULL,
    created_by     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id                TEXT PRIMARY KEY,
    subscription_id   TEXT NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    event_id          BIGINT NOT NULL,
    event_kind        TEXT NOT NULL,
    -- The exact body sent on every attempt.
    payload           TEXT NOT NULL,
    -- pending | delivered | dead
    status            TEXT NOT NULL,
    attempts          BIGINT NOT NULL DEFAULT 0,
    next_attempt_at   BIGINT NOT NULL,
    -- Set while one node is sending it; another node may take it over
    -- once the lease has run out (the first one died mid-send).
    lease_until       BIGINT,
    last_status_code  BIGINT,
    last_error        TEXT,
    delivered_at      BIGINT,
    created_at        BIGINT NOT NULL
);
CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries (subscription_id, event_id);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

-- How far fan-out has read the outbox for sure: every event with an id up
-- to here is queued for every subscription that wanted it. One row.
CREATE TABLE webhook_cursor (
    id             BIGINT PRIMARY KEY,
    last_event_id  BIGINT NOT NULL
);
INSERT INTO webhook_cursor (id, last_event_id) VALUES (1, 0);
