-- TOTP enrolments live in `user_totp` (0008); the column 0005 reserved for a secret was never written.
ALTER TABLE users DROP COLUMN totp_secret_sealed;
