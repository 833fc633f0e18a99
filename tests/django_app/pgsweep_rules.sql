-- clearsessions and cleartokens as pgsweep rules (engine 1.3), for the settings in settings.py:
-- REFRESH_TOKEN_EXPIRE_SECONDS = 1 day, REFRESH_TOKEN_GRACE_PERIOD_SECONDS = 0,
-- REFRESH_TOKEN_REUSE_PROTECTION off. docs/rules.md, "Django and django-oauth-toolkit", says
-- which of cleartokens' criteria each rule stands for, and where they differ.
-- Django's keys are NO ACTION DEFERRABLE in the database, the ORM does SET_NULL/CASCADE: every
-- key onto a rule's table is given a dependent action, looked up by the tables it joins (the
-- constraint names are Django's hashes).

-- clearsessions: expire_date < now
SELECT pgsweep.add_rule('django_session', 'expire_date');

-- grants: expires < now
SELECT pgsweep.add_rule('oauth2_provider_grant', 'expires');

-- refresh tokens revoked (revoked <= now - grace period 0); the access tokens they issued
-- forget them (AccessToken.source_refresh_token, SET_NULL)
SELECT pgsweep.add_rule('oauth2_provider_refreshtoken', 'revoked');
-- refresh tokens whose access token is gone, not revoked
SELECT pgsweep.add_condition_rule('oauth2_provider_refreshtoken', 'access_token_id',
    'revoked IS NULL AND access_token_id IS NULL');

-- access tokens expired more than REFRESH_TOKEN_EXPIRE_SECONDS ago: cleartokens deletes their
-- refresh token for that expiry, then the access token it no longer has a refresh token for.
-- Here the access token goes first and its refresh token's key is set NULL (the ORM's SET_NULL),
-- which makes that refresh token one the rule above deletes (revoked ones: the rule on revoked),
-- later in the same run (the refresh token table's rules come after the access token table's).
-- (A 'delete' of the refresh token with the access tokens it issued set NULL one level further is
-- refused: that key, AccessToken.source_refresh_token, is onto the rule's own table.)
SELECT pgsweep.add_rule('oauth2_provider_accesstoken', 'expires', '1 day');
-- access tokens expired, with no refresh token: the refresh tokens' key is 'keep'
SELECT pgsweep.add_condition_rule('oauth2_provider_accesstoken', 'id', 'expires < now()');

-- ID tokens expired, with no access token: the access tokens' key is 'keep'
SELECT pgsweep.add_rule('oauth2_provider_idtoken', 'expires');

SELECT pgsweep.set_dependent(d.rule_table, d.rule_column, c.conname, d.action)
  FROM (VALUES
        ('oauth2_provider_refreshtoken', 'revoked', 'oauth2_provider_accesstoken',
         'oauth2_provider_refreshtoken', 'set null'),
        ('oauth2_provider_refreshtoken', 'access_token_id', 'oauth2_provider_accesstoken',
         'oauth2_provider_refreshtoken', 'set null'),
        ('oauth2_provider_accesstoken', 'expires', 'oauth2_provider_refreshtoken',
         'oauth2_provider_accesstoken', 'set null'),
        ('oauth2_provider_accesstoken', 'id', 'oauth2_provider_refreshtoken',
         'oauth2_provider_accesstoken', 'keep'),
        ('oauth2_provider_idtoken', 'expires', 'oauth2_provider_accesstoken',
         'oauth2_provider_idtoken', 'keep'))
       AS d (rule_table, rule_column, referencing, referenced, action)
  JOIN pg_catalog.pg_constraint c
    ON c.contype = 'f' AND c.conrelid = d.referencing::regclass
   AND c.confrelid = d.referenced::regclass
 ORDER BY d.rule_table, d.rule_column;
