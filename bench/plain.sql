-- The plain approach pgsweep is measured against: what the app would ship without pgsweep
-- (the original app's 0006). Applied by the benchmark to a copy of the pgsweep database rolled
-- back to 0005, so both sides hold the very same rows in the very same pages.
--
--   * one unbatched DELETE per table: expired or used (refresh tokens: expired);
--   * a partial index on expires_at WHERE used_at IS NULL (refresh tokens: a plain index);
--   * an AFTER INSERT ... FOR EACH STATEMENT trigger per table running that same DELETE.
--
-- The app's own lookup indexes (invalidate by user) are the same on both sides, so that only
-- the cleanup design differs between them.

CREATE INDEX idx_password_reset_tokens_expires_at
    ON password_reset_tokens (expires_at) WHERE used_at IS NULL;
CREATE INDEX idx_email_verification_tokens_expires_at
    ON email_verification_tokens (expires_at) WHERE used_at IS NULL;
CREATE INDEX idx_refresh_tokens_expires_at ON refresh_tokens (expires_at);
CREATE INDEX idx_password_reset_tokens_user_id ON password_reset_tokens (user_id);
CREATE INDEX idx_email_verification_tokens_user_id ON email_verification_tokens (user_id);

CREATE FUNCTION plain_cleanup_password_reset_tokens() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_deleted integer;
BEGIN
    DELETE FROM password_reset_tokens WHERE expires_at < now() OR used_at IS NOT NULL;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END $$;

CREATE FUNCTION plain_cleanup_email_verification_tokens() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_deleted integer;
BEGIN
    DELETE FROM email_verification_tokens WHERE expires_at < now() OR used_at IS NOT NULL;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END $$;

CREATE FUNCTION plain_cleanup_refresh_tokens() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_deleted integer;
BEGIN
    DELETE FROM refresh_tokens WHERE expires_at < now();
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END $$;

-- Same shape as pgsweep's cleanup_all_expired_tokens(), so the benchmark reads both alike.
CREATE FUNCTION plain_cleanup_all_expired_tokens()
RETURNS TABLE (password_reset_cleaned integer, email_verification_cleaned integer,
               refresh_tokens_cleaned integer, total_cleaned integer)
LANGUAGE plpgsql AS $$
BEGIN
    password_reset_cleaned := plain_cleanup_password_reset_tokens();
    email_verification_cleaned := plain_cleanup_email_verification_tokens();
    refresh_tokens_cleaned := plain_cleanup_refresh_tokens();
    total_cleaned := password_reset_cleaned + email_verification_cleaned + refresh_tokens_cleaned;
    RETURN NEXT;
END $$;

CREATE FUNCTION plain_cleanup_on_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    CASE TG_TABLE_NAME
        WHEN 'password_reset_tokens' THEN PERFORM plain_cleanup_password_reset_tokens();
        WHEN 'email_verification_tokens' THEN PERFORM plain_cleanup_email_verification_tokens();
        ELSE PERFORM plain_cleanup_refresh_tokens();
    END CASE;
    RETURN NULL;
END $$;

CREATE TRIGGER trg_password_reset_tokens_cleanup AFTER INSERT ON password_reset_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION plain_cleanup_on_insert();
CREATE TRIGGER trg_email_verification_tokens_cleanup AFTER INSERT ON email_verification_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION plain_cleanup_on_insert();
CREATE TRIGGER trg_refresh_tokens_cleanup AFTER INSERT ON refresh_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION plain_cleanup_on_insert();
