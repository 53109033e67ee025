-- Manual points adjustments above the requester's own limit wait here for
-- an HQ admin: approved ones are applied through the normal adjustment
-- (ledger entry `entry_id`, approver recorded), rejected ones change nothing.
-- The requester cannot decide their own request.
CREATE TABLE adjustment_requests (
    id            TEXT PRIMARY KEY,
    member_id     TEXT NOT NULL REFERENCES members(id),
    -- `adjust` or `compensation`
    kind          TEXT NOT NULL,
    points        BIGINT NOT NULL,
    reason        TEXT NOT NULL,
    requested_by  TEXT NOT NULL,
    requested_at  BIGINT NOT NULL,
    -- `pending`, `approved`, `rejected`
    status        TEXT NOT NULL DEFAULT 'pending',
    decided_by    TEXT,
    decided_at    BIGINT,
    entry_id      TEXT
);
CREATE INDEX adjustment_requests_status ON adjustment_requests (status, requested_at);
CREATE INDEX adjustment_requests_member ON adjustment_requests (member_id);
