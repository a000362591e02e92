"""The matching commands as a user runs them: cameras, identities, search, feedback, export-identity, audit."""

import json

import pytest

from tests.conftest import assert_one_clear_error, copy_db, run_cli
from tests.factories import build_site


@pytest.fixture
def db(tmp_path):
    """A synthetic four-camera site of five people walking from camera to camera, clustered as ingest leaves it, as
    a database file (no weights, no footage)."""
    from pipelines.matching.identities import cluster_identities
    from storage.database import open_database

    path = tmp_path / "site.db"
    database = open_database(path)
    build_site(database, people=5, cameras=4, walk_s=30.0)
    cluster_identities(database)
    database.close()
    return path


@pytest.fixture
def lab(lab4_db, tmp_path):
    """A copy of the real four-camera lab ingest."""
    return copy_db(lab4_db, tmp_path)


def _table_rows(text):
    return [[c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines() if line.startswith("│")]


@pytest.mark.slow
def test_overlapping_cameras_give_identities_across_cameras_and_their_evidence(lab, tmp_path):
    db = lab
    result = run_cli("cameras", "--db", db, "--overlap", "cam0,cam1,cam2,cam3")
    assert result.code == 0, result.stderr
    rows = _table_rows(result.stdout)
    assert [r[0] for r in rows] == ["cam0", "cam1", "cam2", "cam3"]
    assert rows[0][-1] == "cam1, cam2, cam3"
    listed = run_cli("identities", "--db", db, "--min-cameras", "3")
    assert listed.code == 0, listed.stderr
    rows = [r for r in _table_rows(listed.stdout) if r[0]]
    assert len(rows) >= 2 and all(int(r[1]) >= 3 for r in rows)
    identity = rows[0][0]
    detail = run_cli("identities", "--db", db, "--identity", identity)
    assert detail.code == 0 and len({r[0] for r in _table_rows(detail.stdout)}) >= 3
    out = tmp_path / "evidence"
    exported = run_cli("export-identity", "--db", db, "--identity", identity, "--out", out)
    assert exported.code == 0, exported.stderr
    summary = json.loads((out / f"identity-{identity}.json").read_text())
    assert len(summary["cameras"]) >= 3 and (out / f"identity-{identity}.csv").exists()
    # the lab clips have no start time: no time zone is claimed for them, in tables or in the report
    for text in (listed.stdout, detail.stdout, run_cli("search", "--db", db, "--track", "1").stdout):
        assert "unknown" in text and "UTC+" not in text  # "(time unknown)" headers, wrapped by the table
    assert summary["time_zone"].startswith("time unknown")


def test_search_options_feedback_and_audit(db):
    first = run_cli(
        "search", "--db", db, "--track", "1", "--top-k", "3", "--expand", "2", "--camera", "cam1", "--camera", "cam2"
    )
    assert first.code == 0, first.stderr
    rows = _table_rows(first.stdout)
    ranked = [r for r in rows if r[0]]
    assert 1 <= len(ranked) <= 3 and {r[1] for r in ranked} <= {"cam1", "cam2"}
    assert len(rows) > len(ranked)  # the second sighting of each track is listed below it
    top = ranked[0][2]
    rejected = run_cli("feedback", "reject", "1", top, "--db", db)
    assert rejected.code == 0 and "saved" in rejected.stdout, rejected.stderr
    again = run_cli("search", "--db", db, "--track", "1", "--camera", "cam1", "--camera", "cam2")
    assert top not in [r[2] for r in _table_rows(again.stdout) if r[0]]
    log = run_cli("audit", "--db", db, "--limit", "5")
    actions = [r[2] for r in _table_rows(log.stdout) if r[2]]
    assert actions[:4] == ["search", "cluster", "reject", "search"]


@pytest.mark.parametrize(
    "args, words",
    [
        (["search", "--track", "1", "--after", "noon"], ["--after", "noon"]),
        (["search", "--track", "1", "--camera", "lobby"], ["lobby", "cam0"]),
        (["search", "--track", "1", "--expand", "0"], ["--expand"]),
        (["search", "--track", "1", "--after", "100", "--before", "50"], ["--after", "later"]),
        (["identities", "--identity", "9999"], ["identity 9999"]),
        (["identities", "--threshold", "0.5"], ["--recluster"]),
        (["identities", "--recluster", "--threshold", "7"], ["threshold"]),
        (["feedback", "confirm", "1", "1"], ["twice"]),
        (["feedback", "merge", "1", "9999"], ["identity 9999"]),
        (["cameras", "--overlap", "cam0"], ["two or more"]),
        (["cameras", "--overlap", "cam0,lobby"], ["lobby"]),
        (["export-identity", "--identity", "9999", "--out", "x"], ["identity 9999"]),
    ],
)
def test_mistakes_get_one_clear_line(db, args, words):
    assert_one_clear_error(run_cli(*args, "--db", db), *words)


def test_feedback_says_what_it_changed_and_undo_takes_it_back(db):
    from pipelines.matching.identities import summarise_identities
    from storage.database import open_database
    from tests.reliability.cli import run_main

    assert run_main("cameras", "--db", db, "--overlap", "cam0,cam1,cam2,cam3").code == 0  # one room, 4 views
    database = open_database(db)
    identity = next(s for s in summarise_identities(database) if len(s.track_ids) >= 2)
    database.close()
    a, b = sorted(identity.track_ids[:2])
    confirmed = run_main("feedback", "confirm", a, b, "--db", db)
    assert confirmed.code == 0, confirmed.stderr
    assert f"changed: tracks {a} and {b} confirmed as the same person" in confirmed.stdout
    refused = run_main("feedback", "reject", a, b, "--db", db)
    assert refused.code == 2 and f"tracks {a} and {b} were confirmed as the same person on" in refused.stderr
    undone = run_main("feedback", "undo", "--db", db)
    assert undone.code == 0 and "changed: undid the confirm of" in undone.stdout
    assert run_main("feedback", "reject", a, b, "--db", db).code == 0  # no confirmation stands in the way now


@pytest.mark.slow
def test_a_named_person_keeps_the_name_in_listings_and_evidence(lab, tmp_path):
    db = lab
    from tests.reliability.cli import run_main

    named = run_main("feedback", "label", "1", "Suspect A", "--note", "red jacket, seen at the door", "--db", db)
    assert named.code == 0 and "changed: identity 1 named 'Suspect A'" in named.stdout
    assert run_main("identities", "--recluster", "--db", db).code == 0  # the name follows the identity's id
    listing = run_main("identities", "--db", db)
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in listing.stdout.splitlines() if line.startswith("│")]
    assert next(r for r in rows if r[0] == "1")[-1] == "Suspect A"
    singles = [r for r in rows if r[0] and r[2] == "1"]
    assert singles and all(r[6] == "-" for r in singles)  # one track: no confidence to show, not 1.00
    assert "first seen (time" in listing.stdout  # the lab clips have no start time: no zone claimed for them
    detail = run_main("identities", "--identity", "1", "--db", db)
    assert "'Suspect A'" in detail.stdout and "red jacket" in detail.stdout
    exported = run_main("export-identity", "--identity", "1", "--out", tmp_path / "case", "--db", db)
    assert exported.code == 0, exported.stderr
    summary = json.loads((tmp_path / "case" / "identity-1.json").read_text())
    assert (summary["label"], summary["note"]) == ("Suspect A", "red jacket, seen at the door")
    assert "Identity 1 (Suspect A)" in (tmp_path / "case" / "report.html").read_text()
    cleared = run_main("feedback", "label", "1", "--clear", "--db", db)
    assert cleared.code == 0 and "no longer named (was 'Suspect A')" in cleared.stdout
    assert run_main("feedback", "label", "1", "--db", db).code == 2  # neither a name nor --clear


def test_escape_sequences_in_a_label_and_a_watchlist_name_never_reach_the_terminal(db):
    """A name holding ``ESC[2J`` (clear screen) or an OSC title sequence is printed escaped, never obeyed."""
    evil = "Suspect \x1b[2J\x1b]0;pwned\x07A"
    assert run_cli("identities", "--db", db).code == 0
    named = run_cli("feedback", "label", "1", evil, "--db", db)
    assert named.code == 0, named.stderr
    added = run_cli("watchlist", "add", evil, "--identity", "1", "--db", db)
    assert added.code == 0, added.stderr
    outputs = [
        named,
        added,
        run_cli("identities", "--db", db),
        run_cli("identities", "--identity", "1", "--db", db),
        run_cli("watchlist", "list", "--db", db),
        run_cli("audit", "--db", db),
    ]
    for result in outputs:
        assert "\x1b" not in result.stdout + result.stderr
    assert any("\\x1b[2J" in r.stdout for r in outputs[2:])


def test_identities_says_how_many_tracks_have_no_descriptor_and_why(db):
    import sqlite3

    con = sqlite3.connect(db)
    con.execute(
        "UPDATE tracks SET descriptor = NULL, descriptor_model_id = NULL WHERE id IN (SELECT id FROM tracks "
        "WHERE NOT static ORDER BY last_time_s - first_time_s DESC LIMIT 2)"
    )  # as if never encoded
    con.commit()
    short, long_ = con.execute(
        "SELECT sum(last_time_s - first_time_s < 1), sum(last_time_s - first_time_s >= 1) "
        "FROM tracks WHERE descriptor IS NULL AND NOT static"
    ).fetchone()
    con.close()
    listed = run_cli("identities", "--recluster", "--db", db)
    assert listed.code == 0, listed.stderr
    assert (
        f"{short + long_} track(s) have no descriptor and are in no identity ({short} lasting under 1 s; "
        f"{long_} never showing a crop big enough to encode"
        in listed.stdout
        and long_ == 2
    )
