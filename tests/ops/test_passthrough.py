"""``manage.py litestream`` end to end: real manage.py processes running the real binary."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest
import yaml

from django_litestream.litestream import subcommands
from tests.support import procs
from tests.support.project import Project, count_rows, stop, wait_for, write_rows

LITESTREAM = str(Path(sys.executable).parent / "litestream")
SQLITE = "django.db.backends.sqlite3"
BUCKET_VARS = ("LITESTREAM_REPLICA_BUCKET", "AWS_BUCKET")

# An -exec child: records its pid, counts INT/TERM into a file, exits 0 on the first one.
SIGNAL_CHILD = """\
import os, signal, sys
out = sys.argv[1]
count = 0
def handler(signum, frame):
    global count
    count += 1
    with open(out + ".count", "a") as f:
        f.write(f"{signum}\\n")
    sys.exit(0)
signal.signal(signal.SIGINT, handler)
signal.signal(signal.SIGTERM, handler)
with open(out + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(out + ".tmp", out + ".ready")
while True:
    signal.pause()
"""


# An -exec child that counts INT/TERM without exiting; SIGUSR1 makes it exit 0.
STUBBORN_CHILD = SIGNAL_CHILD.replace("    sys.exit(0)\n", "").replace(
    "signal.signal(signal.SIGTERM, handler)\n",
    "signal.signal(signal.SIGTERM, handler)\n"
    "signal.signal(signal.SIGUSR1, lambda *a: sys.exit(0))\n",
)


def file_settings(replica: dict, **extra) -> dict:
    return {"dbs": [{"path": "default", "replica": replica}], **extra}


def litestream_procs(root_pid: int) -> list[psutil.Process]:
    """Litestream processes under ``root_pid`` whose exec has finished.

    Right after execve the kernel already reports the new name while the argument list is
    still empty (the comm is set before the new stack's argv is), so wait for both.
    """
    return [
        p.process
        for p in procs.children(root_pid)
        if p.name == "litestream" and p.argv[1:2] == ("replicate",)  # not the guard's ltx
    ]


def config_arg(proc: psutil.Process) -> str:
    argv = proc.cmdline()
    return argv[argv.index("-config") + 1]


def gone(proc: psutil.Process) -> bool:
    return not procs.alive(proc)


def litestreams_in(root: Path) -> set[int]:
    """Running litestream processes started for this test's project (cwd is its root).

    Other suites may run litestream on this machine at the same time; scope by cwd.
    """
    pids = set()
    for proc in psutil.process_iter(["name"]):
        try:
            if proc.info["name"] == "litestream" and proc.cwd() == str(root) and not gone(proc):
                pids.add(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return pids


def replica_files(replica_dir: Path) -> list[Path]:
    return sorted(replica_dir.glob("ltx/0/*.ltx")) if replica_dir.exists() else []


def short_tmpdir() -> str:
    """Unix socket paths are limited to ~108 bytes; pytest's tmp_path can be long."""
    return tempfile.mkdtemp(prefix="dl-", dir="/tmp")


# -- config ----------------------------------------------------------------------------


def test_config_prints_only_variable_references(project: Project, tmp_path):
    env_secrets = {
        "LITESTREAM_REPLICA_BUCKET": "bucket-from-env-7f3",
        "LITESTREAM_ACCESS_KEY_ID": "AKIAENVSECRET7F3",
        "LITESTREAM_SECRET_ACCESS_KEY": "env-secret-access-key-7f3",
        "AWS_ACCESS_KEY_ID": "AKIAAWSSECRET7F3",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-access-key-7f3",
    }
    settings_secret = "settings-literal-secret-7f3"
    databases = {
        "default": {"ENGINE": SQLITE, "NAME": str(project.db)},
        "cache": {"ENGINE": SQLITE, "NAME": str(project.root / "cache.sqlite3")},
    }
    project.configure(
        {
            "path_prefix": "myproject",
            "dbs": [
                {"path": "default"},
                {
                    "path": "cache",
                    "replica": {
                        "type": "s3",
                        "bucket": "my-cache-bucket",
                        "path": "c",
                        "secret_access_key": settings_secret,
                        "access_key_id": "AKIASETTINGS7F3",
                    },
                },
            ],
        },
        databases,
    )
    result = project.run("litestream", "config", env=env_secrets)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    for value in [*env_secrets.values(), settings_secret, "AKIASETTINGS7F3"]:
        assert value not in result.stdout
    data = yaml.safe_load(result.stdout)
    assert data == {
        "access-key-id": "$LITESTREAM_ACCESS_KEY_ID",
        "secret-access-key": "$LITESTREAM_SECRET_ACCESS_KEY",
        "dbs": [
            {
                "path": str(project.db),
                "replica": {
                    "type": "s3",
                    "bucket": "$LITESTREAM_REPLICA_BUCKET",
                    "path": "myproject/db.sqlite3",
                },
            },
            {
                "path": str(project.root / "cache.sqlite3"),
                "replica": {
                    "type": "s3",
                    "bucket": "my-cache-bucket",
                    "path": "c",
                    "secret-access-key": "$DJANGO_LITESTREAM_SECRET_0",
                    "access-key-id": "$DJANGO_LITESTREAM_SECRET_1",
                },
            },
        ],
    }


def test_config_warns_but_succeeds(project: Project):
    project.configure(file_settings({"type": "file", "path": "/r", "sync-intervall": "1s"}))
    result = project.run("litestream", "config")
    assert result.returncode == 0
    assert result.stderr == (
        "Warning: LITESTREAM['dbs'][0]['replica']['sync-intervall'] is not a Litestream 0.5 "
        "setting; Litestream would silently ignore it. Hint: Did you mean 'sync-interval'? "
        "(django_litestream.W001)\n"
    )
    assert yaml.safe_load(result.stdout)["dbs"][0]["replica"]["sync-intervall"] == "1s"


def test_literal_secret_with_yaml_characters_reaches_litestream_parseable(project: Project):
    """Litestream expands variables in the YAML text; the secret must not break the parse."""
    secret = "@dm1n: *x$HOME"
    project.configure(
        file_settings(
            {"type": "sftp", "host": "127.0.0.1:1", "user": "u", "path": "/x", "password": secret}
        )
    )
    result = project.run("litestream", "databases")
    assert (result.returncode, result.stderr) == (0, "")
    assert re.search(rf"^{re.escape(str(project.db))}\s+sftp$", result.stdout, re.MULTILINE)
    assert secret not in project.run("litestream", "config").stdout


# -- bad inputs: exact message and exit code ------------------------------------------

FILE_REP = {"type": "file", "path": "/tmp/unused-replica"}
OK = file_settings(FILE_REP)
HINT = "Run 'python manage.py litestream --help' for the list."

BAD_INPUTS = [
    # id, LITESTREAM, DATABASES (None: default), argv, rc, message
    (
        "unknown-command",
        OK,
        None,
        ["replicat"],
        2,
        f"Unknown Litestream command 'replicat'. Did you mean 'replicate'? {HINT}",
    ),
    (
        "unknown-command-no-suggestion",
        OK,
        None,
        ["xyzzy"],
        2,
        f"Unknown Litestream command 'xyzzy'. {HINT}",
    ),
    (
        "removed-0.3-command",
        OK,
        None,
        ["generations"],
        2,
        "'generations' is a command of Litestream 0.3: Litestream 0.5 has no generations: "
        "'python manage.py litestream ltx DB' lists the replica's LTX files.",
    ),
    (
        "no-command",
        OK,
        None,
        [],
        2,
        "Give a command, e.g. 'python manage.py litestream databases'.",
    ),
    (
        "config-extra-arg",
        OK,
        None,
        ["config", "extra-arg"],
        2,
        "'litestream config' takes no arguments (got extra-arg); 'python manage.py "
        "litestream config -h' says what it prints.",
    ),
    (
        "litestream-not-dict",
        "['default']",
        None,
        ["databases"],
        78,
        "LITESTREAM must be a dict, not list. "
        "Hint: write LITESTREAM = {'dbs': [{'path': 'default'}]}.",
    ),
    (
        "dbs-not-list",
        {"dbs": {"path": "default"}},
        None,
        ["databases"],
        78,
        "LITESTREAM['dbs'] must be a list, not dict. Hint: write 'dbs': [{'path': 'default'}].",
    ),
    (
        "db-not-dict",
        {"dbs": [None]},
        None,
        ["databases"],
        78,
        "LITESTREAM['dbs'][0] must be a dict, not NoneType. Hint: write {'path': 'default'}.",
    ),
    (
        "db-without-path",
        {"dbs": [{"replica": FILE_REP}]},
        None,
        ["restore", "default"],
        78,
        "LITESTREAM['dbs'][0] has no 'path'. Hint: add 'path': a DATABASES alias such as "
        "'default', or a file path.",
    ),
    (
        "replica-not-dict",
        {"dbs": [{"path": "default", "replica": ["s3"]}]},
        None,
        ["databases"],
        78,
        "LITESTREAM['dbs'][0]['replica'] must be a dict, not list. "
        "Hint: write {'type': 's3', 'bucket': '...', 'path': '...'}.",
    ),
    (
        "two-replicas",
        {"dbs": [{"path": "default", "replicas": [FILE_REP, FILE_REP]}]},
        None,
        ["replicate"],
        78,
        "LITESTREAM['dbs'][0]['replicas'] lists 2 replicas; Litestream 0.5 replicates each "
        "database to exactly one. Hint: replace 'replicas': [...] with one 'replica': {...}.",
    ),
    (
        "bin-path-int",
        {"bin_path": 7, "dbs": []},
        None,
        ["version"],
        78,
        "LITESTREAM['bin_path'] has the wrong type (int). "
        "Hint: see the 'bin_path' setting in the django-litestream docs.",
    ),
    (
        "unknown-alias",
        {"dbs": [{"path": "defualt", "replica": FILE_REP}]},
        None,
        ["databases"],
        78,
        "LITESTREAM['dbs'][0]['path'] is 'defualt', which is not an alias in DATABASES "
        "(aliases: 'default'). Hint: Did you mean 'default'? Use a DATABASES alias or an "
        "absolute file path.",
    ),
    (
        "non-sqlite",
        {"dbs": [{"path": "pg", "replica": FILE_REP}]},
        {
            "default": {"ENGINE": SQLITE, "NAME": "db.sqlite3"},
            "pg": {"ENGINE": "django.db.backends.postgresql", "NAME": "app"},
        },
        ["restore", "pg"],
        78,
        "LITESTREAM['dbs'][0]['path'] names the database alias 'pg', whose ENGINE "
        "'django.db.backends.postgresql' is not SQLite. Hint: Litestream replicates only "
        "SQLite; remove this entry or point it at a SQLite database.",
    ),
    (
        "in-memory",
        {"dbs": [{"path": "default", "replica": FILE_REP}]},
        {"default": {"ENGINE": SQLITE, "NAME": ":memory:"}},
        ["replicate"],
        78,
        "LITESTREAM['dbs'][0]['path'] names the database alias 'default', which is an "
        "in-memory SQLite database and has no file to replicate. "
        "Hint: set DATABASES['default']['NAME'] to a file path.",
    ),
    (
        "missing-bucket-restore",
        {"dbs": [{"path": "default"}]},
        None,
        ["restore", "default"],
        78,
        "LITESTREAM['dbs'][0] has no 'replica', so it replicates to the S3 bucket named by "
        "$LITESTREAM_REPLICA_BUCKET (or $AWS_BUCKET), and neither is set. Hint: export "
        "LITESTREAM_REPLICA_BUCKET=your-bucket, or give the database a 'replica' (for example "
        "{'type': 'file', 'path': '/var/backups/db'}). (django_litestream.E006)",
    ),
    (
        "missing-bucket-replicate",
        {"dbs": [{"path": "default"}]},
        None,
        ["replicate", "-once"],
        78,
        "LITESTREAM['dbs'][0] has no 'replica', so it replicates to the S3 bucket named by "
        "$LITESTREAM_REPLICA_BUCKET (or $AWS_BUCKET), and neither is set. Hint: export "
        "LITESTREAM_REPLICA_BUCKET=your-bucket, or give the database a 'replica' (for example "
        "{'type': 'file', 'path': '/var/backups/db'}). (django_litestream.E006)",
    ),
    (
        "bin-path-not-executable",
        {"bin_path": "{root}/manage.py", "dbs": []},
        None,
        ["version"],
        78,  # a setting to correct (E005), not a program to install (127)
        "LITESTREAM['bin_path'] is {root}/manage.py, which is not an executable file. "
        "Hint: Run 'chmod +x {root}/manage.py', or point bin_path at the litestream executable.",
    ),
    (
        "bin-path-directory",
        {"bin_path": "{root}", "dbs": []},
        None,
        ["databases"],
        78,
        "LITESTREAM['bin_path'] is {root}, a directory, not the litestream executable. "
        "Hint: Point bin_path at the litestream executable inside.",
    ),
]


@pytest.mark.parametrize(
    "litestream, databases, argv, rc, message",
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input(project: Project, litestream, databases, argv, rc, message):
    root = str(project.root)
    if isinstance(litestream, dict) and isinstance(litestream.get("bin_path"), str):
        litestream = {**litestream, "bin_path": litestream["bin_path"].format(root=root)}
    for name in BUCKET_VARS:
        project.env.pop(name, None)
    project.configure(litestream, databases)
    result = project.run("litestream", *argv)
    assert (result.returncode, result.stderr) == (
        rc,
        f"CommandError: {message.replace('{root}', root)}\n",
    )
    assert "Traceback" not in result.stdout


def test_missing_bucket_config_warns_and_databases_refuses_in_our_words(project: Project):
    """An E-check is an error wherever it is shown (issue 11, item 5): 'config' (which hands
    nothing to Litestream) warns with W009; 'databases' refuses with E006 before Litestream
    starts, instead of Litestream's raw 'bucket required for s3 replica'."""
    for name in BUCKET_VARS:
        project.env.pop(name, None)
    project.configure({"dbs": [{"path": "default"}]})
    result = project.run("litestream", "config")
    assert result.returncode == 0, result.stderr
    (warning,) = result.stderr.splitlines()
    assert warning.startswith("Warning: LITESTREAM['dbs'][0] has no 'replica'")
    assert warning.endswith("(django_litestream.W009)")
    assert "E006" not in warning.split("(django_litestream.E006, also")[0]
    result = project.run("litestream", "databases")
    assert result.returncode == 78
    assert result.stderr == (
        "CommandError: LITESTREAM['dbs'][0] has no 'replica', so it replicates to the S3 "
        "bucket named by $LITESTREAM_REPLICA_BUCKET (or $AWS_BUCKET), and neither is set. "
        "Hint: export LITESTREAM_REPLICA_BUCKET=your-bucket, or give the database a "
        "'replica' (for example {'type': 'file', 'path': '/var/backups/db'}). "
        "(django_litestream.E006)\n"
    )
    assert "bucket required" not in result.stdout + result.stderr
    result = project.run("litestream", "databases", env={"AWS_BUCKET": "b"})
    assert (result.returncode, result.stderr) == (0, "")
    assert str(project.db) in result.stdout


def test_help_needs_no_complete_configuration(project: Project):
    """'replicate -h' shows the binary's help even before the bucket variable is set."""
    for name in BUCKET_VARS:
        project.env.pop(name, None)
    project.configure({"dbs": [{"path": "default"}]})
    for flag in ("-h", "-help", "--help"):
        result = project.run("litestream", "replicate", flag)
        assert result.returncode == 0, result.stderr
        assert "Usage:" in result.stdout + result.stderr
        assert "E006" not in result.stderr
    # "-h" after the positional arguments is not a help flag for Go; the config is needed.
    result = project.run("litestream", "restore", "-o", "/tmp/x.db", "default", "-h")
    assert result.returncode == 78, result.stderr
    assert "(django_litestream.E006)" in result.stderr


# -- the subcommand table against the pinned binary ----------------------------------


def binary_help(*args: str) -> str:
    proc = subprocess.run([LITESTREAM, *args, "-h"], capture_output=True, text=True, timeout=30)
    return proc.stdout + proc.stderr


def test_command_table_matches_binary():
    top = binary_help()
    section = top.split("The commands are:", 1)[1]
    listed = set(re.findall(r"^\t(\w+)\s{2,}", section, re.MULTILINE))
    assert "replicate" in listed and "restore" in listed  # the parse found the list
    assert listed <= subcommands.ALL, listed - subcommands.ALL
    # Everything in the table exists; the only unlisted one is the deprecated 'wal'.
    assert subcommands.ALL - listed == {"wal"}
    for command in sorted(subcommands.ALL):
        text = binary_help(command)
        assert "unknown command" not in text, command
        has_config = re.search(r"^\s+-config PATH$", text, re.MULTILINE) is not None
        has_socket = re.search(r"^\s+-socket PATH$", text, re.MULTILINE) is not None
        assert has_config == (command in subcommands.CONFIG), command
        assert has_socket == (command in subcommands.SOCKET), command
        assert (not (has_config or has_socket)) == (command in subcommands.PLAIN), command
    assert "unknown command" in binary_help("generations")  # the probe can say no


def test_command_summaries_are_the_binarys():
    """'manage.py litestream --help' shows the pinned binary's own line about each command."""
    section = binary_help().split("The commands are:", 1)[1]
    listed = dict(re.findall(r"^\t(\w+)\s{2,}(\S.*?)\s*$", section, re.MULTILINE))
    assert len(listed) == 14, listed
    assert set(subcommands.SUMMARIES) == subcommands.ALL
    assert {k: v for k, v in subcommands.SUMMARIES.items() if k != "wal"} == listed


def test_every_command_reachable_through_manage_py(project: Project):
    project.configure(file_settings(FILE_REP))
    result = project.run("litestream", "version")
    assert (result.returncode, result.stdout.strip()) == (0, "0.5.17")
    help_text = project.run("litestream", "--help").stdout
    for command in subcommands.ALL:
        line = rf"^  {command}\s+{re.escape(subcommands.SUMMARIES[command])}$"
        assert re.search(line, help_text, re.MULTILINE), command


# -- argument handling -----------------------------------------------------------------


def test_alias_substitution_and_exit_code_passthrough(project: Project, tmp_path):
    replica = tmp_path / "replica"
    project.configure(file_settings({"type": "file", "path": str(replica)}))
    out = tmp_path / "restored.db"
    # Empty replica: litestream's own error and exit code come through unchanged.
    result = project.run("litestream", "restore", "-o", str(out), "default")
    assert (result.returncode, result.stderr) == (1, "Error: no matching backup files available\n")
    assert not out.exists()

    write_rows(project.db, 25)
    result = project.run("litestream", "replicate", "-once")
    assert result.returncode == 0, result.stdout + result.stderr
    result = project.run("litestream", "restore", "-o", str(out), "default")
    assert result.returncode == 0, result.stdout + result.stderr
    assert count_rows(out) == 25
    # The alias works in other database-path positions too.
    result = project.run("litestream", "ltx", "-json", "default")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)
    result = project.run("litestream", "status", "-json", "default")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["database"] == str(project.db)


def test_alias_in_replicate_db_path_replica_url_form(project: Project, tmp_path):
    """'replicate DB_PATH REPLICA_URL' runs without the config; the alias still resolves."""
    project.configure({"dbs": []})
    write_rows(project.db, 12)
    url = f"file://{tmp_path / 'adhoc'}"
    result = project.run("litestream", "replicate", "-once", "default", url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"path={project.db}" in result.stdout
    assert not (project.root / "default").exists()
    out = tmp_path / "out.db"
    # REPLICA_URL forms of restore and ltx must not be handed the generated -config.
    result = project.run("litestream", "restore", "-o", str(out), url)
    assert result.returncode == 0, result.stderr
    assert count_rows(out) == 12
    result = project.run("litestream", "ltx", "-json", url)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)


def test_user_config_flag_is_respected(project: Project, tmp_path):
    project.configure(file_settings(FILE_REP))
    missing = tmp_path / "nope.yml"
    result = project.run("litestream", "databases", "-config", str(missing))
    assert (result.returncode, result.stderr) == (1, f"Error: config file not found: {missing}\n")


def test_no_expand_env(project: Project, tmp_path):
    literal = tmp_path / "rep$DL_SURELY_UNSET"
    expanded = tmp_path / "rep"
    project.env.pop("DL_SURELY_UNSET", None)
    project.configure(
        file_settings({"type": "file", "path": str(literal), "password": "literal-pass-9"})
    )
    write_rows(project.db, 5)
    result = project.run("litestream", "replicate", "-once", "-no-expand-env")
    assert result.returncode == 0, result.stdout + result.stderr
    assert replica_files(literal) and not expanded.exists()

    out = tmp_path / "out.db"
    result = project.run("litestream", "restore", "-no-expand-env", "-o", str(out), "default")
    assert result.returncode == 0, result.stderr
    assert count_rows(out) == 5

    # Without the flag Litestream expands "$DL_SURELY_UNSET" to "".
    result = project.run("litestream", "replicate", "-once")
    assert result.returncode == 0, result.stdout + result.stderr
    assert replica_files(expanded)


def test_socket_injected_for_socket_commands(project: Project, tmp_path):
    sockdir = short_tmpdir()
    try:
        sock = os.path.join(sockdir, "ls.sock")
        replica = tmp_path / "replica"
        project.configure(
            file_settings(
                {"type": "file", "path": str(replica)},
                # A string mode, as Python users write it: Litestream itself refuses strings.
                socket={"enabled": True, "path": sock, "permissions": "0640"},
            )
        )
        write_rows(project.db, 3)
        proc = project.spawn(
            "litestream", "replicate", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_for(lambda: os.path.exists(sock) or proc.poll() is not None, 20, "socket")
            assert proc.poll() is None
            assert stat.S_IMODE(os.stat(sock).st_mode) == 0o640
            result = project.run("litestream", "list", "-json")
            assert result.returncode == 0, result.stderr
            paths = [d["path"] for d in json.loads(result.stdout)["databases"]]
            assert paths == [str(project.db)]

            result = project.run("litestream", "info", "-json")
            assert result.returncode == 0, result.stderr
            assert json.loads(result.stdout)

            write_rows(project.db, 4)
            result = project.run("litestream", "sync", "-wait", "-json", "default")
            assert result.returncode == 0, result.stderr
            synced = json.loads(result.stdout)
            assert synced["txid"] == synced["replica_txid"] > 0

            # An explicit -socket wins over the settings.
            other = os.path.join(sockdir, "other.sock")
            result = project.run("litestream", "list", "-socket", other)
            assert result.returncode == 1
            assert other in result.stderr
        finally:
            assert stop(proc) == 0
    finally:
        shutil.rmtree(sockdir, ignore_errors=True)
    out = tmp_path / "out.db"
    assert project.run("litestream", "restore", "-o", str(out), "default").returncode == 0
    assert count_rows(out) == 7


# -- process handling: private config, signals, no leftovers ---------------------------

SECRET = "settings-secret-value-5e1"


def signal_project(project: Project, replica: Path) -> None:
    # sync-interval 1h: after the first upload, only the final (shutdown) sync ships rows.
    project.configure(
        file_settings(
            {"type": "file", "path": str(replica), "sync-interval": "1h"},
            **{"secret-access-key": SECRET},
        )
    )


def start_with_child(project: Project, tmp_path: Path, source: str = SIGNAL_CHILD):
    child = tmp_path / "child.py"
    child.write_text(source)
    marker = tmp_path / "child"
    exec_cmd = shlex.join([sys.executable, str(child), str(marker)])
    log = tmp_path / "manage.log"
    with open(log, "w") as out:  # the child keeps its own copy of the descriptor
        proc = project.spawn(
            "litestream", "replicate", "-exec", exec_cmd, stdout=out, stderr=subprocess.STDOUT
        )
    return proc, marker, log


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_forwarded_once_with_final_sync(project: Project, tmp_path, sig):
    replica = tmp_path / "replica"
    signal_project(project, replica)
    write_rows(project.db, 10)
    proc, marker, log = start_with_child(project, tmp_path)
    try:
        ready = Path(f"{marker}.ready")
        wait_for(lambda: ready.exists() or proc.poll() is not None, 20, "exec child")
        assert proc.poll() is None, log.read_text()
        child_pid = int(ready.read_text())
        [ls] = wait_for(lambda: litestream_procs(proc.pid), 10, "litestream process")
        config = config_arg(ls)

        # While litestream runs: private dir 0700, file 0600, no secret on disk or argv.
        assert stat.S_IMODE(os.stat(os.path.dirname(config)).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(config).st_mode) == 0o600
        text = Path(config).read_text()
        assert SECRET not in text and "$DJANGO_LITESTREAM_SECRET_0" in text
        for p in (ls, psutil.Process(child_pid)):
            assert not any(SECRET in arg for arg in p.cmdline())
        # The secret reaches litestream only through its environment (as a YAML scalar).
        assert json.loads(ls.environ()["DJANGO_LITESTREAM_SECRET_0"]) == SECRET
        # Litestream runs in its own process group, apart from manage.py's.
        assert os.getpgid(ls.pid) != os.getpgid(proc.pid)

        wait_for(lambda: replica_files(replica), 20, "first upload")
        write_rows(project.db, 7)
        # Like Ctrl-C in a terminal: the signal goes to manage.py's whole process group.
        os.killpg(proc.pid, sig)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            stop(proc, timeout=10)  # TERM first, so the private dir is removed
    output = log.read_text()
    assert rc == 0, output
    assert Path(f"{marker}.count").read_text().split() == [str(int(sig))]
    assert output.count("signal received, litestream shutting down") == 1, output
    assert "shutdown sync skipped" not in output
    assert not os.path.exists(os.path.dirname(config))
    assert gone(ls) and not psutil.pid_exists(child_pid)
    assert litestreams_in(project.root) == set()

    # The final sync shipped the rows written just before the signal.
    out = tmp_path / "out.db"
    result = project.run("litestream", "restore", "-o", str(out), "default")
    assert result.returncode == 0, result.stderr
    assert count_rows(out) == 17


def test_repeated_signals_are_not_forwarded(project: Project, tmp_path):
    """A second Ctrl-C is not passed on (it would make Litestream skip its final sync)."""
    replica = tmp_path / "replica"
    signal_project(project, replica)
    write_rows(project.db, 10)
    proc, marker, log = start_with_child(project, tmp_path, STUBBORN_CHILD)
    count = Path(f"{marker}.count")
    try:
        ready = Path(f"{marker}.ready")
        wait_for(lambda: ready.exists() or proc.poll() is not None, 20, "exec child")
        assert proc.poll() is None
        child_pid = int(ready.read_text())
        wait_for(lambda: replica_files(replica), 20, "first upload")
        write_rows(project.db, 5)
        os.killpg(proc.pid, signal.SIGINT)
        wait_for(count.exists, 20, "first signal at the child")
        os.killpg(proc.pid, signal.SIGINT)
        wait_for(
            lambda: "signal again to kill it" in log.read_text(),
            20,
            "manage.py to decline forwarding the second signal",
        )
        assert count.read_text().split() == [str(int(signal.SIGINT))]
        os.kill(child_pid, signal.SIGUSR1)  # the child finishes on its own terms
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            stop(proc, timeout=10)  # TERM first, so the private dir is removed
    output = log.read_text()
    assert rc == 0, output
    assert count.read_text().split() == [str(int(signal.SIGINT))]
    assert output.count("signal received, litestream shutting down") == 1, output
    assert "shutdown sync skipped" not in output
    assert litestreams_in(project.root) == set()
    out = tmp_path / "out.db"
    assert project.run("litestream", "restore", "-o", str(out), "default").returncode == 0
    assert count_rows(out) == 15


def test_private_dir_removed_after_normal_exit(project: Project, tmp_path):
    """The -exec child exits by itself; litestream and its config dir are gone after."""
    replica = tmp_path / "replica"
    signal_project(project, replica)
    write_rows(project.db, 2)
    script = tmp_path / "probe.py"
    script.write_text(
        "import os, sys\n"
        "argv = open(f'/proc/{os.getppid()}/cmdline', 'rb').read().split(b'\\0')\n"
        "config = argv[argv.index(b'-config') + 1].decode()\n"
        "open(sys.argv[1], 'w').write(config + '\\n' + str(os.getppid()))\n"
    )
    record = tmp_path / "record"
    result = project.run(
        "litestream", "replicate", "-exec", shlex.join([sys.executable, str(script), str(record)])
    )
    assert result.returncode == 0, result.stdout + result.stderr
    config, ls_pid = record.read_text().split("\n")
    assert config.endswith("/litestream.yml")
    assert not os.path.exists(os.path.dirname(config))
    assert not psutil.pid_exists(int(ls_pid))
    assert litestreams_in(project.root) == set()


def test_exec_child_failure_status(project: Project, tmp_path):
    signal_project(project, tmp_path / "replica")
    write_rows(project.db, 1)
    result = project.run(
        "litestream",
        "replicate",
        "-exec",
        shlex.join([sys.executable, "-c", "import sys; sys.exit(3)"]),
    )
    # Litestream reports any failing child as 1 ("Error: exit status 3").
    assert result.returncode == 1
    assert "exit status 3" in result.stdout + result.stderr


def test_sigkill_of_manage_py_does_not_orphan_litestream(project: Project, tmp_path):
    replica = tmp_path / "replica"
    project.configure(file_settings({"type": "file", "path": str(replica)}))
    write_rows(project.db, 2)
    proc = project.spawn(
        "litestream", "replicate", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    config_dir = None
    try:
        [ls] = wait_for(lambda: litestream_procs(proc.pid), 20, "litestream process")
        config_dir = os.path.dirname(config_arg(ls))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        wait_for(lambda: gone(ls), 20, "litestream to exit after manage.py died")
    finally:
        if proc.poll() is None:
            stop(proc, signal.SIGKILL)
        # SIGKILL gives manage.py no chance to remove its private dir; tidy up here.
        if config_dir:
            shutil.rmtree(config_dir, ignore_errors=True)
