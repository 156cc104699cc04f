"""Every kind of bad input: one line, `FILE:LINE:COL: key.path: message`, exactly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from parlant_router.config.loading import load_config
from parlant_router.errors import ConfigError

WriteFile = Callable[[str, str], Path]

SNOW = "  warehouse: {type: snowflake, emulator: snow}\n"

# (name, parlant.yaml, expected error)
FILE_CASES = [
    (
        "bad yaml",
        "version: 1\nserver:\n  host: a\n   port: 3\n",
        "parlant.yaml:4:8: invalid YAML: mapping values are not allowed here",
    ),
    (
        "tab",
        "version: 1\nserver:\n\thost: a\n",
        "parlant.yaml:3:1: invalid YAML: found character '\\t' that cannot start any token "
        "(while scanning for the next token)",
    ),
    (
        "duplicate key",
        "version: 1\nserver:\n  port: 1\n  port: 2\n",
        "parlant.yaml:4:3: server.port: duplicate key (first set at line 3)",
    ),
    (
        "duplicate top-level key",
        "version: 1\nversion: 1\n",
        "parlant.yaml:2:1: version: duplicate key (first set at line 1)",
    ),
    (
        "unknown top-level key",
        "version: 1\nsever: {}\n",
        "parlant.yaml:2:1: sever: unknown key 'sever' (did you mean 'server'?)",
    ),
    (
        "misspelled NLP service",
        "version: 1\nserver:\n  nlp: antropic\n",
        "parlant.yaml:3:8: server.nlp: unknown NLP service 'antropic' (did you mean "
        "'anthropic'?); choose one of: offline, emcie, azure, openai, anthropic, cerebras, "
        "together, gemini, litellm, modelscope, vertex, mistral, ollama, glm, qwen, deepseek, "
        "novita, snowflake, openrouter, zhipu, or 'package.module:factory'",
    ),
    (
        "unknown server key",
        "version: 1\nserver:\n  prot: 1\n",
        "parlant.yaml:3:3: server.prot: unknown key 'prot' (did you mean 'port'?)",
    ),
    (
        "unknown backend key",
        "version: 1\nbackends:\n  w:\n    type: snowflake\n    acount: x\n",
        "parlant.yaml:5:5: backends.w.acount: unknown key 'acount' (did you mean 'account'?)",
    ),
    (
        "unknown store key, flow style",
        "version: 1\nbackends:\n  w: {type: transient}\nstores:\n  sessions: {backend: w, tabel_prefix: X}\n",
        "parlant.yaml:5:26: stores.sessions.tabel_prefix: unknown key 'tabel_prefix' "
        "(did you mean 'table_prefix'?)",
    ),
    (
        "unknown key without a near miss",
        "version: 1\nserver:\n  zzz: 1\n",
        "parlant.yaml:3:3: server.zzz: unknown key 'zzz'",
    ),
    (
        "wrong type",
        "version: 1\nserver:\n  port: abc\n",
        "parlant.yaml:3:9: server.port: input should be a valid integer, "
        "unable to parse string as an integer",
    ),
    (
        "mapping expected",
        "version: 1\nserver: 5\n",
        "parlant.yaml:2:9: server: expected a mapping",
    ),
    (
        "wrong type in a list",
        "version: 1\nserver:\n  modules: [a, {x: 1}]\n",
        "parlant.yaml:3:16: server.modules.1: input should be a valid string",
    ),
    (
        "literal",
        "version: 1\nserver:\n  log_level: loud\n",
        "parlant.yaml:3:14: server.log_level: input should be 'trace', 'debug', 'info', "
        "'warning', 'error' or 'critical'",
    ),
    (
        "undefined backend, shorthand",
        f"version: 1\nbackends:\n{SNOW}stores:\n  sessions: wharehouse\n",
        "parlant.yaml:5:13: stores.sessions.backend: backend 'wharehouse' is not defined "
        "(did you mean 'warehouse'?); defined: warehouse",
    ),
    (
        "undefined backend, block",
        f"version: 1\nbackends:\n{SNOW}stores:\n  sessions:\n    backend: nope\n",
        "parlant.yaml:6:14: stores.sessions.backend: backend 'nope' is not defined; "
        "defined: warehouse",
    ),
    (
        "misspelled store",
        f"version: 1\nbackends:\n{SNOW}stores:\n  sesions: warehouse\n",
        "parlant.yaml:5:3: stores.sesions: unknown store 'sesions' (did you mean 'sessions'?)",
    ),
    (
        "bad table prefix",
        f"version: 1\nbackends:\n{SNOW}stores:\n  sessions: {{backend: warehouse, table_prefix: 1BAD-}}\n",
        "parlant.yaml:5:48: stores.sessions.table_prefix: '1BAD-' is not a valid table prefix: "
        "use letters, digits and underscores, not starting with a digit",
    ),
    (
        "two stores share a table prefix (case folded)",
        f"version: 1\nbackends:\n{SNOW}stores:\n  sessions: {{backend: warehouse, table_prefix: P_}}\n"
        "  customers: {backend: warehouse, table_prefix: p_}\n",
        "parlant.yaml:6:49: stores.customers.table_prefix: table prefix 'p_' is also used by store "
        "'sessions' on backend 'warehouse'; they would share Parlant's metadata table",
    ),
    (
        "a given prefix equal to another store's default",
        f"version: 1\nbackends:\n{SNOW}stores:\n  sessions: warehouse\n"
        "  customers: {backend: warehouse, table_prefix: PARLANT_SESSIONS_}\n",
        "parlant.yaml:6:49: stores.customers.table_prefix: table prefix 'PARLANT_SESSIONS_' is also "
        "used by store 'sessions' on backend 'warehouse'; they would share Parlant's metadata table",
    ),
    (
        "two auth methods",
        "version: 1\nbackends:\n  w:\n    type: snowflake\n    account: a\n    user: u\n"
        "    password: p\n    token: t\n",
        "parlant.yaml:8:12: backends.w.token: 'password' and 'token' are both set: "
        "choose one authentication method",
    ),
    (
        "emulator and password",
        "version: 1\nbackends:\n  w:\n    type: snowflake\n    password: p\n    emulator: e\n",
        "parlant.yaml:6:15: backends.w.emulator: 'password' and 'emulator' are both set: "
        "choose one authentication method",
    ),
    (
        "password without user",
        "version: 1\nbackends:\n  w:\n    type: snowflake\n    account: a\n    password: p\n",
        "parlant.yaml:3:3: backends.w.user: required by password authentication",
    ),
    (
        "passphrase without key",
        "version: 1\nbackends:\n  w:\n    type: snowflake\n    connection_name: c\n"
        "    private_key_passphrase: p\n",
        "parlant.yaml:6:29: backends.w.private_key_passphrase: needs 'private_key_file' "
        "(key-pair authentication)",
    ),
    (
        "connection keys without an authentication method",
        "version: 1\nbackends:\n  w:\n    type: snowflake\n    pool_size: 2\n    warehouse: wh\n",
        "parlant.yaml:6:16: backends.w.warehouse: no authentication method is set, so the "
        "connection comes from the SNOWFLAKE_* environment variables and this key would be "
        "ignored; set one of password, token, token_file, private_key_file, connection_name, "
        "emulator",
    ),
    (
        "hybrid tables on the emulator",
        "version: 1\nbackends:\n  w: {type: snowflake, emulator: x, table_type: hybrid}\n",
        "parlant.yaml:3:49: backends.w.table_type: the emulator has no hybrid tables",
    ),
    (
        "connection name and password",
        "version: 1\nbackends:\n  w:\n    type: snowflake\n    connection_name: c\n"
        "    password: p\n",
        "parlant.yaml:5:22: backends.w.connection_name: 'password' and 'connection_name' are both "
        "set: choose one authentication method",
    ),
    (
        "token without account",
        "version: 1\nbackends:\n  w:\n    type: snowflake\n    token: t\n",
        "parlant.yaml:3:3: backends.w.account: required by token authentication",
    ),
    (
        "a backend key in options",
        "version: 1\nbackends:\n  w:\n    type: snowflake\n    account: a\n    token: t\n"
        "    options: {pool_size: 2}\n",
        "parlant.yaml:7:15: backends.w.options.pool_size: 'pool_size' has its own key (or is a "
        "secret): set it there, not in options",
    ),
    (
        "a secret in the emulator's options",
        "version: 1\nbackends:\n  w: {type: snowflake, emulator: e, options: {password: x}}\n",
        "parlant.yaml:3:47: backends.w.options.password: 'password' has its own key (or is a "
        "secret): set it there, not in options",
    ),
    (
        "passphrase without an authentication method",
        "version: 1\nbackends:\n  w:\n    type: snowflake\n    private_key_passphrase: p\n",
        "parlant.yaml:5:29: backends.w.private_key_passphrase: no authentication method is set, "
        "so the connection comes from the SNOWFLAKE_* environment variables and this key would "
        "be ignored; set one of password, token, token_file, private_key_file, connection_name, "
        "emulator",
    ),
    (
        "unknown backend type",
        "version: 1\nbackends:\n  w:\n    type: snowflak\n",
        "parlant.yaml:4:11: backends.w.type: unknown backend type 'snowflak' (did you mean "
        "'snowflake'?); expected one of snowflake, json, transient, mongodb, custom",
    ),
    (
        "missing backend type",
        "version: 1\nbackends:\n  w:\n    directory: x\n",
        "parlant.yaml:3:3: backends.w.type: required key is missing: "
        "one of snowflake, json, transient, mongodb, custom",
    ),
    (
        "missing required key",
        "version: 1\nbackends:\n  w:\n    type: json\n",
        "parlant.yaml:3:3: backends.w.directory: required key is missing",
    ),
    (
        "missing version",
        "server: {}\n",
        "parlant.yaml:1:1: version: required key is missing",
    ),
    (
        "wrong version",
        "version: 2\n",
        "parlant.yaml:1:10: version: input should be 1",
    ),
    (
        "not a mapping",
        "- a\n",
        "parlant.yaml:1:1: expected a mapping of keys (like `version: 1`) at the top level",
    ),
    (
        "vector on a document store",
        "version: 1\nbackends:\n  w: {type: transient}\nstores:\n  sessions: {backend: w, vector: chroma}\n",
        "parlant.yaml:5:34: stores.sessions.vector: only vector-backed stores (journeys, glossary, "
        "canned_responses, capabilities) take a vector database",
    ),
    (
        "vector directory without a persistent vector database",
        "version: 1\nbackends:\n  w: {type: transient}\nstores:\n  glossary:\n    backend: w\n"
        "    vector_directory: v\n",
        "parlant.yaml:7:23: stores.glossary.vector_directory: needs `vector: chroma` or "
        "`vector: qdrant`",
    ),
    (
        "home of an unknown user",
        "version: 1\nserver:\n  home: ~no-such-user-here/data\n",
        "parlant.yaml:3:9: server.home: cannot expand '~' in '~no-such-user-here/data': "
        "no such user",
    ),
    (
        "bad custom factory",
        "version: 1\nbackends:\n  c: {type: custom, factory: notafactory}\n",
        "parlant.yaml:3:30: backends.c.factory: 'notafactory' is not an import path like "
        "`my_package.module:make_db`",
    ),
    (
        "unset variable",
        "version: 1\nbackends:\n  w:\n    type: snowflake\n    account: ${NOT_SET_ACCOUNT}\n",
        "parlant.yaml:5:14: backends.w.account: environment variable NOT_SET_ACCOUNT is not set",
    ),
    (
        "malformed interpolation",
        "version: 1\nserver:\n  host: x${1X}\n",
        "parlant.yaml:3:9: server.host: malformed interpolation: expected ${VAR} or ${VAR:-default}",
    ),
    (
        "unknown YAML tag",
        "version: 1\nserver: !foo 3\n",
        "parlant.yaml:2:9: invalid YAML: could not determine a constructor for the tag '!foo'",
    ),
    (
        "merge keys",
        "version: 1\nx: &a {y: 1}\nserver:\n  <<: *a\n",
        "parlant.yaml:4:3: server: YAML merge keys ('<<') are not supported; use environments "
        "instead",
    ),
    (
        "cache size not a size",
        "version: 1\nbackends:\n  sf: {type: snowflake, emulator: x, cache: {max_size: lots}}\n",
        "parlant.yaml:3:56: backends.sf.cache.max_size: could not parse value and unit from "
        "byte string",
    ),
    (
        "cache on a transient backend",
        "version: 1\nbackends:\n  mem: {type: transient, cache: true}\nstores:\n  tags: mem\n",
        "parlant.yaml:3:33: backends.mem.cache: a transient backend has no read cache: it keeps "
        "documents in memory already",
    ),
    (
        "cache on a mongodb backend",
        "version: 1\nbackends:\n  m: {type: mongodb, url: 'mongodb://h', cache: true}\n"
        "stores:\n  tags: m\n",
        "parlant.yaml:3:49: backends.m.cache: a mongodb backend has no read cache: Parlant's "
        "MongoDB adapter does not return the document an update changed, so a cache could not "
        "follow its writes",
    ),
    (
        "cache on a store that is never cached",
        "version: 1\nbackends:\n  sf: {type: snowflake, emulator: x}\n"
        "stores:\n  evaluations: {backend: sf, cache: {enabled: true}}\n",
        "parlant.yaml:5:37: stores.evaluations.cache: store 'evaluations' is not "
        "cached (turns do not read it)",
    ),
    (
        "unknown listener",
        "version: 1\nserver:\n  listener: push\n",
        "parlant.yaml:3:13: server.listener: input should be 'notify' or 'poll'",
    ),
    (
        "unknown replicas mode",
        "version: 1\nserver:\n  replicas: two\n",
        "parlant.yaml:3:13: server.replicas: input should be 'one' or 'many'",
    ),
    (
        "staleness bound too small",
        "version: 1\nserver:\n  max_staleness: 0.01\n",
        "parlant.yaml:3:18: server.max_staleness: input should be greater than or equal to 0.1",
    ),
    (
        "many replicas with sessions not routed",
        "version: 1\nserver:\n  replicas: many\n",
        "parlant.yaml:3:13: server.replicas: `many` needs stores.sessions on a snowflake "
        "backend, whose conditional writes keep offsets and session updates safe across "
        "processes; sessions is not routed (Parlant's default keeps it in each process)",
    ),
    (
        "many replicas with sessions on json",
        "version: 1\nserver: {replicas: many}\nbackends:\n  f: {type: json, directory: d}\n"
        "stores:\n  sessions: f\n",
        "parlant.yaml:2:20: server.replicas: `many` needs stores.sessions on a snowflake "
        "backend, whose conditional writes keep offsets and session updates safe across "
        "processes; sessions is on json backend 'f'",
    ),
    (
        "many replicas with another store on json",
        "version: 1\nserver: {replicas: many}\nbackends:\n  sf: {type: snowflake, emulator: x}\n"
        "  f: {type: json, directory: d}\nstores:\n  sessions: sf\n  agents: f\n",
        "parlant.yaml:8:11: stores.agents.backend: backend 'f' is a json backend: each server "
        "process rewrites its files whole, so with server.replicas: many processes would "
        "overwrite each other's writes; use a snowflake backend",
    ),
    (
        "many replicas waking clients without the sessions cache",
        "version: 1\nserver: {replicas: many}\nbackends:\n  sf: {type: snowflake, emulator: x}\n"
        "stores:\n  sessions: {backend: sf, cache: false}\n",
        "parlant.yaml:2:9: server.listener: `notify` with server.replicas: many needs the "
        "sessions store's read cache (other processes' writes reach waiting clients through "
        "it); enable it or use `listener: poll`",
    ),
    (
        "environments not a mapping",
        "version: 1\nenvironments: [prod]\n",
        "parlant.yaml:2:15: environments: expected a mapping",
    ),
    (
        "environment block not a mapping",
        "version: 1\nenvironments:\n  prod: 5\n",
        "parlant.yaml:3:9: environments.prod: expected a mapping",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [pytest.param(text, expected, id=name) for name, text, expected in FILE_CASES],
)
def test_file_errors(write: WriteFile, text: str, expected: str) -> None:
    write("parlant.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml")
    assert str(caught.value) == expected


ENVIRONMENTS = """
version: 1
backends:
  warehouse: {type: snowflake, emulator: snow}
environments:
  prod:
    server:
      prot: 1
  dev:
    backends:
      warehouse:
        token: t
  qa: {}
"""


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ("prod", "parlant.yaml:7:7: server.prot: unknown key 'prot' (did you mean 'port'?)"),
        (
            "dev",
            "parlant.yaml:11:16: backends.warehouse.token: 'token' and 'emulator' are both set: "
            "choose one authentication method",
        ),
        (
            "prd",
            "parlant.yaml:4:1: environments: unknown environment 'prd' (did you mean 'prod'?); "
            "defined: dev, prod, qa",
        ),
        ("../x", "parlant.yaml: bad environment name '../x'"),
    ],
)
def test_environment_errors(write: WriteFile, env: str, expected: str) -> None:
    write("parlant.yaml", ENVIRONMENTS)
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml", env=env)
    assert str(caught.value) == expected


def test_unknown_environment_from_variable_without_environments(
    write: WriteFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    write("parlant.yaml", "version: 1\n")
    monkeypatch.setenv("PARLANT_ENV", "prod")
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml")
    assert str(caught.value) == (
        "parlant.yaml:1:1: environments: unknown environment 'prod' (from PARLANT_ENV); "
        "defined: none"
    )


@pytest.mark.parametrize(
    "directory, overlay, expected",
    [
        pytest.param(
            "conf/",
            "# qa\nserver:\n  port: many\n",
            "conf/parlant.qa.yaml:3:9: server.port: input should be a valid integer, "
            "unable to parse string as an integer",
            id="error-in-overlay-points-into-the-overlay",
        ),
        pytest.param(
            "",
            "environments: {}\n",
            "parlant.qa.yaml:1:1: environments: environments can only be defined in the main "
            "config file",
            id="environments-in-an-overlay-are-refused",
        ),
    ],
)
def test_overlay_errors_point_into_the_overlay(
    write: WriteFile, directory: str, overlay: str, expected: str
) -> None:
    write(f"{directory}parlant.yaml", ENVIRONMENTS)
    write(f"{directory}parlant.qa.yaml", overlay)
    with pytest.raises(ConfigError) as caught:
        load_config(f"{directory}parlant.yaml", env="qa")
    assert str(caught.value) == expected


def test_key_error_of_a_value_set_by_an_environment_points_at_the_block(write: WriteFile) -> None:
    # The file's value is fine; the block replaces it with a bad one.
    write(
        "parlant.yaml",
        "version: 1\nserver:\n  port: 1\nenvironments:\n  prod:\n    server: {port: x}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml", env="prod")
    assert str(caught.value).startswith("parlant.yaml:6:20: server.port: ")


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("server.port", "--set server.port: expected KEY=VALUE (e.g. --set server.port=8801)"),
        ("=1", "--set =1: bad key path: expected dotted keys like server.port"),
        (
            "server..port=1",
            "--set server..port=1: server..port: bad key path: expected dotted keys like "
            "server.port",
        ),
        (
            "backends.warehouse.type.x=1",
            "--set backends.warehouse.type.x=1: backends.warehouse.type.x: bad key path: "
            "backends.warehouse.type is a value, not a mapping",
        ),
        (
            "sever.port=1",
            "--set sever.port=1: sever: unknown key 'sever' (did you mean 'server'?)",
        ),
        (
            "server.port=x",
            "--set server.port=x: server.port: input should be a valid integer, "
            "unable to parse string as an integer",
        ),
        (
            "stores.sessions.backend=nope",
            "--set stores.sessions.backend=nope: stores.sessions.backend: backend 'nope' is not "
            "defined; defined: warehouse",
        ),
        (
            "server.modules=[a]",
            "--set server.modules=[a]: server.modules: the value must be a YAML scalar "
            "(a string, number, boolean or null)",
        ),
        (
            "server.host='x",
            "--set server.host='x: server.host: the value is not valid YAML",
        ),
        (
            "environments.prod.server.port=1",
            "--set environments.prod.server.port=1: environments.prod.server.port: environments "
            "are applied before --set; set the keys themselves, or use --env",
        ),
    ],
)
def test_set_errors(write: WriteFile, override: str, expected: str) -> None:
    write("parlant.yaml", ENVIRONMENTS)
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml", overrides=["server.host=fine", override])
    assert str(caught.value) == expected


def test_missing_file(workdir: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config("nowhere/parlant.yaml")
    assert str(caught.value) == "nowhere/parlant.yaml: config file not found"


def test_directory_instead_of_file(workdir: Path) -> None:
    (workdir / "parlant.yaml").mkdir()
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml")
    assert str(caught.value) == "parlant.yaml: is a directory, not a config file"


def test_control_character(workdir: Path) -> None:
    (workdir / "parlant.yaml").write_text("version: 1\nserver:\n  host: a\x00b\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml")
    assert str(caught.value) == (
        "parlant.yaml:3:10: invalid YAML: special characters are not allowed (#x0000)"
    )


def test_control_character_in_set(write: WriteFile) -> None:
    write("parlant.yaml", "version: 1\n")
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml", overrides=["server.host=a\x00b"])
    assert str(caught.value) == "--set server.host=a\x00b: server.host: the value is not valid YAML"


def test_not_utf8(workdir: Path) -> None:
    (workdir / "parlant.yaml").write_bytes(b"version: 1\nserver: {host: \xff\xfe}\n")
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml")
    assert str(caught.value) == "parlant.yaml: not a UTF-8 text file"


def test_error_fields_are_exposed(write: WriteFile) -> None:
    write("parlant.yaml", "version: 1\nserver:\n  prot: 1\n")
    with pytest.raises(ConfigError) as caught:
        load_config("parlant.yaml")
    error = caught.value
    assert (error.file, error.line, error.col, error.key) == ("parlant.yaml", 3, 3, "server.prot")
    assert "\n" not in str(error)
