-- The indexes pgsweep's rules walk that Django and django-oauth-toolkit do not create (the app's
-- own migration would add them; CONCURRENTLY on a live database). django_session.expire_date and
-- every key column already have one.
CREATE INDEX IF NOT EXISTS oauth2_provider_accesstoken_expires ON oauth2_provider_accesstoken (expires);
CREATE INDEX IF NOT EXISTS oauth2_provider_refreshtoken_revoked ON oauth2_provider_refreshtoken (revoked);
CREATE INDEX IF NOT EXISTS oauth2_provider_idtoken_expires ON oauth2_provider_idtoken (expires);
CREATE INDEX IF NOT EXISTS oauth2_provider_grant_expires ON oauth2_provider_grant (expires);
