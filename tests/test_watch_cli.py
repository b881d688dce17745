"""``tbreport watch`` in its own process, against writers in other processes."""

from __future__ import annotations

import json
import signal

import pytest
from reader_helpers import event_file_name, scalar_series
from watch_helpers import start_watch, start_writer, stop, wait_for

from tbreport import testing
from tbreport.model import Finding, Severity

pytestmark = pytest.mark.timeout(90)
INTERVAL = 0.2
NAN_STEP = 25
FINDING_KEYS = set(Finding("r", "c", "n", Severity.INFO, "m").to_dict()) | {"wall_time"}


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_nan_run_is_reported_within_two_polls_and_fail_on_error_exits_1(tmp_path):
    marker = tmp_path / "nan-written"
    writer = start_writer(
        tmp_path / "runs" / "exp",
        *("--steps", "200", "--nan-at", str(NAN_STEP), "--delay", "0.02"),
        *("--marker", str(marker)),
    )
    healthy = start_writer(tmp_path / "runs" / "ok", "--steps", "200", "--delay", "0.02")
    watch = start_watch(
        str(tmp_path / "runs"),
        "--interval",
        str(INTERVAL),
        "--format",
        "json",
        "--fail-on",
        "error",
    )
    try:
        out, err = watch.communicate(timeout=60)
        assert watch.returncode == 1, err
        (finding,) = _json_lines(out)
        assert set(finding) == FINDING_KEYS
        assert (finding["run"], finding["code"], finding["severity"], finding["step"]) == (
            "exp",
            "L104",
            "error",
            NAN_STEP,
        )
        # Detected within two polls of the NaN reaching the disk (plus a poll's own cost).
        assert finding["wall_time"] - float(marker.read_text()) < 2 * INTERVAL + 1.0
        assert "1 finding(s) reported (1 error" in err
    finally:
        for process in (writer, healthy, watch):
            stop(process)


def test_healthy_run_gives_no_finding_and_until_idle_exits_0(tmp_path):
    writer = start_writer(tmp_path / "exp", "--steps", "50", "--delay", "0.01")
    watch = start_watch(
        str(tmp_path),
        "--interval",
        "0.1",
        "--until-idle",
        "0.6",
        "--format",
        "json",
        "--fail-on",
        "info",
    )
    try:
        out, err = watch.communicate(timeout=60)
        assert watch.returncode == 0, err
        assert out == ""
        assert "0 finding(s) reported" in err
    finally:
        stop(writer)
        stop(watch)


def test_run_directory_created_mid_watch_is_picked_up(tmp_path):
    # A healthy run is there from the start: the --html report it gets shows when watch has
    # polled, so the late run is created only after that.
    logdir = tmp_path / "runs"
    testing.write_events(
        logdir / "early" / event_file_name(0),
        [testing.file_version_event(), *scalar_series("train/loss", range(10))],
    )
    html = tmp_path / "live.html"
    watch = start_watch(str(logdir), "--interval", "0.1", "--format", "json", "--html", str(html))
    writer = None
    try:
        wait_for(html.exists)
        writer = start_writer(logdir / "late" / "run", "--steps", "100", "--nan-at", "5")
        out, err = watch.communicate(timeout=60)
        assert watch.returncode == 1, err
        assert [(f["run"], f["code"]) for f in _json_lines(out)] == [("late/run", "L104")]
    finally:
        stop(watch)
        if writer is not None:
            stop(writer)


def test_file_being_written_is_never_called_damaged(tmp_path):
    # Each record is written in two halves 30 ms apart; polls every 20 ms see half records.
    writer = start_writer(tmp_path / "exp", "--steps", "20", "--split", "0.03", "--delay", "0")
    watch = start_watch(
        str(tmp_path),
        "--interval",
        "0.02",
        "--until-idle",
        "0.5",
        "--select",
        "D9",
        "--fail-on",
        "info",
        "--format",
        "json",
    )
    try:
        out, err = watch.communicate(timeout=60)
        assert watch.returncode == 0, err
        assert out == ""
        assert "truncated" not in err
    finally:
        stop(writer)
        stop(watch)


def test_truncated_and_rewritten_file_is_read_again(tmp_path):
    path = tmp_path / "runs" / "exp" / event_file_name(0)
    testing.write_events(path, [testing.file_version_event(), *scalar_series("loss", range(40))])
    html = tmp_path / "live.html"  # written after the first poll: the file has been read
    watch = start_watch(
        str(tmp_path / "runs"), "--interval", "0.1", "--format", "json", "--html", str(html)
    )
    try:
        wait_for(html.exists)
        events = [testing.file_version_event(), *scalar_series("loss", range(5))]
        events += scalar_series("loss", range(5, 8), value=lambda s: float("inf"))
        with open(path, "r+b") as out:
            out.truncate(0)
            out.write(b"".join(testing.frame(e.SerializeToString()) for e in events))
        out, err = watch.communicate(timeout=60)
        assert watch.returncode == 1, err
        assert "[reread]" in err
        assert "shrank" in err
        assert [(f["code"], f["step"]) for f in _json_lines(out)] == [("L104", 5)]
    finally:
        stop(watch)


def test_ctrl_c_prints_a_summary_and_exits_0(tmp_path):
    testing.write_events(
        tmp_path / "runs" / "exp" / event_file_name(0),
        [testing.file_version_event(), *scalar_series("train/loss", range(40))],
    )
    html = tmp_path / "live.html"  # written after the first poll: the run has been read
    watch = start_watch(str(tmp_path / "runs"), "--interval", "0.1", "--html", str(html))
    try:
        wait_for(html.exists)
        watch.send_signal(signal.SIGINT)
        out, err = watch.communicate(timeout=30)
        assert watch.returncode == 0, err
        assert "1 run(s) watched" in out
        assert "0 finding(s) reported" in out
        assert "Traceback" not in err
    finally:
        stop(watch)


def test_html_report_is_rewritten_when_findings_change(tmp_path):
    path = tmp_path / "runs" / "exp" / event_file_name(0)
    testing.write_events(
        path, [testing.file_version_event(), *scalar_series("train/loss", range(40))]
    )
    html = tmp_path / "live.html"
    watch = start_watch(
        str(tmp_path / "runs"), "--interval", "0.1", "--html", str(html), "--fail-on", "never"
    )
    try:
        wait_for(html.exists)
        assert "non-finite-loss" not in html.read_text()
        with open(path, "ab") as out:
            nan = scalar_series("train/loss", range(40, 45), value=lambda s: float("nan"))
            out.write(b"".join(testing.frame(e.SerializeToString()) for e in nan))
        wait_for(lambda: "non-finite-loss" in html.read_text(), timeout=30)
        assert watch.poll() is None  # --fail-on never: still watching
        assert not list(tmp_path.glob("*.tmp*"))  # written atomically, nothing left behind
    finally:
        watch.send_signal(signal.SIGINT)
        watch.communicate(timeout=30)
        stop(watch)


def test_text_output_escapes_control_characters_from_event_files(tmp_path):
    events = [testing.file_version_event(), *scalar_series("train/loss", range(5))]
    events += scalar_series("train/loss", range(5, 7), value=lambda s: float("nan"))
    testing.write_events(tmp_path / "evil\x1b[2J" / event_file_name(0), events)
    watch = start_watch(str(tmp_path), "--interval", "0.1")
    out, _err = watch.communicate(timeout=60)
    assert watch.returncode == 1
    assert "evil\\x1b[2J" in out
    assert "\x1b" not in out
    assert "L104 error   non-finite-loss (step 5)" in out


def test_usage_errors_exit_2_with_a_message(tmp_path):
    not_events = tmp_path / "notes.txt"
    not_events.write_text("hello")
    watch = start_watch(str(not_events), "--until-idle", "0")
    _, err = watch.communicate(timeout=60)
    assert watch.returncode == 2
    assert "error:" in err
    assert "Traceback" not in err
    (tmp_path / "runs").mkdir()
    watch = start_watch(str(tmp_path / "runs"), "--html", str(not_events), "--until-idle", "0")
    _, err = watch.communicate(timeout=60)
    assert watch.returncode == 2
    assert "--force" in err


def test_json_lines_stay_strict_json_and_terminal_text_is_escaped():
    from tbreport.cli.watch import _json_line, terminal_safe

    finding = Finding("r", "L104", "n", Severity.ERROR, "m", evidence={"last": float("nan")})
    item = json.loads(_json_line(finding, 12.5))
    assert item["evidence"] == {"last": "nan"}
    assert item["wall_time"] == 12.5
    assert terminal_safe("a\x1b[31mb\x07\u202ec\x9b") == "a\\x1b[31mb\\x07\\u202ec\\x9b"
    assert terminal_safe("ünïcode/ok") == "ünïcode/ok"
