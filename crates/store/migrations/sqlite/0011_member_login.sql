-- Member sign-in on the H5 pages (/m) with a one-time code sent to the
-- phone, member sessions, and the message log of what was sent (or, with no
-- SMS gateway configured, what would have been sent).

-- Every code request, known phone or not, for the send limits. The phone is
-- kept only as a keyed hash of its own domain (not the members' index).
CREATE TABLE member_login_requests (
    id         TEXT PRIMARY KEY,
    phone_key  TEXT NOT NULL,
    client     TEXT NOT NULL,
    at         BIGINT NOT NULL
);
CREATE INDEX member_login_requests_phone ON member_login_requests (phone_key, at);
CREATE INDEX member_login_requests_client ON member_login_requests (client, at);

-- Codes sent to members: only a keyed hash of the code is stored.
CREATE TABLE member_login_codes (
    id          TEXT PRIMARY KEY,
    member_id   TEXT NOT NULL REFERENCES members(id),
    phone_key   TEXT NOT NULL,
    code_hash   TEXT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX member_login_codes_phone ON member_login_codes (phone_key, created_at);
CREATE INDEX member_login_codes_member ON member_login_codes (member_id);

-- Signed-in members: the token's SHA-256, never the token.
CREATE TABLE member_sessions (
    token_hash  TEXT PRIMARY KEY,
    member_id   TEXT NOT NULL REFERENCES members(id),
    csrf_token  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX member_sessions_member ON member_sessions (member_id);

-- Messages to members outside campaigns (sign-in codes). The text is
-- encrypted; it holds the code only when no SMS gateway is configured.
CREATE TABLE message_log (
    id          TEXT PRIMARY KEY,
    member_id   TEXT REFERENCES members(id),
    channel     TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    body_enc    BLOB NOT NULL,
    delivery    TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX message_log_created ON message_log (created_at, id);
CREATE INDEX message_log_member ON message_log (member_id);
