"""The README's configuration table is generated from Settings and stays equal to it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

from serve_app import settings_doc
from serve_app.settings import Settings
from serve_app.settings_doc import NAME, Row, UndocumentedSetting, render_readme, render_table, sections

README = Path(__file__).resolve().parents[2] / "README.md"
ROWS = [row for section in sections() for row in section.rows]


def by_env(env: str) -> Row:
    (row,) = [row for row in ROWS if row.env == env]
    return row


def test_readme_table_equals_settings() -> None:
    readme = README.read_text()
    assert render_readme(readme) == readme, "README is stale: run `python -m serve_app.settings_doc`"


def test_check_reports_a_stale_readme(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (line,) = [line for line in README.read_text().splitlines(keepends=True) if "`VIDSCRIBE_WECOM__WINDOW_S`" in line]
    stale = tmp_path / "README.md"
    stale.write_text(README.read_text().replace(line, ""))  # a new setting, not yet in the README
    monkeypatch.setattr(settings_doc, "ROOT", tmp_path)
    monkeypatch.setattr(settings_doc, "README", stale)
    before = stale.read_text()
    assert settings_doc.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "+" + line in err
    assert "run `python -m serve_app.settings_doc`" in err
    assert stale.read_text() == before  # --check changes nothing
    assert settings_doc.main([]) == 0
    assert settings_doc.main(["--check"]) == 0
    assert stale.read_text() == README.read_text()


def test_every_field_of_settings_has_a_row() -> None:
    fields = {row.field for row in ROWS}
    for name in ("wecom.allow_private_webhooks", "wecom.rate_per_window", "wecom.window_s", "wecom.max_attempts"):
        assert name in fields
    for name in ("llm.chunk_chars", "recovery.lease_s", "recovery.redispatch_after_s", "recovery.sweep_interval_s"):
        assert name in fields
    assert {f"asr.{name}" for name in Settings().asr.model_dump()} <= fields
    assert all(row.description.strip() for row in ROWS)


def test_a_field_without_description_makes_the_generator_raise() -> None:
    class Section(BaseModel):
        """A made-up section."""

        documented: int = Field(1, description="Has one.")
        forgotten: int = 2

    class Made(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="MADE_", env_nested_delimiter="__")
        part: Section = Field(default_factory=Section)

    with pytest.raises(UndocumentedSetting, match=r"part\.forgotten \(MADE_PART__FORGOTTEN\)"):
        render_table(Made)


def test_a_section_without_docstring_or_description_makes_the_generator_raise() -> None:
    class Bare(BaseModel):
        value: int = Field(1, description="Documented.")

    class Made(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="MADE_", env_nested_delimiter="__")
        bare: Bare = Field(default_factory=Bare)

    with pytest.raises(UndocumentedSetting, match="section bare"):
        render_table(Made)


def test_secrets_are_marked_and_only_they() -> None:
    secret = {row.env for row in ROWS if row.secret}
    assert secret == {
        "VIDSCRIBE_API_TOKENS",
        "VIDSCRIBE_LLM__API_KEY",
        "VIDSCRIBE_WECOM__WEBHOOK_URL",
        "VIDSCRIBE_WECOM_BOT__SECRET",
        f"VIDSCRIBE_CLIENTS__{NAME}__TOKEN",
        f"VIDSCRIBE_CLIENTS__{NAME}__WEBHOOK_URL",
        # Proxy URLs may hold a password.
        "VIDSCRIBE_MEDIA__PROXY",
        "VIDSCRIBE_MEDIA__PROXY_RULES",
        "VIDSCRIBE_LLM__PROXY",
        "VIDSCRIBE_WECOM__PROXY",
    }
    assert "| `VIDSCRIBE_LLM__API_KEY` |  | secret |" in render_table()


def test_defaults_are_rendered_as_written_in_the_environment() -> None:
    assert by_env("VIDSCRIBE_DATA_DIR").default == "~/.local/share/vidscribe"
    assert by_env("VIDSCRIBE_MEDIA__SUBTITLE_LANGUAGES").default == "zh-Hans,zh,zh-CN,zh-Hant,zh-TW,en"
    assert by_env("VIDSCRIBE_WECOM__ALLOW_PRIVATE_WEBHOOKS").default == "false"
    assert by_env("VIDSCRIBE_MEDIA__MAX_DOWNLOAD_BYTES").default == str(1024**3)
    assert by_env("VIDSCRIBE_LLM__BASE_URL").default == ""  # None: unset
    token = by_env(f"VIDSCRIBE_CLIENTS__{NAME}__TOKEN")
    assert token.required
    assert f"| `VIDSCRIBE_CLIENTS__{NAME}__TOKEN` | (required) | secret |" in render_table()


@pytest.mark.parametrize("row", [row for row in ROWS if row.default], ids=lambda row: row.env)
def test_each_default_read_back_from_the_environment_is_the_default(row: Row, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = Settings().model_dump()
    monkeypatch.setenv(row.env, row.default)
    assert _at(EnvSettingsSource(Settings)(), row.field) == row.default  # the env name reaches the field
    assert Settings().model_dump() == reference


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.env)
def test_each_env_name_reaches_its_field(row: Row, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(row.env.replace(NAME, "TEAMA"), "7")
    assert _at(EnvSettingsSource(Settings)(), row.field.replace(NAME.lower(), "teama")) == "7"


def test_nested_and_dict_rows_set_their_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = {row.field: row.env for row in ROWS}
    monkeypatch.setenv(rows["wecom.webhook_url"], "http://10.0.0.5/send?key=k")
    monkeypatch.setenv(rows["recovery.lease_s"], "90")
    monkeypatch.setenv(rows["media.subtitle_languages"], "en, ja")
    monkeypatch.setenv(rows["api_tokens"], "a,b")
    monkeypatch.setenv(rows[f"clients.{NAME.lower()}.token"].replace(NAME, "TEAMA"), "team-a-token")
    monkeypatch.setenv(rows[f"clients.{NAME.lower()}.rate_limit_per_minute"].replace(NAME, "TEAMA"), "7")
    settings = Settings()
    assert settings.wecom.webhook_url == SecretStr("http://10.0.0.5/send?key=k")
    assert settings.recovery.lease_s == 90
    assert settings.media.subtitle_languages == ["en", "ja"]
    assert [token.get_secret_value() for token in settings.api_tokens] == ["a", "b"]
    assert settings.clients["teama"].token.get_secret_value() == "team-a-token"
    assert settings.clients["teama"].rate_limit_per_minute == 7


def _at(tree: dict[str, object], dotted: str) -> object:
    node: object = tree
    for key in dotted.split("."):
        assert isinstance(node, dict), f"{dotted}: nothing at {key}"
        node = node.get(key)
    return node
