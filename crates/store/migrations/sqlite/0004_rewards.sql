-- Rewards catalogue and coupons: templates (JSON specs, edited by marketing),
-- coupons with unique unguessable codes, and what points buy.

CREATE TABLE coupon_templates (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    spec_json   TEXT NOT NULL,
    active      BIGINT NOT NULL DEFAULT 1,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- One row per coupon. `(source, source_ref, template_id)` is the once-guard
-- of every issue: a redemption, a birthday year, an Idempotency-Key, a
-- complaint or a campaign issues a template's coupon at most once.
CREATE TABLE coupons (
    id              TEXT PRIMARY KEY,
    code            TEXT NOT NULL,
    template_id     TEXT NOT NULL REFERENCES coupon_templates(id),
    member_id       TEXT NOT NULL REFERENCES members(id),
    source          TEXT NOT NULL,
    source_ref      TEXT NOT NULL,
    status          TEXT NOT NULL,
    issued_at       BIGINT NOT NULL,
    valid_from      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    redeemed_at     BIGINT,
    redeemed_store  TEXT,
    redeemed_order  TEXT,
    discount_fen    BIGINT,
    redeem_hash     TEXT,
    CONSTRAINT coupons_code UNIQUE (code),
    CONSTRAINT coupons_once UNIQUE (source, source_ref, template_id)
);
CREATE INDEX coupons_member ON coupons (member_id, status, expires_at);
CREATE INDEX coupons_expiry ON coupons (status, expires_at);

CREATE TABLE rewards (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    kind                TEXT NOT NULL,
    points_cost         BIGINT NOT NULL,
    coupon_template_id  TEXT REFERENCES coupon_templates(id),
    stock_total         BIGINT,
    stock_left          BIGINT,
    per_member_limit    BIGINT,
    min_tier            TEXT NOT NULL,
    description         TEXT,
    active              BIGINT NOT NULL DEFAULT 1,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

CREATE INDEX redemptions_reward ON redemptions (reward_id, member_id);
