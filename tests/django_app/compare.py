"""Print, per table, the rows ``clearsessions`` + ``cleartokens`` leave and the rows pgsweep's
rules leave after each of three ``CALL pgsweep.sweep()`` runs, for django-oauth-toolkit's
default settings and for those that the rules written today cannot follow.

``python -m tests.django_app.compare`` (from the repository's root, with the test suite's
server: tests/pg.py). docs/rules.md, "Django and django-oauth-toolkit", quotes its output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.django_app.project import (
    ROWS,
    RULES,
    copy_of,
    django_cleanup,
    filled_database,
    rows,
    sweep_once,
    with_rules,
)
from tests.pg import session_server

DAY = 24 * 3600
REVOKED_RULE = "SELECT pgsweep.add_rule('oauth2_provider_refreshtoken', 'revoked');"
AGE_RULE = "SELECT pgsweep.add_rule('oauth2_provider_accesstoken', 'expires', '1 day');"
AGE_RULE_DEPENDENT = (
    "        ('oauth2_provider_accesstoken', 'expires', 'oauth2_provider_refreshtoken',\n"
    "         'oauth2_provider_accesstoken', 'set null'),\n"
)


@dataclass(frozen=True)
class Variant:
    label: str
    oauth: dict[str, object] = field(default_factory=dict)
    revoked_keep_for: str = "0"  # the rule on revoked: REFRESH_TOKEN_GRACE_PERIOD_SECONDS
    age_rule: bool = True  # the access tokens' rule on expires, '1 day'

    def rules(self) -> str:
        text = RULES.read_text()
        assert REVOKED_RULE in text
        assert AGE_RULE in text
        assert AGE_RULE_DEPENDENT in text
        text = text.replace(
            REVOKED_RULE,
            REVOKED_RULE.replace("'revoked')", f"'revoked', '{self.revoked_keep_for}')"),
        )
        if not self.age_rule:
            text = text.replace(AGE_RULE, "").replace(AGE_RULE_DEPENDENT, "")
        return text


VARIANTS = (
    Variant("defaults (pgsweep_rules.sql)"),
    Variant("grace period 1 day", {"REFRESH_TOKEN_GRACE_PERIOD_SECONDS": DAY}, "1 day"),
    Variant("reuse protection", {"REFRESH_TOKEN_REUSE_PROTECTION": True}, "1 day"),
    Variant(
        "no REFRESH_TOKEN_EXPIRE_SECONDS, without the access tokens' age rule",
        {"REFRESH_TOKEN_EXPIRE_SECONDS": None},
        age_rule=False,
    ),
    Variant(
        "grace period 1 day, without the access tokens' age rule",
        {"REFRESH_TOKEN_GRACE_PERIOD_SECONDS": DAY},
        "1 day",
        age_rule=False,
    ),
)


def main() -> None:
    with session_server() as server, filled_database(server) as filled:
        before = rows(server.dsn(filled))
        for variant in VARIANTS:
            with copy_of(server, filled, "orm") as orm, copy_of(server, filled, "sweep") as swept:
                django_cleanup(orm, variant.oauth)
                by_django = rows(orm)
                with_rules(swept, variant.rules())
                print(f"== {variant.label}")
                print(f"  {'table':30} {'filled':>6} {'django':>6}  after runs 1, 2, 3:"
                      " left (kept more / deleted more / other values)")
                results = []
                for _ in range(3):
                    assert sweep_once(swept) == "succeeded"
                    results.append(rows(swept))
                for table in ROWS:
                    cells = []
                    for left in results:
                        mine, theirs = set(left[table]), set(by_django[table])
                        keys = {r[0] for r in mine}
                        their_keys = {r[0] for r in theirs}
                        other = len({r for r in mine - theirs if r[0] in their_keys})
                        cells.append(
                            f"{len(mine):4} ({len(keys - their_keys)}/{len(their_keys - keys)}"
                            f"/{other})"
                        )
                    print(
                        f"  {table:30} {len(before[table]):6} {len(by_django[table]):6}  "
                        + "  ".join(cells)
                    )


if __name__ == "__main__":
    main()
