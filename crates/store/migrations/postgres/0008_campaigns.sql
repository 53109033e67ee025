-- Campaigns as marketing defined them. The definition is kept as JSON and
-- read back through `regulars_core::campaign::CampaignSpec`, which checked it
-- on the way in; the columns beside it are what lists and jobs filter on.
CREATE TABLE campaigns (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    trigger_kind       TEXT NOT NULL,
    spec_json          TEXT NOT NULL,
    status             TEXT NOT NULL,
    -- Members the audience held when it was submitted (the approval line
    -- is compared with this).
    audience_estimate  BIGINT NOT NULL DEFAULT 0,
    created_by         TEXT NOT NULL,
    submitted_by       TEXT,
    approved_by        TEXT,
    approved_at        BIGINT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX campaigns_status ON campaigns (status, trigger_kind);
