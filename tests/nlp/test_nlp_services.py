"""resolve_nlp_service maps server.nlp names to factories; nlp_home separates caches."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from lagom import Container
from parlant.core.loggers import Logger, LogLevel, StdoutLogger
from parlant.core.meter import LocalMeter, Meter
from parlant.core.nlp.service import NLPService
from parlant.core.tracer import LocalTracer, Tracer

from parlant_router.nlp import (
    bind_parlant_home,
    nlp_home,
    nlp_service_names,
    resolve_nlp_service,
)
from parlant_router.nlp.offline import OfflineNLPService
from parlant_router.nlp.services import parlant_nlp_service_names


@pytest.fixture
def container() -> Container:
    c = Container()
    tracer = LocalTracer()
    logger = StdoutLogger(tracer, LogLevel.WARNING)
    # Parlant's container is keyed by its abstract interfaces.
    c[Tracer] = tracer  # type: ignore[type-abstract]
    c[Logger] = logger  # type: ignore[type-abstract]
    c[Meter] = LocalMeter(logger)  # type: ignore[type-abstract]
    return c


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A user's own module, importable as `my_nlp_<unique>`, with factories of every kind."""
    name = f"my_nlp_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            from parlant.core.loggers import Logger
            from parlant_router.nlp.offline import OfflineNLPService

            class MyService(OfflineNLPService):
                pass

            def make(container):
                return MyService.from_container(container)

            def make_wrong(container):
                return "not a service"

            class NotAService:
                pass

            NOT_CALLABLE = 3

            class Factories:
                @staticmethod
                def nested(container):
                    return make(container)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_offline_builds_the_offline_service(container: Container) -> None:
    service = resolve_nlp_service("offline")(container)
    assert type(service) is OfflineNLPService
    # Names are case-insensitive and may carry stray spaces from YAML.
    assert type(resolve_nlp_service(" Offline ")(container)) is OfflineNLPService


def test_parlant_names_are_read_from_the_sdk_without_importing_it() -> None:
    import parlant.sdk as p

    public = {n for n in vars(p.NLPServices) if not n.startswith("_")}
    assert set(parlant_nlp_service_names()) == public
    assert {"openai", "anthropic", "snowflake", "gemini"} <= public
    assert nlp_service_names()[0] == "offline"


def test_choosing_a_provider_imports_nothing_until_the_server_calls_it() -> None:
    script = textwrap.dedent(
        """
        import sys
        from parlant_router.nlp import resolve_nlp_service
        factory = resolve_nlp_service("anthropic")
        assert callable(factory)
        heavy = ("parlant.sdk", "parlant.bin", "parlant.adapters", "anthropic", "openai")
        print(sorted(m for m in sys.modules if m.startswith(heavy)))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip() == "[]"


def test_a_parlant_name_calls_parlants_own_factory(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    from parlant.sdk import NLPServiceConfigurationError

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    factory = resolve_nlp_service("openai")
    # Parlant's OpenAI factory checks its key before anything else: reaching
    # that check proves the name is wired to it, with no network involved.
    with pytest.raises(NLPServiceConfigurationError, match="OPENAI_API_KEY"):
        factory(container)


def test_custom_factory_function(container: Container, user_module: str) -> None:
    service = resolve_nlp_service(f"{user_module}:make")(container)
    assert type(service).__name__ == "MyService"
    nested = resolve_nlp_service(f"{user_module}:Factories.nested")(container)
    assert type(nested).__name__ == "MyService"


def test_custom_service_class_is_built_from_the_container(
    container: Container, user_module: str
) -> None:
    service = resolve_nlp_service(f"{user_module}:MyService")(container)
    assert isinstance(service, NLPService)
    assert type(service).__name__ == "MyService"


@pytest.mark.parametrize(
    ("attribute", "message"),
    [
        ("missing", "has no 'missing'"),
        ("NOT_CALLABLE", "'NOT_CALLABLE' is not callable"),
        ("NotAService", "NotAService is not an NLPService"),
    ],
)
def test_custom_spec_errors_are_one_line(user_module: str, attribute: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        resolve_nlp_service(f"{user_module}:{attribute}")
    assert "\n" not in str(error.value)


def test_custom_module_that_cannot_be_imported() -> None:
    with pytest.raises(ValueError) as error:
        resolve_nlp_service("no_such_package_xyz.mod:make")
    text = str(error.value)
    assert "cannot import 'no_such_package_xyz.mod'" in text
    assert "ModuleNotFoundError" in text
    assert "\n" not in text
    for malformed in (":make", "pkg.mod:", "pkg..mod:make", "pkg mod:make", "pkg:a:b"):
        with pytest.raises(ValueError, match=r"expected 'package\.module:factory'"):
            resolve_nlp_service(malformed)


def test_check_nlp_name_validates_without_importing_anything() -> None:
    script = textwrap.dedent(
        """
        import sys
        from parlant_router.nlp import check_nlp_name
        for good in ("offline", "OpenAI", "snowflake", "not_installed_pkg.mod:make"):
            check_nlp_name(good)
        for bad in ("opnai", "a b:c"):
            try:
                check_nlp_name(bad)
            except ValueError as e:
                print(e)
            else:
                raise SystemExit(f"accepted {bad!r}")
        heavy = ("parlant.", "not_installed_pkg")
        print(sorted(m for m in sys.modules if m.startswith(heavy)))
        """
    )
    lines = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    assert lines[0].startswith("unknown NLP service 'opnai' (did you mean 'openai'?)")
    assert "expected 'package.module:factory'" in lines[1]
    assert lines[2] == "[]"


def test_custom_factory_returning_something_else_fails_when_called(
    container: Container, user_module: str
) -> None:
    factory = resolve_nlp_service(f"{user_module}:make_wrong")
    with pytest.raises(TypeError, match="returned str, not an NLPService"):
        factory(container)


def test_unknown_name_suggests_and_lists_the_choices() -> None:
    with pytest.raises(ValueError) as error:
        resolve_nlp_service("opnai")
    text = str(error.value)
    assert "\n" not in text
    assert text.startswith("unknown NLP service 'opnai' (did you mean 'openai'?); choose one of: ")
    for name in ("offline", "openai", "anthropic", "snowflake", "package.module:factory"):
        assert name in text

    with pytest.raises(ValueError) as error:
        resolve_nlp_service("zzzzzz")
    assert "did you mean" not in str(error.value)


def test_nlp_home_keeps_parlant_providers_in_home_and_others_apart(tmp_path: Path) -> None:
    assert nlp_home(tmp_path, "openai") == tmp_path
    assert nlp_home(tmp_path, "Anthropic") == tmp_path
    offline = nlp_home(tmp_path, "offline")
    custom = nlp_home(tmp_path, "my.pkg:make")
    assert offline == tmp_path / "nlp-offline"
    assert custom.parent == tmp_path
    assert len({tmp_path, offline, custom}) == 3
    assert ":" not in custom.name


def test_bind_parlant_home_repoints_an_already_imported_parlant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import parlant.bin.server
    import parlant.sdk

    modules = (parlant.bin.server, parlant.sdk)
    # monkeypatch restores what bind_parlant_home changes, for the next tests.
    for module in modules:
        monkeypatch.setattr(module, "PARLANT_HOME_DIR", vars(module)["PARLANT_HOME_DIR"])
    monkeypatch.delenv("PARLANT_HOME", raising=False)

    home = nlp_home(tmp_path, "offline")
    bind_parlant_home(home)

    assert home.is_dir()
    assert os.environ["PARLANT_HOME"] == str(home)
    assert [vars(m)["PARLANT_HOME_DIR"] for m in modules] == [home, home]
