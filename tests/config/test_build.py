"""Config generation in-process: ``conf.parse`` + ``config.build``, no subprocess, no Django.

Every expectation comes from the spec (docs seed ``configuration.rst``) or from the measured
facts about Litestream 0.5.17's config reader.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from django_litestream import conf
from django_litestream.config import build as builder
from django_litestream.errors import SettingError

SQLITE = "django.db.backends.sqlite3"
NO_ENV: dict[str, str] = {}


def build(litestream, databases, environ=NO_ENV):
    generated = builder.build(conf.parse(litestream, databases), environ)
    return generated, yaml.safe_load(generated.render())


def litestream_view(generated, environ=NO_ENV) -> dict:
    """What Litestream parses: $VAR / ${VAR} substituted into the text, then YAML.

    (Go's os.Expand on the file text, unset -> ""; see litestream-facts.md.)
    """
    env = {**environ, **generated.secret_env}
    text = re.sub(
        r"\$(?:\{(\w+)\}|(\w+))",
        lambda m: env.get(m.group(1) or m.group(2), ""),
        generated.render(),
    )
    return yaml.safe_load(text)


def ids(generated) -> list[str]:
    return [p.id for p in generated.problems]


@pytest.fixture
def base_dir(tmp_path: Path) -> Path:
    return tmp_path / "myproject"


@pytest.fixture
def databases(base_dir: Path) -> dict:
    return {
        "default": {"ENGINE": SQLITE, "NAME": base_dir / "db.sqlite3"},
        "cache": {"ENGINE": SQLITE, "NAME": base_dir / "cache.sqlite3"},
    }


SPEC_MULTI = {
    "path_prefix": "myproject",
    "dbs": [
        {"path": "default"},
        {
            "path": "cache",
            "replica": {"type": "s3", "bucket": "my-cache-bucket", "path": "custom-cache.sqlite3"},
        },
    ],
}

SPEC_MULTI_YAML = """\
access-key-id: $LITESTREAM_ACCESS_KEY_ID
secret-access-key: $LITESTREAM_SECRET_ACCESS_KEY
dbs:
- path: /home/user/myproject/db.sqlite3
  replica:
    type: s3
    bucket: $LITESTREAM_REPLICA_BUCKET
    path: myproject/db.sqlite3
- path: /home/user/myproject/cache.sqlite3
  replica:
    type: s3
    bucket: my-cache-bucket
    path: custom-cache.sqlite3
"""


# -- the spec's examples ---------------------------------------------------------------


@pytest.mark.parametrize("name_type", [Path, str], ids=["Path", "str"])
def test_spec_multiple_databases_with_path_prefix(base_dir, name_type):
    databases = {
        "default": {"ENGINE": SQLITE, "NAME": name_type(base_dir / "db.sqlite3")},
        "cache": {"ENGINE": SQLITE, "NAME": name_type(base_dir / "cache.sqlite3")},
    }
    generated, data = build(SPEC_MULTI, databases)
    expected = yaml.safe_load(SPEC_MULTI_YAML.replace("/home/user/myproject", str(base_dir)))
    assert data == expected
    assert generated.problems == []
    assert generated.secret_env == {}
    for db in data["dbs"]:
        assert os.path.isabs(db["path"])


def test_relative_name_resolves_against_base_dir(tmp_path):
    databases = {"default": {"ENGINE": SQLITE, "NAME": "db.sqlite3"}}
    settings = conf.parse({"dbs": [{"path": "default"}]}, databases, base_dir=str(tmp_path))
    assert settings.dbs[0].path == str(tmp_path / "db.sqlite3")


def test_simple_auto_generated_replica(databases, base_dir):
    generated, data = build({"dbs": [{"path": "default"}]}, databases)
    assert data == {
        "access-key-id": "$LITESTREAM_ACCESS_KEY_ID",
        "secret-access-key": "$LITESTREAM_SECRET_ACCESS_KEY",
        "dbs": [
            {
                "path": str(base_dir / "db.sqlite3"),
                "replica": {
                    "type": "s3",
                    "bucket": "$LITESTREAM_REPLICA_BUCKET",
                    "path": "db.sqlite3",
                },
            }
        ],
    }
    assert generated.problems == []


def test_bare_alias_string_is_a_db_entry(databases, base_dir):
    _, data = build({"dbs": ["default"]}, databases)
    assert data["dbs"][0]["path"] == str(base_dir / "db.sqlite3")


def test_file_path_db_entry(databases, tmp_path):
    target = tmp_path / "other" / "app.db"
    _, data = build({"path_prefix": "/p/", "dbs": [{"path": str(target)}]}, databases)
    assert data["dbs"][0] == {
        "path": str(target),
        "replica": {"type": "s3", "bucket": "$LITESTREAM_REPLICA_BUCKET", "path": "p/app.db"},
    }


def test_manual_replica_passes_through_unchanged_without_prefix(databases, base_dir):
    replica = {"type": "s3", "bucket": "my-bucket", "path": "db.sqlite3", "region": "us-east-1"}
    generated, data = build(
        {"path_prefix": "myproject", "dbs": [{"path": "default", "replica": dict(replica)}]},
        databases,
    )
    # Manual replicas only: no top-level credential references are added.
    assert data == {"dbs": [{"path": str(base_dir / "db.sqlite3"), "replica": replica}]}
    assert generated.problems == []


# -- replica types ---------------------------------------------------------------------

REPLICA_CASES = {
    "s3": (
        {
            "type": "s3",
            "bucket": "b",
            "path": "db",
            "region": "eu-west-1",
            "endpoint": "http://127.0.0.1:9000",
            "force_path_style": True,
        },
        {
            "type": "s3",
            "bucket": "b",
            "path": "db",
            "region": "eu-west-1",
            "endpoint": "http://127.0.0.1:9000",
            "force-path-style": True,
        },
    ),
    "gcs": (
        {"type": "gcs", "bucket": "my-bucket", "path": "db.sqlite3"},
        {"type": "gs", "bucket": "my-bucket", "path": "db.sqlite3"},
    ),
    "abs": (
        {
            "type": "abs",
            "bucket": "my-container",
            "path": "db.sqlite3",
            "account_name": "$AZURE_STORAGE_ACCOUNT",
            "account_key": "$AZURE_STORAGE_KEY",
        },
        {
            "type": "abs",
            "bucket": "my-container",
            "path": "db.sqlite3",
            "account-name": "$AZURE_STORAGE_ACCOUNT",
            "account-key": "$AZURE_STORAGE_KEY",
        },
    ),
    "sftp": (
        {
            "type": "sftp",
            "host": "sftp.example.com",
            "user": "myuser",
            "path": "/backups/db.sqlite3",
            "key_path": "/home/user/.ssh/id_rsa",
        },
        {
            "type": "sftp",
            "host": "sftp.example.com",
            "user": "myuser",
            "path": "/backups/db.sqlite3",
            "key-path": "/home/user/.ssh/id_rsa",
        },
    ),
    "file": (
        {"type": "file", "path": "/var/backups/db"},
        {"type": "file", "path": "/var/backups/db"},
    ),
    "file-url": (
        {"url": "file:///var/backups/db"},
        {"url": "file:///var/backups/db"},
    ),
    "webdav": (
        {
            "type": "webdav",
            "webdav_url": "https://dav.example.com/",
            "webdav_username": "u",
            "path": "db",
        },
        {
            "type": "webdav",
            "webdav-url": "https://dav.example.com/",
            "webdav-username": "u",
            "path": "db",
        },
    ),
    "nats": (
        {
            "type": "nats",
            "url": "nats://127.0.0.1:4222/bucket",
            "creds": "/etc/nats.creds",
            "max_reconnects": 3,
            "reconnect_wait": "2s",
        },
        {
            "type": "nats",
            "url": "nats://127.0.0.1:4222/bucket",
            "creds": "/etc/nats.creds",
            "max-reconnects": 3,
            "reconnect-wait": "2s",
        },
    ),
    "oss": (
        {"type": "oss", "bucket": "b", "path": "db", "region": "oss-cn-hangzhou"},
        {"type": "oss", "bucket": "b", "path": "db", "region": "oss-cn-hangzhou"},
    ),
}


@pytest.mark.parametrize("kind", list(REPLICA_CASES))
def test_replica_types(kind, databases):
    given, expected = REPLICA_CASES[kind]
    generated, data = build({"dbs": [{"path": "default", "replica": given}]}, databases)
    assert data["dbs"][0]["replica"] == expected
    assert generated.problems == [], [str(p) for p in generated.problems]


def test_unknown_replica_type_is_malformed(databases):
    with pytest.raises(SettingError) as err:
        conf.parse({"dbs": [{"path": "default", "replica": {"type": "dropbox"}}]}, databases)
    assert err.value.check_id == "django_litestream.E001"
    assert "['replica']['type'] is 'dropbox'" in err.value.msg


# -- environment fallbacks -------------------------------------------------------------

SECRET_VALUES = {
    "LITESTREAM_REPLICA_BUCKET": "lsbucket-value",
    "LITESTREAM_ACCESS_KEY_ID": "LSKEYID-value",
    "LITESTREAM_SECRET_ACCESS_KEY": "ls-secret-value",
    "AWS_BUCKET": "awsbucket-value",
    "AWS_ACCESS_KEY_ID": "AWSKEYID-value",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-value",
}


@pytest.mark.parametrize(
    "present, expected",
    [
        (
            [],
            (
                "LITESTREAM_REPLICA_BUCKET",
                "LITESTREAM_ACCESS_KEY_ID",
                "LITESTREAM_SECRET_ACCESS_KEY",
            ),
        ),
        (
            list(SECRET_VALUES),
            (
                "LITESTREAM_REPLICA_BUCKET",
                "LITESTREAM_ACCESS_KEY_ID",
                "LITESTREAM_SECRET_ACCESS_KEY",
            ),
        ),
        (
            ["AWS_BUCKET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
            ("AWS_BUCKET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
        ),
        (
            ["AWS_BUCKET", "LITESTREAM_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
            ("AWS_BUCKET", "LITESTREAM_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
        ),
    ],
    ids=["none-set", "all-set", "aws-only", "mixed"],
)
def test_bucket_and_credential_env_fallbacks(databases, present, expected):
    environ = {name: SECRET_VALUES[name] for name in present}
    environ["LITESTREAM_REPLICA_BUCKET_UNUSED"] = "x"
    generated, data = build({"dbs": [{"path": "default"}]}, databases, environ)
    bucket, key_id, secret = expected
    assert data["dbs"][0]["replica"]["bucket"] == f"${bucket}"
    assert data["access-key-id"] == f"${key_id}"
    assert data["secret-access-key"] == f"${secret}"
    text = generated.render()
    for value in SECRET_VALUES.values():
        assert value not in text
    assert generated.secret_env == {}


def test_empty_env_value_does_not_count_as_set(databases):
    environ = {"LITESTREAM_REPLICA_BUCKET": "", "AWS_BUCKET": "real"}
    _, data = build({"dbs": [{"path": "default"}]}, databases, environ)
    assert data["dbs"][0]["replica"]["bucket"] == "$AWS_BUCKET"


# -- passthrough -----------------------------------------------------------------------


def test_top_level_and_per_db_keys_pass_through(databases, base_dir):
    litestream = {
        "logging": {"level": "debug", "type": "json", "stderr": True},
        "addr": "127.0.0.1:9090",
        "mcp_addr": "127.0.0.1:3001",
        "socket": {"enabled": True, "path": "/run/ls.sock", "permissions": 0o660},
        "snapshot": {"interval": "1h", "retention": "24h"},
        "levels": [{"interval": "5m"}, {"interval": "1h"}],
        "retention": {"enabled": False},
        "shutdown-sync-timeout": "10s",
        "shutdown_sync_interval": "250ms",
        "access-key-id": "$MY_KEY_ID",
        "region": "us-west-2",
        "dbs": [
            {
                "path": "default",
                "monitor_interval": "2s",
                "checkpoint-interval": "30s",
                "busy_timeout": "3s",
                "min-checkpoint-page-count": 500,
                "restore_if_db_not_exists": True,
                "replica": {"type": "file", "path": "/backups/db", "sync_interval": "5s"},
            }
        ],
    }
    generated, data = build(litestream, databases)
    assert generated.problems == [], [str(p) for p in generated.problems]
    assert data == {
        "logging": {"level": "debug", "type": "json", "stderr": True},
        "addr": "127.0.0.1:9090",
        "mcp-addr": "127.0.0.1:3001",
        "socket": {"enabled": True, "path": "/run/ls.sock", "permissions": 0o660},
        "snapshot": {"interval": "1h", "retention": "24h"},
        "levels": [{"interval": "5m"}, {"interval": "1h"}],
        "retention": {"enabled": False},
        "shutdown-sync-timeout": "10s",
        "shutdown-sync-interval": "250ms",
        "access-key-id": "$MY_KEY_ID",
        "region": "us-west-2",
        "dbs": [
            {
                "path": str(base_dir / "db.sqlite3"),
                "monitor-interval": "2s",
                "checkpoint-interval": "30s",
                "busy-timeout": "3s",
                "min-checkpoint-page-count": 500,
                "restore-if-db-not-exists": True,
                "replica": {"type": "file", "path": "/backups/db", "sync-interval": "5s"},
            }
        ],
    }


def test_addr_with_leading_colon_round_trips(databases):
    generated, data = build(
        {"addr": ":9090", "dbs": [{"path": "default", "replica": {"type": "file", "path": "/r"}}]},
        databases,
    )
    assert data["addr"] == ":9090"


FILE_REPLICA = {"type": "file", "path": "/r"}


@pytest.mark.parametrize("value", ["0660", "660", "0o660", 0o660, 432])
def test_socket_permissions_become_the_integer_litestream_reads(databases, value):
    sock = {"enabled": True, "path": "/run/ls.sock", "permissions": value}
    generated, data = build(
        {"socket": sock, "dbs": [{"path": "default", "replica": FILE_REPLICA}]}, databases
    )
    assert data["socket"]["permissions"] == 0o660
    assert "permissions: 432" in generated.render()
    assert sock["permissions"] == value  # the user's setting is left as written


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        (660, "660, not a file mode (an integer is read as decimal)."),
        ("rw-rw----", "'rw-rw----', not a file mode."),
        ("0968", "'0968', not a file mode."),
        (True, "True, not a file mode."),
    ],
)
def test_socket_permissions_that_are_not_a_mode_are_e001(databases, value, detail):
    sock = {"enabled": True, "path": "/run/ls.sock", "permissions": value}
    with pytest.raises(SettingError) as caught:
        conf.parse({"socket": sock, "dbs": ["default"]}, databases)
    assert caught.value.check_id == "django_litestream.E001"
    assert str(caught.value) == (
        f"LITESTREAM['socket']['permissions'] is {detail} "
        "Hint: write an octal mode such as 0o660 or '0660'."
    )


def test_user_settings_are_not_mutated(databases):
    replica = {"type": "gcs", "bucket": "b", "path": "p", "secret_access_key": "s3cr3t-literal"}
    litestream = {"dbs": [{"path": "default", "replica": replica}]}
    build(litestream, databases)
    assert replica == {
        "type": "gcs",
        "bucket": "b",
        "path": "p",
        "secret_access_key": "s3cr3t-literal",
    }


# -- literal secrets -------------------------------------------------------------------


def test_literal_secrets_become_private_env_references(databases):
    litestream = {
        "access-key-id": "AKIA-LITERAL-TOP",
        "secret_access_key": "top-literal-secret",
        "dbs": [
            {
                "path": "default",
                "replica": {
                    "type": "abs",
                    "bucket": "c",
                    "path": "db",
                    "account-name": "acct",
                    "account_key": "abs-literal-key",
                    "sas_token": "sas-literal-token",
                },
            },
            {
                "path": "cache",
                "replica": {
                    "type": "sftp",
                    "host": "h:22",
                    "user": "u",
                    "path": "/p",
                    "password": "sftp-literal-password",
                },
            },
        ],
    }
    generated, data = build(litestream, databases)
    text = generated.render()
    literals = {
        "AKIA-LITERAL-TOP",
        "top-literal-secret",
        "abs-literal-key",
        "sas-literal-token",
        "sftp-literal-password",
    }
    for value in literals:
        assert value not in text
    assert len(generated.secret_env) == len(literals)
    assert all(n.startswith("DJANGO_LITESTREAM_SECRET_") for n in generated.secret_env)
    for ref in (
        data["access-key-id"],
        data["secret-access-key"],
        data["dbs"][0]["replica"]["account-key"],
        data["dbs"][0]["replica"]["sas-token"],
        data["dbs"][1]["replica"]["password"],
    ):
        assert ref.startswith("$DJANGO_LITESTREAM_SECRET_")
    # What Litestream reads after expanding the private variables: the literals.
    seen = litestream_view(generated)
    assert seen["access-key-id"] == "AKIA-LITERAL-TOP"
    assert seen["secret-access-key"] == "top-literal-secret"
    assert seen["dbs"][0]["replica"]["account-key"] == "abs-literal-key"
    assert seen["dbs"][0]["replica"]["sas-token"] == "sas-literal-token"
    assert seen["dbs"][1]["replica"]["password"] == "sftp-literal-password"
    # Non-secret values stay literal.
    assert data["dbs"][0]["replica"]["account-name"] == "acct"
    assert data["dbs"][1]["replica"]["user"] == "u"


NASTY_SECRETS = [
    "@dm1n!",
    "*star",
    "a: b",
    "pa$$w0rd",
    "x$HOME",
    "# hash",
    "'quote",
    '"dq\\"',
    "multi\nline",
    "-dash",
    "{flow}",
    "ünï €",
    "  padded  ",
    "&anchor",
    "!tag",
    "yes",
    "0123",
]


@pytest.mark.parametrize("secret", NASTY_SECRETS)
def test_literal_secrets_survive_litestreams_expansion(databases, secret):
    """Litestream substitutes variables into the YAML text before parsing it."""
    replica = {"type": "sftp", "host": "h:22", "user": "u", "path": "/p", "password": secret}
    generated, data = build({"dbs": [{"path": "default", "replica": replica}]}, databases)
    assert data["dbs"][0]["replica"]["password"] == "$DJANGO_LITESTREAM_SECRET_0"
    assert litestream_view(generated, {"HOME": "/root"})["dbs"][0]["replica"]["password"] == secret
    expanded = yaml.safe_load(generated.render(expand={}))
    assert expanded["dbs"][0]["replica"]["password"] == secret


@pytest.mark.parametrize("ref", ["$AZURE_STORAGE_KEY", "${AZURE_STORAGE_KEY}"])
def test_whole_value_references_are_left_to_litestream(databases, ref):
    replica = {"type": "abs", "bucket": "c", "path": "p", "account_key": ref}
    generated, data = build({"dbs": [{"path": "default", "replica": replica}]}, databases)
    assert data["dbs"][0]["replica"]["account-key"] == ref
    assert generated.secret_env == {}


def test_no_expand_env_rendering_inlines_references(databases):
    litestream = {
        "dbs": [
            {
                "path": "default",
                "replica": {
                    "type": "s3",
                    "bucket": "b",
                    "path": "p",
                    "secret-access-key": "literal-x",
                },
            }
        ]
    }
    generated = builder.build(conf.parse(litestream, databases), {})
    expanded = yaml.safe_load(generated.render(expand=generated.secret_env))
    assert expanded["dbs"][0]["replica"]["secret-access-key"] == "literal-x"
    assert "literal-x" not in generated.render()


# -- warnings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "litestream, where",
    [
        (
            {
                "sync-intervall": "1s",
                "dbs": [{"path": "default", "replica": {"type": "file", "path": "/r"}}],
            },
            "LITESTREAM['sync-intervall']",
        ),
        (
            {
                "dbs": [
                    {
                        "path": "default",
                        "replica": {"type": "file", "path": "/r", "sync_intervall": "1s"},
                    }
                ]
            },
            "LITESTREAM['dbs'][0]['replica']['sync-intervall']",
        ),
    ],
    ids=["top-level", "replica"],
)
def test_w001_unknown_key_with_suggestion(databases, litestream, where):
    generated, data = build(litestream, databases)
    assert ids(generated) == ["django_litestream.W001"]
    problem = generated.problems[0]
    assert problem.msg == (
        f"{where} is not a Litestream 0.5 setting; Litestream would silently ignore it."
    )
    assert problem.hint == "Hint: Did you mean 'sync-interval'?"
    assert problem.error is False


def test_w001_without_close_match_says_remove(databases):
    generated, _ = build(
        {"frobnicate": 1, "dbs": [{"path": "default", "replica": {"type": "file", "path": "/r"}}]},
        databases,
    )
    assert ids(generated) == ["django_litestream.W001"]
    assert generated.problems[0].hint == "Hint: Remove it."


@pytest.mark.parametrize(
    "section, key, suggestion",
    [
        ("logging", "levle", "level"),
        ("socket", "enable", "enabled"),
        ("snapshot", "intervall", "interval"),
    ],
)
def test_w001_in_nested_sections(databases, section, key, suggestion):
    generated, _ = build(
        {
            section: {key: "x"},
            "dbs": [{"path": "default", "replica": {"type": "file", "path": "/r"}}],
        },
        databases,
    )
    assert ids(generated) == ["django_litestream.W001"]
    assert generated.problems[0].msg.startswith(f"LITESTREAM['{section}']['{key}']")
    assert generated.problems[0].hint == f"Hint: Did you mean '{suggestion}'?"


@pytest.mark.parametrize(
    "key", ["retention", "retention-check-interval", "snapshot_interval", "name"]
)
def test_w002_litestream_03_replica_keys(databases, key):
    replica = {"type": "file", "path": "/r", key: "1h"}
    generated, _ = build({"dbs": [{"path": "default", "replica": replica}]}, databases)
    assert ids(generated) == ["django_litestream.W002"]
    hyphen = key.replace("_", "-")
    assert generated.problems[0].msg == (
        f"LITESTREAM['dbs'][0]['replica']['{hyphen}'] is a Litestream 0.3 key that "
        "Litestream 0.5 ignores."
    )


@pytest.mark.parametrize(
    "litestream, where",
    [
        (
            {
                "dbs": [
                    {
                        "path": "default",
                        "replica": {"type": "file", "path": "/r", "sync-interval": 10},
                    }
                ]
            },
            "LITESTREAM['dbs'][0]['replica']['sync-interval']",
        ),
        (
            {
                "dbs": [
                    {
                        "path": "default",
                        "monitor_interval": 1,
                        "replica": {"type": "file", "path": "/r"},
                    }
                ]
            },
            "LITESTREAM['dbs'][0]['monitor-interval']",
        ),
        (
            {
                "shutdown-sync-timeout": 30.0,
                "dbs": [{"path": "default", "replica": {"type": "file", "path": "/r"}}],
            },
            "LITESTREAM['shutdown-sync-timeout']",
        ),
        (
            {
                "snapshot": {"interval": 3600},
                "dbs": [{"path": "default", "replica": {"type": "file", "path": "/r"}}],
            },
            "LITESTREAM['snapshot']['interval']",
        ),
        (
            {
                "levels": [{"interval": 300}],
                "dbs": [{"path": "default", "replica": {"type": "file", "path": "/r"}}],
            },
            "LITESTREAM['levels'][0]['interval']",
        ),
    ],
    ids=["replica", "db", "top", "snapshot", "levels"],
)
def test_w003_bare_number_durations(databases, litestream, where):
    generated, _ = build(litestream, databases)
    assert ids(generated) == ["django_litestream.W003"]
    assert generated.problems[0].msg.startswith(f"{where} is the bare number ")
    assert "nanoseconds" in generated.problems[0].msg


def test_duration_strings_and_booleans_are_not_w003(databases):
    generated, _ = build(
        {
            "verify-compaction": True,
            "dbs": [
                {
                    "path": "default",
                    "replica": {
                        "type": "file",
                        "path": "/r",
                        "sync-interval": "10s",
                        "auto-recover": True,
                    },
                }
            ],
        },
        databases,
    )
    assert generated.problems == []


# -- replicas (0.3 list form) ----------------------------------------------------------


def test_replicas_list_of_one_is_accepted(databases, base_dir):
    generated, data = build(
        {"dbs": [{"path": "default", "replicas": [{"type": "file", "path": "/r"}]}]}, databases
    )
    assert data["dbs"] == [
        {"path": str(base_dir / "db.sqlite3"), "replica": {"type": "file", "path": "/r"}}
    ]
    assert "replicas:" not in generated.render()


def test_replicas_list_of_two_is_rejected(databases):
    with pytest.raises(SettingError) as err:
        conf.parse(
            {
                "dbs": [
                    {
                        "path": "default",
                        "replicas": [
                            {"type": "file", "path": "/a"},
                            {"type": "file", "path": "/b"},
                        ],
                    }
                ]
            },
            databases,
        )
    assert err.value.check_id == "django_litestream.E001"
    assert err.value.msg == (
        "LITESTREAM['dbs'][0]['replicas'] lists 2 replicas; Litestream 0.5 replicates "
        "each database to exactly one."
    )


def test_replica_key_at_database_level_says_where_it_belongs() -> None:
    generated, _ = build(
        {
            "dbs": [
                {
                    "path": "/srv/db.sqlite3",
                    "sync-interval": "1s",
                    "replica": {"type": "file", "path": "/r"},
                }
            ]
        },
        {},
    )
    (problem,) = generated.problems
    assert problem.id == "django_litestream.W001"
    assert str(problem) == (
        "LITESTREAM['dbs'][0]['sync-interval'] is not a Litestream 0.5 setting; Litestream "
        "would silently ignore it. Hint: 'sync-interval' is a replica setting: move it into "
        "LITESTREAM['dbs'][0]['replica']."
    )


def test_top_level_retention_value_is_left_to_the_binary() -> None:
    """A value for the 0.5 section 'retention' is refused by Litestream (E009, with the
    0.3 hint: tests/test_verdict.py); no bare-number W003 on top of that."""
    generated, _ = build({"retention": 86400, "dbs": []}, {})
    assert generated.problems == []


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        ("0s", 0.0),
        ("30", None),
        ("30 s", None),
        ("s", None),
        (30, None),
        ("1x", None),
    ],
)
def test_go_duration_parsing(text, seconds) -> None:
    from django_litestream.config.durations import seconds as duration_seconds

    assert duration_seconds(text) == seconds


def test_djangos_in_memory_test_database_is_left_out() -> None:
    """'manage.py test' swaps DATABASES[alias]['NAME'] for an in-memory database before it
    runs the checks: nothing to replicate then, and no E004 (which failed every test run)."""
    from django_litestream.config import values

    databases = {
        "default": {"ENGINE": SQLITE, "NAME": "file:memorydb_default?mode=memory&cache=shared"}
    }
    settings = conf.parse({"dbs": [{"path": "default"}]}, databases)
    assert (settings.dbs, settings.under_test) == ((), True)
    assert values.settings_problems(settings) == []  # no W010 either
    # A NAME the user wrote as in-memory is still E004.
    with pytest.raises(SettingError) as caught:
        conf.parse(
            {"dbs": [{"path": "default"}]}, {"default": {"ENGINE": SQLITE, "NAME": ":memory:"}}
        )
    assert caught.value.check_id == "django_litestream.E004"


def test_path_objects_become_strings_everywhere(tmp_path) -> None:
    litestream = {
        "path_prefix": "p",
        "socket": {"enabled": True, "path": tmp_path / "s.sock"},
        "dbs": [{"path": tmp_path / "a.db", "replica": {"type": "file", "path": tmp_path / "r"}}],
        "serve": {"command": ["gunicorn", tmp_path / "app"]},
    }
    settings = conf.parse(litestream, {})
    assert settings.serve["command"] == ["gunicorn", str(tmp_path / "app")]
    generated = builder.build(settings, {})
    text = generated.render()  # raised RepresenterError for a PosixPath before
    assert "PosixPath" not in text
    assert yaml.safe_load(text)["socket"]["path"] == str(tmp_path / "s.sock")
