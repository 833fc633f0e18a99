-- Nothing that deletes is executable by PUBLIC; roles are granted what they need explicitly
-- (docs, "Roles"). PUBLIC may use the schema, to name its objects, and reads none of its tables.
REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA pgsweep FROM PUBLIC;
GRANT USAGE ON SCHEMA pgsweep TO PUBLIC;
