"""``quorum serve``: the top of the server's layers, the only module that sees them all.

It builds the settings, the engine and the app, and runs them until a shutdown. A setting that
is wrong (a flag or a ``QUORUM_*`` variable), or a model that cannot be found, is reported in
one line on stderr, naming the setting, with exit code 2.
"""

from __future__ import annotations

import asyncio
import sys

from pydantic import ValidationError
from pydantic_settings import SettingsError

from modelprep import EmbeddedModelError
from server.runtime.logging_setup import configure_logging
from server.runtime.settings import Settings

CONFIG_ERROR = 2  # argparse's exit code for bad usage
SECRET_SETTINGS = frozenset({"api_keys", "upstream_api_key"})  # never echoed


def setting_names(field: str) -> str:
    """How a setting is spelt in the environment and on the command line."""
    shortcut = (Settings.model_config.get("cli_shortcuts") or {}).get(field, field)
    flag = shortcut if isinstance(shortcut, str) else field
    return f"QUORUM_{field.upper()} (--{flag.replace('_', '-')})"


def settings_error(exc: ValidationError) -> str:
    """One line for invalid settings: the first bad setting, what is wrong, and what it got
    (unless it is a secret)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = first.get("loc", ())
    field = str(loc[0]) if loc else ""
    name = setting_names(field) if field in Settings.model_fields else "settings"
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    line = f"invalid setting {name}: {message}"
    given = first.get("input")
    if field not in SECRET_SETTINGS and isinstance(given, str) and given not in message:
        line += f" (got {given[:80]!r})"
    if len(errors) > 1:
        line += f" (and {len(errors) - 1} more)"
    return line


def log_secrets(settings: Settings) -> list[str]:
    """What no log line may contain: the clients' API keys and the upstreams' key."""
    secrets = [key.get_secret_value() for key in settings.api_keys]
    if settings.upstream_api_key is not None:
        secrets.append(settings.upstream_api_key.get_secret_value())
    return secrets


def config_error(message: str) -> int:
    """Report a configuration error in one line; the exit code says it is the user's to fix."""
    print(f"quorum serve: {' '.join(message.split())}", file=sys.stderr)
    return CONFIG_ERROR


def serve(args: list[str]) -> int:
    """Start the HTTP server on the in-process vLLM engine, or on ``--upstream`` servers."""
    try:
        settings = Settings(_cli_parse_args=args)
    except ValidationError as exc:
        return config_error(settings_error(exc))
    except SettingsError as exc:  # an unknown flag, a flag without its value
        return config_error(f"invalid settings: {exc}")
    configure_logging(settings.log_level, log_secrets(settings))

    from server.api.app import create_app
    from server.engines.factory import build_engine, engine_missing
    from server.runtime.serve import run_server

    if (missing := engine_missing(settings)) is not None:
        print(f"quorum serve: {missing}", file=sys.stderr)
        return 2  # a configuration error: the install or the flags must change
    if settings.upstreams:
        from server.engines.upstream import resolve_upstream_settings
        from server.errors import QuorumError

        try:  # the served name and context length come from the upstreams unless given
            settings = asyncio.run(resolve_upstream_settings(settings))
        except ValueError as exc:  # the settings do not fit what the upstreams serve
            return config_error(str(exc))
        except QuorumError as exc:  # no upstream answered: not the settings' fault
            print(f"quorum serve: {exc}", file=sys.stderr)
            return 1
    if settings.deterministic and settings.test_engine == "none":
        from server.engines.vllm_engine import cpu_refusal

        if (refusal := cpu_refusal()) is not None:  # before a minute of engine start
            return config_error(f"invalid setting {setting_names('deterministic')}: {refusal}")
    try:
        engine = build_engine(settings)
    except EmbeddedModelError as exc:  # no --model, and the embedded one cannot be prepared
        return config_error(
            f"no model set ({setting_names('model')}) and the embedded one cannot be "
            f"prepared: {exc}"
        )
    app = create_app(settings, engine)
    # Signals drain in-flight work first (server.runtime.serve); the exit code says why we stopped.
    return run_server(app, settings)
