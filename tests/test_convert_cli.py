"""`foveate convert` through the real CLI: skipped records are warned about and counted, empty or
malformed files are one-line errors, `--strict` turns any skip into an error."""

import json
import subprocess
import sys


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "foveate.cli", "convert", *map(str, args)], capture_output=True, text=True, timeout=120
    )


def _needle(video, answer):
    return {
        "video": video,
        "duration": 467,
        "question": "What does the hand coming out of the computer do?",
        "candidates": ["Delivers a product", "Shakes the woman's hand", "Takes the credit card", "Points"],
        "answer": answer,
        "question_type": "needle",
    }


def _mlvu_file(tmp_path):
    path = tmp_path / "2_needle.json"
    path.write_text(json.dumps([_needle("needle_1.mp4", "Points"), _needle("needle_2.mp4", "Waves [goodbye]")]))
    return path


def test_a_bad_record_is_skipped_warned_about_and_counted(tmp_path):
    ann, out = _mlvu_file(tmp_path), tmp_path / "m.jsonl"
    r = run("mlvu", ann, "--videos", tmp_path / "video", "--out", out)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert (
        f"{ann}: record 1 (video needle_2.mp4): the answer 'Waves [goodbye]' is not one of its candidates" in r.stderr
    )
    assert f"wrote 1 questions about 1 videos to {out} (1 skipped)" in r.stderr
    assert [json.loads(line)["answer"] for line in out.read_text().splitlines()] == ["D"]
    again = run("mlvu", ann, "--videos", tmp_path / "video", "--out", out, "--json")
    assert again.returncode == 1 and "exists; pass --force" in again.stderr and "Traceback" not in again.stderr
    r = run("mlvu", ann, "--videos", tmp_path / "video", "--out", out, "--json", "--force")
    summary = json.loads(r.stdout)
    assert (summary["questions"], summary["skipped"], len(summary["skipped_records"])) == (1, 1, 1)
    assert summary["skipped_records"][0]["record"] == "record 1 (video needle_2.mp4)"


def test_strict_makes_a_skip_an_error_and_writes_nothing(tmp_path):
    ann, out = _mlvu_file(tmp_path), tmp_path / "m.jsonl"
    r = run("mlvu", ann, "--videos", tmp_path, "--out", out, "--strict")
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"{ann}: record 1 (video needle_2.mp4)" in r.stderr and "--strict" in r.stderr
    assert not out.exists()


def test_values_that_used_to_raise_are_skips_not_tracebacks(tmp_path):
    rec = {
        "id": "v1_0",
        "video_path": "v1.mp4",
        "question": "What is shown?",
        "candidates": ["a cat", "a dog"],
        "correct_choice": 1,
    }
    ann = tmp_path / "lvb_val.json"
    ann.write_text(json.dumps([rec | {"duration": "190.16s"}, rec | {"id": "v1_1", "correct_choice": "B"}, rec]))
    r = run("longvideobench", ann, "--videos", tmp_path, "--out", tmp_path / "m.jsonl")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert f"{ann}: record 0 (id v1_0): duration '190.16s' is not a number" in r.stderr
    assert f"{ann}: record 1 (id v1_1): correct_choice 'B' is not an option index" in r.stderr
    assert "(2 skipped)" in r.stderr
    ann.write_text(json.dumps([rec | {"duration": "190.16s"}, rec | {"id": "v1_1", "correct_choice": "B"}]))
    r = run("longvideobench", ann, "--videos", tmp_path, "--out", tmp_path / "m.jsonl", "--force")
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"{ann}: none of its 2 record(s) could be converted" in r.stderr


def test_empty_and_malformed_files_are_one_line_errors(tmp_path):
    cases = [
        ("videomme", "v.json", "[]", "v.json: no question in this file"),
        ("nextqa", "val.csv", "", "val.csv: no question in this file"),
        ("lvbench", "video_info.meta.jsonl", "", "video_info.meta.jsonl: no question in this file"),
        ("mlvu", "9_summary.json", "[]", "9_summary.json: an open-ended generation task"),
        ("egoschema", "questions.json", '{"q_uid": "x"}', "questions.json: expected a list of records, found dict"),
    ]
    for bench, name, content, message in cases:
        (tmp_path / name).write_text(content)
        r = run(bench, tmp_path / name, "--videos", tmp_path, "--out", tmp_path / "m.jsonl", "--force")
        assert r.returncode == 1, (bench, r.stderr)
        assert message in r.stderr and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, (
            bench,
            r.stderr,
        )
        assert not (tmp_path / "m.jsonl").exists()


def test_an_unusable_time_reference_is_one_warning_line(tmp_path):
    qa = {"uid": "1", "question": "Q?\n(A) a\n(B) b", "answer": "A", "time_reference": "01:16-00:00"}
    ann = tmp_path / "video_info.meta.jsonl"
    ann.write_text(json.dumps({"key": "k1", "video_info": {"duration_minutes": 3}, "qa": [qa]}) + "\n")
    r = run("lvbench", ann, "--videos", tmp_path, "--out", tmp_path / "m.jsonl")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert (
        f"warning: {ann}: record 0 (key k1) question 0 (uid 1): time_reference '01:16-00:00' ends before it starts"
        in r.stderr.splitlines()[0]
    )


def test_out_must_not_be_a_directory_and_eval_report_must_not_be_a_file(tmp_path):
    ann = _mlvu_file(tmp_path)
    r = run("mlvu", ann, "--videos", tmp_path / "video", "--out", tmp_path)
    assert r.returncode == 1 and "is a directory" in r.stderr and "Traceback" not in r.stderr
    manifest = tmp_path / "m.jsonl"
    assert run("mlvu", ann, "--videos", tmp_path / "video", "--out", manifest).returncode == 0
    (tmp_path / "report.txt").write_text("x")
    import subprocess
    import sys

    ev = subprocess.run(
        [
            sys.executable,
            "-m",
            "foveate.cli",
            "eval",
            str(manifest),
            str(manifest),
            "--report",
            str(tmp_path / "report.txt"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ev.returncode == 1 and "is a file" in ev.stderr and "Traceback" not in ev.stderr
