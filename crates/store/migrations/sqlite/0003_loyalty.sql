-- Loyalty engine: orders, the append-only points ledger with lots, refunds,
-- redemptions, transfers, tiers, earning rules, idempotency and the outbox.

ALTER TABLE members ADD COLUMN points_debt BIGINT NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN tier_floor TEXT;
ALTER TABLE members ADD COLUMN tier_floor_until BIGINT;
ALTER TABLE members ADD COLUMN tier_grace_since BIGINT;
ALTER TABLE members ADD COLUMN family_share BIGINT NOT NULL DEFAULT 0;

CREATE TABLE orders (
    id               TEXT PRIMARY KEY,
    store_code       TEXT NOT NULL REFERENCES stores(code),
    pos_order_id     TEXT NOT NULL,
    member_id        TEXT REFERENCES members(id),
    channel          TEXT NOT NULL,
    occurred_at      BIGINT NOT NULL,
    paid_fen         BIGINT NOT NULL,
    eligible_fen     BIGINT NOT NULL,
    qualifying_fen   BIGINT NOT NULL,
    refunded_fen     BIGINT NOT NULL DEFAULT 0,
    points_earned    BIGINT NOT NULL DEFAULT 0,
    points_reversed  BIGINT NOT NULL DEFAULT 0,
    party_size       BIGINT,
    receipt_code     TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    response_json    TEXT NOT NULL DEFAULT '',
    rule_version     BIGINT NOT NULL DEFAULT 0,
    claimed_at       BIGINT,
    created_at       BIGINT NOT NULL,
    CONSTRAINT orders_pos_order UNIQUE (store_code, pos_order_id),
    CONSTRAINT orders_receipt_code UNIQUE (receipt_code)
);
CREATE INDEX orders_member ON orders (member_id, occurred_at);
CREATE INDEX orders_store_time ON orders (store_code, occurred_at);

CREATE TABLE order_items (
    order_id        TEXT NOT NULL REFERENCES orders(id),
    line            BIGINT NOT NULL,
    sku             TEXT NOT NULL,
    name            TEXT NOT NULL,
    category        TEXT NOT NULL,
    quantity        BIGINT NOT NULL,
    unit_price_fen  BIGINT NOT NULL,
    discount_fen    BIGINT NOT NULL,
    voided          BIGINT NOT NULL,
    comped          BIGINT NOT NULL,
    staff_meal      BIGINT NOT NULL,
    PRIMARY KEY (order_id, line)
);
CREATE INDEX order_items_sku ON order_items (sku);

-- Append-only. `points` is signed; the member's balance cache equals the sum.
CREATE TABLE ledger_entries (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    member_id  TEXT NOT NULL REFERENCES members(id),
    kind       TEXT NOT NULL,
    points     BIGINT NOT NULL,
    reason     TEXT NOT NULL,
    order_id   TEXT REFERENCES orders(id),
    ref        TEXT,
    actor      TEXT NOT NULL,
    approver   TEXT,
    at         BIGINT NOT NULL
);
CREATE INDEX ledger_entries_member ON ledger_entries (member_id, id);
CREATE UNIQUE INDEX ledger_entries_one_earn_per_order ON ledger_entries (order_id) WHERE kind = 'earn';

-- A lot is a positive entry's points with an expiry; `remaining` is a cache
-- of points − Σ allocations, checked by `regulars verify`.
CREATE TABLE lots (
    entry_id    BIGINT PRIMARY KEY REFERENCES ledger_entries(id),
    member_id   TEXT NOT NULL REFERENCES members(id),
    points      BIGINT NOT NULL,
    remaining   BIGINT NOT NULL,
    earned_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX lots_member_open ON lots (member_id, expires_at) WHERE remaining > 0;
CREATE INDEX lots_expiring ON lots (expires_at) WHERE remaining > 0;

-- Which lots a consuming entry (redeem, expire, reverse, transfer_out, negative adjust) took from.
CREATE TABLE lot_allocations (
    entry_id   BIGINT NOT NULL REFERENCES ledger_entries(id),
    lot_id     BIGINT NOT NULL REFERENCES lots(entry_id),
    member_id  TEXT NOT NULL,
    points     BIGINT NOT NULL,
    PRIMARY KEY (entry_id, lot_id)
);
CREATE INDEX lot_allocations_lot ON lot_allocations (lot_id);

-- Refund shortfalls: + owed when a clawback found the balance short, − when
-- later earnings settle it. members.points_debt is the cache of the sum.
CREATE TABLE point_debts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    member_id  TEXT NOT NULL REFERENCES members(id),
    points     BIGINT NOT NULL,
    order_id   TEXT,
    entry_id   BIGINT,
    reason     TEXT NOT NULL,
    at         BIGINT NOT NULL
);
CREATE INDEX point_debts_member ON point_debts (member_id, id);

CREATE TABLE refunds (
    store_code       TEXT NOT NULL,
    refund_id        TEXT NOT NULL,
    order_id         TEXT NOT NULL REFERENCES orders(id),
    amount_fen       BIGINT NOT NULL,
    points_reversed  BIGINT NOT NULL,
    shortfall        BIGINT NOT NULL,
    request_hash     TEXT NOT NULL,
    response_json    TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (store_code, refund_id)
);
CREATE INDEX refunds_order ON refunds (order_id);

-- Results of mutating calls keyed by the caller's Idempotency-Key.
CREATE TABLE idempotency_keys (
    scope          TEXT NOT NULL,
    key            TEXT NOT NULL,
    request_hash   TEXT NOT NULL,
    status         BIGINT NOT NULL,
    response_json  TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE TABLE redemptions (
    id          TEXT PRIMARY KEY,
    member_id   TEXT NOT NULL REFERENCES members(id),
    entry_id    BIGINT NOT NULL REFERENCES ledger_entries(id),
    points      BIGINT NOT NULL,
    store_code  TEXT NOT NULL,
    reward_id   TEXT,
    note        TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX redemptions_member ON redemptions (member_id, created_at);

CREATE TABLE transfers (
    id              TEXT PRIMARY KEY,
    from_member_id  TEXT NOT NULL REFERENCES members(id),
    to_member_id    TEXT NOT NULL REFERENCES members(id),
    points          BIGINT NOT NULL,
    out_entry_id    BIGINT NOT NULL,
    in_entry_id     BIGINT NOT NULL,
    at              BIGINT NOT NULL
);

CREATE TABLE tier_history (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    member_id             TEXT NOT NULL REFERENCES members(id),
    from_tier             TEXT NOT NULL,
    to_tier               TEXT NOT NULL,
    reason                TEXT NOT NULL,
    qualifying_spend_fen  BIGINT NOT NULL,
    actor                 TEXT NOT NULL,
    at                    BIGINT NOT NULL
);
CREATE INDEX tier_history_member ON tier_history (member_id, id);

-- Each change to the earning rules stores the whole set as a new version.
CREATE TABLE earning_rule_versions (
    version     INTEGER PRIMARY KEY AUTOINCREMENT,
    rules_json  TEXT NOT NULL,
    note        TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Events written in the same transaction as the change; later delivered.
CREATE TABLE outbox_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT NOT NULL,
    member_id     TEXT,
    subject       TEXT NOT NULL,
    payload       TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    delivered_at  BIGINT
);
CREATE INDEX outbox_events_pending ON outbox_events (id) WHERE delivered_at IS NULL;
CREATE UNIQUE INDEX outbox_events_once ON outbox_events (kind, subject);

-- Runs of the periodic jobs (expiry, reminders, tier review, birthday gifts):
-- one row per (job, period) makes a re-run of the same period a no-op.
CREATE TABLE job_runs (
    job         TEXT NOT NULL,
    period      TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    detail      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (job, period)
);
