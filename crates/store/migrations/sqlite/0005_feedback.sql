-- Feedback and complaints: what the guest said, how it was classified (and
-- corrected), the complaint's workflow with every timestamp, compensation
-- through the ledger and coupons, and the service task queue.

CREATE TABLE feedback (
    id                TEXT PRIMARY KEY,
    store_code        TEXT NOT NULL REFERENCES stores(code),
    member_id         TEXT REFERENCES members(id),
    order_id          TEXT REFERENCES orders(id),
    pos_order_id      TEXT,
    table_no          TEXT,
    channel           TEXT NOT NULL,
    text              TEXT NOT NULL,
    rating            BIGINT,
    nps               BIGINT,
    category          TEXT NOT NULL,
    severity          TEXT NOT NULL,
    reasons_json      TEXT NOT NULL,
    auto_category     TEXT NOT NULL,
    auto_severity     TEXT NOT NULL,
    status            TEXT NOT NULL,
    escalation_level  BIGINT NOT NULL DEFAULT 0,
    due_at            BIGINT,
    acknowledged_at   BIGINT,
    started_at        BIGINT,
    resolved_at       BIGINT,
    followed_up_at    BIGINT,
    closed_at         BIGINT,
    escalated_at      BIGINT,
    root_cause        TEXT,
    recovered         BIGINT,
    resolution        TEXT,
    dedupe_key        TEXT NOT NULL,
    submitted_by      TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    CONSTRAINT feedback_dedupe_key UNIQUE (dedupe_key)
);
CREATE INDEX feedback_store_time ON feedback (store_code, created_at);
CREATE INDEX feedback_due ON feedback (status, due_at);
CREATE INDEX feedback_member ON feedback (member_id, created_at);

-- The complaint's timeline: status changes, escalations, notes, compensation.
CREATE TABLE feedback_events (
    id           TEXT PRIMARY KEY,
    feedback_id  TEXT NOT NULL REFERENCES feedback(id),
    kind         TEXT NOT NULL,
    detail       TEXT NOT NULL,
    actor        TEXT NOT NULL,
    at           BIGINT NOT NULL
);
CREATE INDEX feedback_events_of ON feedback_events (feedback_id, at);

-- Staff corrections of the classifier, kept to measure its accuracy.
CREATE TABLE feedback_corrections (
    id             TEXT PRIMARY KEY,
    feedback_id    TEXT NOT NULL REFERENCES feedback(id),
    from_category  TEXT NOT NULL,
    to_category    TEXT NOT NULL,
    from_severity  TEXT NOT NULL,
    to_severity    TEXT NOT NULL,
    note           TEXT,
    actor          TEXT NOT NULL,
    at             BIGINT NOT NULL
);

CREATE TABLE compensations (
    id            TEXT PRIMARY KEY,
    feedback_id   TEXT NOT NULL REFERENCES feedback(id),
    member_id     TEXT REFERENCES members(id),
    kind          TEXT NOT NULL,
    points        BIGINT,
    template_id   TEXT,
    amount_fen    BIGINT,
    note          TEXT NOT NULL,
    status        TEXT NOT NULL,
    requested_by  TEXT NOT NULL,
    requested_role TEXT NOT NULL,
    approved_by   TEXT,
    entry_id      BIGINT,
    coupon_code   TEXT,
    created_at    BIGINT NOT NULL,
    decided_at    BIGINT
);
CREATE INDEX compensations_of ON compensations (feedback_id);

-- One queue for follow-up visits (回访), complaint work, care and birthday calls.
CREATE TABLE service_tasks (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    store_code   TEXT REFERENCES stores(code),
    member_id    TEXT REFERENCES members(id),
    feedback_id  TEXT REFERENCES feedback(id),
    title        TEXT NOT NULL,
    due_at       BIGINT NOT NULL,
    assignee     TEXT,
    status       TEXT NOT NULL,
    outcome      TEXT,
    once_key     TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    done_at      BIGINT,
    CONSTRAINT service_tasks_once_key UNIQUE (once_key)
);
CREATE INDEX service_tasks_queue ON service_tasks (status, store_code, due_at);

-- Photos a guest attached: checked type (by content, not by name) and size.
CREATE TABLE feedback_photos (
    id            TEXT PRIMARY KEY,
    feedback_id   TEXT NOT NULL REFERENCES feedback(id),
    content_type  TEXT NOT NULL,
    size_bytes    BIGINT NOT NULL,
    sha256        TEXT NOT NULL,
    data          BLOB NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX feedback_photos_of ON feedback_photos (feedback_id);

-- Surveys: question sets as data; one answer per member per survey and
-- period (a visit, or a month).
CREATE TABLE surveys (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    questions_json  TEXT NOT NULL,
    active          BIGINT NOT NULL DEFAULT 1,
    created_at      BIGINT NOT NULL
);

CREATE TABLE survey_responses (
    id            TEXT PRIMARY KEY,
    survey_id     TEXT NOT NULL REFERENCES surveys(id),
    member_id     TEXT NOT NULL REFERENCES members(id),
    store_code    TEXT NOT NULL REFERENCES stores(code),
    period_key    TEXT NOT NULL,
    nps           BIGINT,
    answers_json  TEXT NOT NULL,
    feedback_id   TEXT,
    created_at    BIGINT NOT NULL,
    CONSTRAINT survey_responses_once UNIQUE (survey_id, member_id, period_key)
);
CREATE INDEX survey_responses_store ON survey_responses (survey_id, store_code, created_at);

-- Alerts raised by the jobs (complaint rate per store and region).
CREATE TABLE alerts (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    scope       TEXT NOT NULL,
    subject     TEXT NOT NULL,
    day         TEXT NOT NULL,
    value       DOUBLE PRECISION NOT NULL,
    threshold   DOUBLE PRECISION NOT NULL,
    detail      TEXT NOT NULL,
    raised_at   BIGINT NOT NULL,
    CONSTRAINT alerts_once UNIQUE (kind, subject, day)
);
