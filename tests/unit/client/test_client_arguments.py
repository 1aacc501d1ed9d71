"""certrotor-fetch's command line and the mapping of failures to exit codes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from botocore.exceptions import NoCredentialsError

from certrotor.client.entrypoint import (
    EXIT_AWS,
    EXIT_FILES,
    EXIT_REFUSED,
    EXIT_SOFTWARE,
    EXIT_USAGE,
    UsageError,
    exit_code_for,
    main,
    parse_args,
    parse_duration,
)
from certrotor.client.files import MaterialDirectoryError
from certrotor.errors import (
    AwsError,
    BundleError,
    DeadlineError,
    IntegrityError,
    NotFoundError,
    NotIssuedError,
    PolicyError,
)


def test_options_come_before_the_double_dash_and_the_command_after_it():
    # Given / When
    args = parse_args(["--set", "tls/orders", "--dir", "/tmp/x", "--", "nginx", "-g", "daemon off;"])
    # Then
    assert args.set_name == "tls/orders"
    assert args.directory == Path("/tmp/x")
    assert args.command == ("nginx", "-g", "daemon off;")


def test_options_after_the_double_dash_belong_to_the_command():
    # Given / When
    args = parse_args(["--set", "tls/orders", "--", "server", "--set", "other", "--verbose"])
    # Then
    assert args.command == ("server", "--set", "other", "--verbose")
    assert args.verbose is False


def test_without_a_double_dash_there_is_no_command():
    # Given / When
    args = parse_args(["--set", "tls/orders"])
    # Then
    assert args.command == ()


def test_defaults_are_run_certrotor_sixty_seconds_and_no_minimum_validity():
    # Given / When
    args = parse_args(["--set", "tls/orders"])
    # Then
    assert (args.directory, args.deadline, args.min_valid) == (Path("/run/certrotor"), 60.0, dt.timedelta(0))
    assert (args.ca_file, args.combined, args.pkcs12, args.from_env) == (None, False, False, False)


def test_every_option_is_read():
    # Given / When
    args = parse_args(
        [
            "--set=tls/orders",
            "--ca-file",
            "root.pem",
            "--combined",
            "--pkcs12",
            "--pkcs12-password-file",
            "pw",
            "--deadline",
            "2.5",
            "--min-valid",
            "1h",
            "--from-env",
            "-v",
        ]
    )
    # Then
    assert args.ca_file == Path("root.pem")
    assert args.pkcs12_password_file == Path("pw")
    assert (args.combined, args.pkcs12, args.from_env, args.verbose) == (True, True, True, True)
    assert (args.deadline, args.min_valid) == (2.5, dt.timedelta(hours=1))


def test_the_set_is_required():
    # Given / When / Then
    with pytest.raises(UsageError, match="--set"):
        parse_args(["--dir", "/tmp/x"])


def test_a_command_without_a_double_dash_is_refused():
    # Given / When / Then
    with pytest.raises(UsageError, match="unrecognized arguments: nginx"):
        parse_args(["--set", "tls/orders", "nginx"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", dt.timedelta(0)),
        ("90", dt.timedelta(seconds=90)),
        ("90s", dt.timedelta(seconds=90)),
        ("30m", dt.timedelta(minutes=30)),
        ("1h", dt.timedelta(hours=1)),
        ("2d", dt.timedelta(days=2)),
    ],
)
def test_durations_are_read_in_seconds_minutes_hours_or_days(text, expected):
    # Given / When / Then
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "1w", "-1h", "1.5h", "h", "1 h"])
def test_a_malformed_duration_is_refused(text):
    # Given / When / Then
    with pytest.raises(UsageError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize("deadline", ["0", "-1", "abc", "3601"])
def test_a_deadline_that_is_not_a_positive_number_of_seconds_is_refused(deadline):
    # Given / When / Then
    with pytest.raises(UsageError, match="--deadline"):
        parse_args(["--set", "tls/orders", "--deadline", deadline])


def test_a_pkcs12_password_file_without_pkcs12_is_refused():
    # Given / When / Then
    with pytest.raises(UsageError, match="--pkcs12-password-file needs --pkcs12"):
        parse_args(["--set", "tls/orders", "--pkcs12-password-file", "pw"])


def test_bad_arguments_exit_64_with_one_line_on_stderr(capsys):
    # Given / When
    code = main(["--dir", "/tmp/x"])
    # Then
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert err.count("\n") == 1
    assert err.startswith("certrotor-fetch: ")


def test_an_unreadable_ca_file_exits_64_before_anything_is_fetched(tmp_path, capsys):
    # Given a CA file that does not exist (and no AWS to reach)
    missing = tmp_path / "root.pem"
    # When
    code = main(["--set", "tls/orders", "--dir", str(tmp_path / "tls"), "--ca-file", str(missing), "--from-env"])
    # Then
    assert code == EXIT_USAGE
    assert f"--ca-file {missing}: No such file or directory" in capsys.readouterr().err
    assert not (tmp_path / "tls").exists()


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (IntegrityError("part x does not match"), EXIT_REFUSED),
        (NotIssuedError("not issued"), EXIT_REFUSED),
        (BundleError("expired"), EXIT_REFUSED),
        (PolicyError("names"), EXIT_REFUSED),
        (AwsError("AccessDenied"), EXIT_AWS),
        (NotFoundError("no such secret"), EXIT_AWS),
        (DeadlineError("gave up"), EXIT_AWS),
        (NoCredentialsError(), EXIT_AWS),
        (MaterialDirectoryError("mode 0755"), EXIT_FILES),
        (UsageError("bad"), EXIT_USAGE),
        (RuntimeError("bug"), EXIT_SOFTWARE),
    ],
)
def test_each_kind_of_failure_has_its_exit_code(error, code):
    # Given / When / Then
    assert exit_code_for(error) == code
