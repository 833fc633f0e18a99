-- 1.2: what a rule's delete does to the rows that reference its garbage through a foreign key
-- the database does not act on (an ORM's NO ACTION key, often DEFERRABLE INITIALLY DEFERRED,
-- whose CASCADE or SET NULL the ORM does in the app). One row per (rule, foreign key):
--   delete:   the referencing rows are deleted in the same statement as the garbage;
--   set null: their referencing columns are set NULL in the same statement;
--   keep:     garbage a referencing row points to is not garbage (rule_condition leaves it).
-- The key is named by its table and its name, which survive a dump and restore (an oid would
-- not). It references the rule's table, or (one level further) the table of one of the
-- rule's 'delete' dependents. pgsweep.set_dependent validates and writes it.
CREATE TABLE IF NOT EXISTS pgsweep.rule_dependent (
    table_name        regclass NOT NULL,
    column_name       name     NOT NULL,
    referencing_table regclass NOT NULL,
    constraint_name   name     NOT NULL,
    action            text     NOT NULL,
    PRIMARY KEY (table_name, column_name, referencing_table, constraint_name),
    CONSTRAINT rule_dependent_rule FOREIGN KEY (table_name, column_name)
        REFERENCES pgsweep.expiry_rule (table_name, column_name) ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT dependent_action_known CHECK (action IN ('delete', 'set null', 'keep'))
);
COMMENT ON TABLE pgsweep.rule_dependent IS
    'Per rule and referencing foreign key: delete, set null or keep the rows referencing its garbage';
