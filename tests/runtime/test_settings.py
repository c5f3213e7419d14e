"""Settings: list settings in the forms people type, and the model folder checked early."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from server.runtime.settings import Settings


@pytest.mark.parametrize(
    ("value", "keys"),
    [
        ("sk-abc", ["sk-abc"]),
        ("sk-a,sk-b", ["sk-a", "sk-b"]),
        (" sk-a , sk-b ,", ["sk-a", "sk-b"]),
        ('["sk-a", "sk-b"]', ["sk-a", "sk-b"]),
        ('["sk-with,comma"]', ["sk-with,comma"]),
        ("", []),
        ("[]", []),
    ],
)
def test_api_keys_from_the_environment_in_any_form(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str, keys: list[str]
) -> None:
    monkeypatch.setenv("QUORUM_API_KEYS", value)
    settings = Settings(cache_dir=tmp_path)
    assert [k.get_secret_value() for k in settings.api_keys] == keys


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("QUORUM_CORS_ORIGINS", "https://a.example", "cors_origins", ["https://a.example"]),
        (
            "QUORUM_CORS_ORIGINS",
            '["https://a.example","https://b.example"]',
            "cors_origins",
            ["https://a.example", "https://b.example"],
        ),
        (
            "QUORUM_UPSTREAMS",
            "http://a:8000,http://b:8000",
            "upstreams",
            ["http://a:8000", "http://b:8000"],
        ),
        ("QUORUM_UPSTREAMS", '["http://a:8000"]', "upstreams", ["http://a:8000"]),
    ],
)
def test_other_list_settings_take_the_same_forms(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    variable: str,
    value: str,
    field: str,
    expected: list[str],
) -> None:
    monkeypatch.setenv(variable, value)
    assert getattr(Settings(cache_dir=tmp_path), field) == expected


@pytest.mark.parametrize(
    ("args", "field", "expected"),
    [
        (["--api-keys", "sk-a"], "api_keys", ["sk-a"]),
        (["--api-keys", "sk-a,sk-b"], "api_keys", ["sk-a", "sk-b"]),
        (["--api-keys", '["sk-a","sk-b"]'], "api_keys", ["sk-a", "sk-b"]),
        (
            ["--upstream", "http://a", "--upstream", "http://b"],
            "upstreams",
            ["http://a", "http://b"],
        ),
        (["--cors-origins", "https://a.example"], "cors_origins", ["https://a.example"]),
    ],
)
def test_list_flags_take_the_same_forms_and_repeat(
    tmp_path: Path, args: list[str], field: str, expected: list[str]
) -> None:
    settings = Settings(_cli_parse_args=[*args, "--cache-dir", str(tmp_path)])
    values = getattr(settings, field)
    got = [v.get_secret_value() if field == "api_keys" else v for v in values]
    assert got == expected


@pytest.mark.parametrize(
    ("model", "accepted"),
    [
        ("Qwen/Qwen2.5-1.5B-Instruct", True),  # a hub id: vLLM fetches it
        ("gpt2", True),
        ("/no/such/folder", False),
        ("./missing-model", False),
        ("~/missing-model", False),
        ("a/b/c", False),
    ],
)
def test_a_model_folder_must_exist_unless_it_is_a_hub_id(
    tmp_path: Path, model: str, accepted: bool
) -> None:
    if accepted:
        assert Settings(model=model, cache_dir=tmp_path).model == model
    else:
        with pytest.raises(ValidationError, match="no such model folder"):
            Settings(model=model, cache_dir=tmp_path)
    assert Settings(model=str(tmp_path), cache_dir=tmp_path).model == str(tmp_path)
