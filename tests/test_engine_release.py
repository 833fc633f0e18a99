"""One current source per engine object, releases generated from it and never changed after.

``engine/src`` holds each object's current definition in a file named after it; the newest
release's install.sql is generated from those files (``make engine``); every released file is
recorded in ``engine/releases/SHA256SUMS`` (``python -m pgsweep.engine --seal`` when a release is
cut) and must never change again: a change to the engine is a new release.
"""

from __future__ import annotations

import re
from collections import Counter

from pgsweep import engine
from pgsweep.paths import engine_dir

_DEFINES = re.compile(
    r"^CREATE (?:OR REPLACE )?(FUNCTION|PROCEDURE|VIEW|TABLE(?: IF NOT EXISTS)?)\s+pgsweep\.(\w+)",
    re.MULTILINE,
)


def test_the_newest_release_is_generated_from_the_sources() -> None:
    version = engine.latest()
    shipped = engine.release_file(version, "install.sql").read_text(encoding="utf-8")
    assert shipped == engine.render_install(version), (
        f"engine/src and engine/releases/{version}/install.sql disagree: run `make engine`"
        " (or, if that release is sealed, start a new release)"
    )


def test_the_embeddable_files_are_the_psql_files_without_psql() -> None:
    for version in engine.releases():
        for psql_name, embed_name in engine.EMBEDDED.items():
            psql_text = engine.release_file(version, psql_name).read_text(encoding="utf-8")
            embedded = engine.release_file(version, embed_name).read_text(encoding="utf-8")
            assert embedded == engine.embed(psql_text, version), (version, embed_name)
            assert "\\set" not in embedded
            assert not re.search(r"(?m)^(BEGIN|COMMIT);$", embedded)


def test_every_released_file_is_sealed_and_unchanged() -> None:
    root = engine_dir() / "releases"
    recorded = engine.recorded_checksums()
    on_disk = {str(p.relative_to(root)): engine.checksum(p) for p in engine.released_files()}
    unsealed = sorted(set(on_disk) - set(recorded))
    assert not unsealed, f"not sealed (python -m pgsweep.engine --seal): {unsealed}"
    changed = sorted(name for name, digest in on_disk.items() if recorded.get(name) != digest)
    assert not changed, f"released files changed (released SQL never changes): {changed}"
    missing = sorted(set(recorded) - set(on_disk))
    assert not missing, f"released files deleted: {missing}"


def test_every_release_has_its_files() -> None:
    first, *later = engine.releases()
    for version in [first, *later]:
        for name in ("install.sql", "uninstall.sql"):
            assert engine.release_file(version, name).is_file(), (version, name)
    for version in later:
        for name in ("upgrade.sql", "downgrade.sql"):
            assert engine.release_file(version, name).is_file(), (version, name)


def test_each_engine_object_is_defined_in_exactly_one_file_named_after_it() -> None:
    defined: Counter[str] = Counter()
    for path in engine.source_files():
        names = [name for _, name in _DEFINES.findall(path.read_text(encoding="utf-8"))]
        defined.update(names)
        if path.parent.name in ("functions", "procedures", "views", "tables"):
            assert names == [path.stem], f"{path} should define pgsweep.{path.stem} alone"
    assert [name for name, count in defined.items() if count > 1] == []
    assert "sweep" in defined
    assert "add_rule" in defined


def test_the_install_script_runs_every_source_file_in_order() -> None:
    text = engine.release_file(engine.latest(), "install.sql").read_text(encoding="utf-8")
    sources = [p.read_text(encoding="utf-8").rstrip("\n") for p in engine.source_files()]
    positions = [text.index(source) for source in sources]
    assert positions == sorted(positions)
