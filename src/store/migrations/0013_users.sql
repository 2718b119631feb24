-- 0013_users.sql - users who log in with a password (and optionally a TOTP
-- code) and their browser sessions (issue 16).
--
-- Portable (SQLite and PostgreSQL). name is stored lowercase and unique;
-- password_hash is libsodium's crypto_pwhash_str text (Argon2id, its
-- parameters inside); totp_secret is sealed by src/secret ("v1:..."),
-- totp_enabled once a first code confirmed it, totp_last_step the last
-- accepted step (a code is never taken twice). Booleans are INTEGER 0/1,
-- timestamps ISO-8601 UTC text written by aosd.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    password_hash TEXT,
    disabled INTEGER NOT NULL DEFAULT 0,
    totp_secret TEXT,
    totp_enabled INTEGER NOT NULL DEFAULT 0,
    totp_last_step BIGINT NOT NULL DEFAULT 0,
    created_by TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    password_changed_at TEXT
);

-- A session's secret is in the browser's cookie only; session_hash is its
-- BLAKE2b. expires_at is the absolute expiry; the idle one counts from
-- last_seen_at (written at most once a minute). ended_at: logged out, or
-- ended by a change to its user.
CREATE TABLE auth_sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    session_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    last_seen_at TEXT,
    ended_at TEXT,
    client TEXT
);
CREATE INDEX auth_sessions_user_idx ON auth_sessions (user_id);
