-- The campaign outbox: one row per (campaign, member, step), written when a
-- trigger finds the member and never twice (the unique key). Control-group
-- members get a row too (status 'control'): they are measured, not sent.
-- A sender claims due rows with a lease; the row id is the provider's
-- idempotency key, so a send retried after a crash or a time-out is one
-- message to the guest.
CREATE TABLE campaign_sends (
    id               TEXT PRIMARY KEY,
    campaign_id      TEXT NOT NULL REFERENCES campaigns(id),
    member_id        TEXT NOT NULL REFERENCES members(id),
    -- What this send answers: 'birthday:2027', 'dormant:<last order id>', …
    step             TEXT NOT NULL,
    -- 'control' or the variant's number.
    arm              TEXT NOT NULL,
    -- pending | sending | sent | control | skipped | dead
    status           TEXT NOT NULL,
    channel          TEXT,
    skip_reason      TEXT,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    lease_until      BIGINT,
    provider_ref     TEXT,
    last_error       TEXT,
    -- When the member entered the campaign (both arms): attribution starts here.
    created_at       BIGINT NOT NULL,
    sent_at          BIGINT,
    CONSTRAINT campaign_sends_once UNIQUE (campaign_id, member_id, step)
);
CREATE INDEX campaign_sends_due ON campaign_sends (status, next_attempt_at);
CREATE INDEX campaign_sends_member ON campaign_sends (member_id, sent_at);

-- The member's H5 inbox (a channel that needs no consent and keeps no quiet hours).
CREATE TABLE member_inbox (
    id           TEXT PRIMARY KEY,
    member_id    TEXT NOT NULL REFERENCES members(id),
    send_id      TEXT NOT NULL,
    campaign_id  TEXT NOT NULL,
    body         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    read_at      BIGINT,
    CONSTRAINT member_inbox_send UNIQUE (send_id)
);
CREATE INDEX member_inbox_member ON member_inbox (member_id, created_at);

-- The member's own clock for quiet hours (IANA name; the chain's when NULL),
-- the language messages are written in ('zh' when NULL), and the marketing
-- opt-out (unsubscribe link or SMS keyword).
ALTER TABLE members ADD COLUMN time_zone TEXT;
ALTER TABLE members ADD COLUMN language TEXT;
ALTER TABLE members ADD COLUMN marketing_opt_out_at BIGINT;
