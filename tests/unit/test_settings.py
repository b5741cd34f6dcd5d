import pytest
from pydantic import ValidationError

from service.settings import Settings


def test_settings_read_the_environment_with_the_infer_prefix(monkeypatch):
    monkeypatch.setenv("INFER_MAX_INSTANCES", "64")
    monkeypatch.setenv("INFER_API_KEYS", "alpha, beta")
    monkeypatch.setenv("INFER_CORS_ORIGINS", '["https://a.example"]')
    monkeypatch.setenv("INFER_BATCH_OVERRIDES", '{"sentiment": {"max_size": 8}}')
    settings = Settings()
    assert settings.max_instances == 64
    assert settings.api_keys == ["alpha", "beta"]
    assert settings.cors_origins == ["https://a.example"]
    assert settings.batch_for("sentiment").max_size == 8
    assert settings.batch_for("iris").max_size == settings.batch.max_size


def test_defaults_match_the_documented_limits():
    settings = Settings(_env_file=None)
    assert settings.max_instances == 256
    assert settings.max_text_length == 5000
    assert settings.keepalive > 60, "must outlive NGINX's 60 s upstream keep-alive"


def test_a_bad_value_fails_at_start_up(monkeypatch):
    monkeypatch.setenv("INFER_MAX_INSTANCES", "0")
    with pytest.raises(ValidationError):
        Settings()


def test_api_keys_are_not_shown_in_repr():
    assert "s3cret" not in repr(Settings(api_keys=["s3cret"]))
