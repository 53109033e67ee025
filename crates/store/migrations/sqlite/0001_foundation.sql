-- Foundation: the chain, members with encrypted personal data, staff, keys, audit.
-- Booleans are BIGINT 0/1: the Any driver reads no SQLite BOOLEAN.
-- Times are BIGINT unix milliseconds on both backends, so one query text works on both.

CREATE TABLE brands (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE regions (
    code        TEXT PRIMARY KEY,
    brand_code  TEXT NOT NULL REFERENCES brands(code),
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    CONSTRAINT regions_brand_name UNIQUE (brand_code, name)
);

CREATE TABLE stores (
    code         TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    brand_code   TEXT NOT NULL REFERENCES brands(code),
    region_code  TEXT NOT NULL REFERENCES regions(code),
    city         TEXT NOT NULL,
    address      TEXT,
    status       TEXT NOT NULL DEFAULT 'open',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX stores_region ON stores (region_code);

CREATE TABLE members (
    id                TEXT PRIMARY KEY,
    member_code       TEXT NOT NULL,
    phone_index       BLOB,
    phone_enc         BLOB,
    name_enc          BLOB,
    email_enc         BLOB,
    birthday_enc      BLOB,
    notes_enc         BLOB,
    anniversaries_enc BLOB,
    gender            TEXT,
    birth_month       BIGINT,
    birth_day         BIGINT,
    age_group         TEXT,
    city              TEXT,
    home_store_code   TEXT REFERENCES stores(code),
    source_channel    TEXT NOT NULL,
    referral_code     TEXT NOT NULL,
    referrer_id       TEXT REFERENCES members(id),
    family_group_id   TEXT,
    account_manager   TEXT,
    tier              TEXT NOT NULL DEFAULT 'regular',
    points_balance    BIGINT NOT NULL DEFAULT 0,
    taste_json        TEXT NOT NULL DEFAULT '{}',
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    erased_at         BIGINT,
    CONSTRAINT members_phone_index UNIQUE (phone_index),
    CONSTRAINT members_member_code UNIQUE (member_code),
    CONSTRAINT members_referral_code UNIQUE (referral_code)
);
CREATE INDEX members_home_store ON members (home_store_code, id);
CREATE INDEX members_tier ON members (tier, id);

CREATE TABLE member_tags (
    member_id   TEXT NOT NULL REFERENCES members(id),
    tag         TEXT NOT NULL,
    added_by    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (member_id, tag)
);
CREATE INDEX member_tags_tag ON member_tags (tag, member_id);

-- Current consent per channel; consent_events keeps every change.
CREATE TABLE member_consents (
    member_id   TEXT NOT NULL REFERENCES members(id),
    channel     TEXT NOT NULL,
    granted     BIGINT NOT NULL,
    source      TEXT NOT NULL,
    changed_at  BIGINT NOT NULL,
    PRIMARY KEY (member_id, channel)
);

CREATE TABLE consent_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    member_id   TEXT NOT NULL REFERENCES members(id),
    channel     TEXT NOT NULL,
    granted     BIGINT NOT NULL,
    source      TEXT NOT NULL,
    actor       TEXT NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX consent_events_member ON consent_events (member_id, id);

CREATE TABLE staff_users (
    id             TEXT PRIMARY KEY,
    username       TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL,
    store_code     TEXT REFERENCES stores(code),
    created_at     BIGINT NOT NULL,
    disabled_at    BIGINT,
    CONSTRAINT staff_users_username UNIQUE (username)
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    key_hash    TEXT NOT NULL,
    role        TEXT NOT NULL,
    store_code  TEXT REFERENCES stores(code),
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    CONSTRAINT api_keys_key_hash UNIQUE (key_hash)
);

CREATE TABLE staff_sessions (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES staff_users(id),
    csrf_token  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

-- Every change and every reveal of personal data. Append-only.
CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       BIGINT NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    subject  TEXT NOT NULL,
    detail   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_subject ON audit_log (subject, id);

CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
