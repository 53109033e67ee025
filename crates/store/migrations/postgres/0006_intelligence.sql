-- Customer intelligence: what `regulars score` computes for every member each
-- night, the model parameters it fitted, and the segments marketing saved.

-- History that did not come through the order path (`regulars generate`,
-- imports of another system's orders): stored for analytics, earns nothing,
-- and so has no ledger entry and no outbox event.
ALTER TABLE orders ADD COLUMN imported BIGINT NOT NULL DEFAULT 0;

-- One row per member, replaced by every scoring run.
CREATE TABLE member_insights (
    member_id            TEXT PRIMARY KEY REFERENCES members(id),
    scored_at            BIGINT NOT NULL,
    first_visit_at       BIGINT,
    last_visit_at        BIGINT,
    visits_total         BIGINT NOT NULL,
    visits_12m           BIGINT NOT NULL,
    spend_total_fen      BIGINT NOT NULL,
    spend_12m_fen        BIGINT NOT NULL,
    spend_90d_fen        BIGINT NOT NULL,
    spend_prev_90d_fen   BIGINT NOT NULL,
    cadence_days         DOUBLE PRECISION,
    r_score              BIGINT,
    f_score              BIGINT,
    m_score              BIGINT,
    rfm                  BIGINT,
    grade                TEXT NOT NULL,
    vip                  BIGINT NOT NULL,
    vip_decline          BIGINT NOT NULL,
    lifecycle            TEXT NOT NULL,
    p_alive              DOUBLE PRECISION,
    expected_visits_30   DOUBLE PRECISION,
    expected_visits_90   DOUBLE PRECISION,
    expected_spend_fen   BIGINT,
    clv_fen              BIGINT,
    churn_risk           TEXT,
    spice_level          BIGINT,
    taste_json           TEXT NOT NULL,
    recommendations_json TEXT NOT NULL
);
CREATE INDEX member_insights_lifecycle ON member_insights (lifecycle);
CREATE INDEX member_insights_grade ON member_insights (grade);

-- Every fit of the models, newest last: the parameters behind P(alive) and CLV.
CREATE TABLE model_fits (
    id             TEXT PRIMARY KEY,
    fitted_at      BIGINT NOT NULL,
    customers      BIGINT NOT NULL,
    bgnbd_json     TEXT NOT NULL,
    gamma_json     TEXT,
    report_json    TEXT NOT NULL
);

-- Saved segments: a name and an expression of the segments language.
CREATE TABLE segments (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    expression   TEXT NOT NULL,
    description  TEXT,
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    CONSTRAINT segments_name UNIQUE (name)
);
