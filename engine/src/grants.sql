-- Nothing that deletes is executable by PUBLIC; roles are granted what they need explicitly
-- (docs, "Roles"). PUBLIC may use the schema, to name its objects, and reads none of its tables.
REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA pgsweep FROM PUBLIC;
GRANT USAGE ON SCHEMA pgsweep TO PUBLIC;
-- Pure arithmetic on an instant and a zone, deleting nothing: the views that hide expired rows
-- (pgsweep.create_live_view) call it with their reader's rights.
GRANT EXECUTE ON FUNCTION pgsweep.wall_clock_cutoff(timestamptz, text) TO PUBLIC;
-- The record of a cleanup's own concurrent detaches: written by the role that removes
-- partitions (it owns the tables, and is normally the engine's owner), read by no one else.
REVOKE ALL ON pgsweep.partition_detach FROM PUBLIC;
