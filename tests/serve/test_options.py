"""serve's options: the command line over LITESTREAM["serve"], and each bad value's message."""

from __future__ import annotations

import pytest

from django_litestream.errors import ConfigurationError, UsageError
from django_litestream.serve import options


def test_defaults() -> None:
    opts = options.parse([], {})
    assert opts == options.ServeOptions()
    assert opts.replica_check_interval == 30.0


def test_command_line_wins_over_the_setting() -> None:
    opts = options.parse(
        ["--graceful-timeout", "5", "--replica-check-interval", "0", "--", "gunicorn", "x"],
        {"graceful_timeout": 20, "replica_check_interval": 10, "command": "uvicorn y"},
    )
    assert (opts.graceful_timeout, opts.replica_check_interval) == (5.0, 0.0)
    assert opts.command == ("gunicorn", "x")


def test_wait_for_replica_from_either_place() -> None:
    assert not options.parse([], {}).wait_for_replica
    assert options.parse(["--wait-for-replica"], {}).wait_for_replica
    assert options.parse([], {"wait_for_replica": True}).wait_for_replica


def test_settings_apply_without_the_command_line() -> None:
    opts = options.parse(
        [], {"replica_check_interval": 0, "pre": ["python manage.py migrate"], "command": "a b"}
    )
    assert opts.replica_check_interval == 0.0
    assert opts.pre == (("python", "manage.py", "migrate"),)
    assert opts.command == ("a", "b")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--ready-timeout", "0"],
            "serve: --ready-timeout must be a positive number of seconds, at most 604800 "
            "(a week), not 0.",
        ),
        (
            ["--replica-check-interval", "-1"],
            "serve: --replica-check-interval must be 0 (off) or a number of seconds, at most "
            "604800 (a week), not -1.",
        ),
        # Accepted before: nan compares false with everything, so no check ever failed.
        (
            ["--ready-timeout", "nan"],
            "serve: --ready-timeout must be a positive number of seconds, at most 604800 "
            "(a week), not nan.",
        ),
        (
            ["--graceful-timeout", "nan"],
            "serve: --graceful-timeout must be a positive number of seconds, at most 604800 "
            "(a week), not nan.",
        ),
        (
            ["--ready-timeout", "inf"],
            "serve: --ready-timeout must be a positive number of seconds, at most 604800 "
            "(a week), not inf.",
        ),
        (
            ["--restore-timeout", "1e308"],
            "serve: --restore-timeout must be a positive number of seconds, at most 604800 "
            "(a week), not 1e+308.",
        ),
        (
            ["--replica-check-interval", "nan"],
            "serve: --replica-check-interval must be 0 (off) or a number of seconds, at most "
            "604800 (a week), not nan.",
        ),
        (
            ["--pre", "python manage.py migrate --noinput'"],
            'serve: --pre "python manage.py migrate --noinput\'" cannot be split into a '
            "command: no closing quotation. Close the quote, or give the command as a list "
            "of strings.",
        ),
        (
            ["--umask", "999"],
            "serve: --umask must be an octal umask such as 077, not '999'.",
        ),
        (
            ["--graceful-timeout", "soon"],
            "serve: argument --graceful-timeout: invalid float value: 'soon'. "
            "Run 'python manage.py litestream serve --help'.",
        ),
    ],
)
def test_bad_command_line_values(args: list[str], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        options.parse(args, {})
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            {"ready_timeout": 0},
            "LITESTREAM['serve']['ready_timeout'] must be a positive number of seconds, at "
            "most 604800 (a week), not 0.",
        ),
        (
            {"graceful_timeout": float("nan")},
            "LITESTREAM['serve']['graceful_timeout'] must be a positive number of seconds, at "
            "most 604800 (a week), not nan.",
        ),
        (
            {"restore_timeout": 1e308},
            "LITESTREAM['serve']['restore_timeout'] must be a positive number of seconds, at "
            "most 604800 (a week), not 1e+308.",
        ),
        (
            {"replica_check_interval": -5},
            "LITESTREAM['serve']['replica_check_interval'] must be a number of seconds "
            "(0 = off), at most 604800 (a week), not -5.",
        ),
        (
            {"replica_check_interval": True},
            "LITESTREAM['serve']['replica_check_interval'] must be a number of seconds "
            "(0 = off), at most 604800 (a week), not True.",
        ),
        (
            {"command": 'gunicorn "mysite.wsgi'},
            "LITESTREAM['serve']['command'] 'gunicorn \"mysite.wsgi' cannot be split into a "
            "command: no closing quotation. Close the quote, or give the command as a list "
            "of strings.",
        ),
        (
            {"pre": ["python manage.py migrate '--noinput"]},
            "LITESTREAM['serve']['pre'][0] \"python manage.py migrate '--noinput\" cannot be "
            "split into a command: no closing quotation. Close the quote, or give the "
            "command as a list of strings.",
        ),
        (
            {"umask": "0o1777"},
            "LITESTREAM['serve']['umask'] must be an octal umask such as 0o077 or '077', "
            "not '0o1777'.",
        ),
        (
            {"require_replica": "yes"},
            "LITESTREAM['serve']['require_replica'] must be True or False, not 'yes'.",
        ),
        (
            {"graceful_timout": 3},
            "LITESTREAM['serve'] has unknown key(s) 'graceful_timout'. Did you mean "
            "'graceful_timeout'? Known keys: adopt_local, alert_webhook, boot_after_restore, "
            "command, graceful_timeout, pre, ready_timeout, replica_check_interval, "
            "require_replica, restore_over_local, restore_timeout, umask, verbose, "
            "wait_for_replica.",
        ),
    ],
)
def test_bad_settings(setting: dict, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        options.parse([], setting)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("given", "mask"), [("022", 0o022), ("0o027", 0o027), ("0", 0), (0o007, 0o007), ("77", 0o077)]
)
def test_umask_forms(given, mask) -> None:
    assert options.parse([], {"umask": given}).umask == mask
    if isinstance(given, str):
        assert options.parse(["--umask", given], {}).umask == mask


def test_umask_default_is_private() -> None:
    assert options.parse([], {}).umask == 0o077
