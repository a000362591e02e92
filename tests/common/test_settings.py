"""A database location is told apart once (path or URL), and a command reads the settings once."""

from pathlib import Path

import click
from click.testing import CliRunner

from common.settings import DatabaseLocation, recordings_dir_for, user_data_dir


def test_a_path_is_expanded_and_a_url_kept_verbatim():
    home = DatabaseLocation.of("~/cases/reid.db")
    assert not home.is_url and home.file == Path.home() / "cases" / "reid.db"
    url = DatabaseLocation.of("postgresql://u:p@db:5432/site")
    assert url.is_url and url.file is None and str(url) == "postgresql://u:p@db:5432/site"
    assert DatabaseLocation.of(url) is url
    assert DatabaseLocation.of("sqlite:////tmp/x.db").is_url  # a SQLite URL stays a URL


def test_a_site_files_relative_database_is_beside_the_site_file(tmp_path):
    assert str(DatabaseLocation.of("site.db").beside(tmp_path)) == str(tmp_path / "site.db")
    assert str(DatabaseLocation.of("/abs/site.db").beside(tmp_path)) == "/abs/site.db"
    assert str(DatabaseLocation.of("postgresql://h/db").beside(tmp_path)) == "postgresql://h/db"


def test_recordings_go_beside_a_database_file_and_into_the_data_folder_for_a_server(tmp_path):
    assert recordings_dir_for(tmp_path / "reid.db") == tmp_path.resolve() / "recordings"
    assert recordings_dir_for("postgresql://h/db") == user_data_dir() / "recordings"


def test_a_command_reads_the_settings_once(monkeypatch):
    import reid_app.cli_helpers as helpers

    loads = []
    real = helpers.load_settings
    monkeypatch.setattr(helpers, "load_settings", lambda: loads.append(1) or real())

    @click.command()
    def command():
        first, second = helpers.command_settings(), helpers.command_settings()
        assert first is second

    runner = CliRunner()
    assert runner.invoke(command).exit_code == 0
    assert runner.invoke(command).exit_code == 0
    assert len(loads) == 2  # once per command run
