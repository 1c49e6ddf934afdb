"""Each adapter on a few records written exactly in its benchmark's public format."""

import json

import pytest

from foveate.evals.adapters import ADAPTERS, AnnotationError, convert


def _write(path, obj):
    path.write_text(json.dumps(obj))
    return path


VIDEOMME_FLAT = [
    {
        "video_id": "001",
        "duration": "short",
        "domain": "Knowledge",
        "sub_category": "Humanity & History",
        "url": "https://www.youtube.com/watch?v=fFjv93ACGo8",
        "videoID": "fFjv93ACGo8",
        "question_id": "001-1",
        "task_type": "Counting Problem",
        "question": "When demonstrating the Germany modern Christmas tree is initially decorated with apples, "
        "candles and berries, which kind of the decoration has the largest number?",
        "options": ["A. Apples.", "B. Candles.", "C. Berries.", "D. The three kinds are of the same number."],
        "answer": "C",
    },
    {
        "video_id": "001",
        "duration": "short",
        "domain": "Knowledge",
        "sub_category": "Humanity & History",
        "url": "https://www.youtube.com/watch?v=fFjv93ACGo8",
        "videoID": "fFjv93ACGo8",
        "question_id": "001-2",
        "task_type": "Information Synopsis",
        "question": "What is the genre of this video?",
        "options": ["A. It is a news report.", "B. It is a documentary.", "C. It is a vlog.", "D. It is a tutorial."],
        "answer": "B",
    },
]


def test_videomme_parquet_and_json(tmp_path):
    import pandas as pd

    pq = tmp_path / "test-00000-of-00001.parquet"
    pd.DataFrame(VIDEOMME_FLAT).to_parquet(pq)
    rows = convert("videomme", pq, tmp_path / "data").rows
    assert [r.id for r in rows] == ["001-1", "001-2"]
    assert rows[0].video == str(tmp_path / "data" / "fFjv93ACGo8.mp4")
    assert rows[0].options == ["Apples.", "Candles.", "Berries.", "The three kinds are of the same number."]
    assert rows[0].answer == "C" and rows[0].task == "Counting Problem" and rows[0].evidence is None
    assert rows[0].model_dump()["duration_category"] == "short"
    assert [
        r.model_dump() for r in convert("videomme", _write(tmp_path / "v.json", VIDEOMME_FLAT), tmp_path / "data").rows
    ] == [r.model_dump() for r in rows]


def test_videomme_official_nested_json(tmp_path):
    nested = [
        {
            "video_id": "002",
            "duration_category": "short",
            "video_category": "Knowledge",
            "video_subcategory": "Humanity & History",
            "url": "https://www.youtube.com/watch?v=Gn4Bo8TPSAk",
            "questions": [
                {
                    "question_id": "002-3",
                    "task_type": "Counting Problem",
                    "question": "How many porcelain jars were discovered in the niches located "
                    "in the primary chamber of the tomb?",
                    "choices": ["A. 4.", "B. 9.", "C. 5.", "D. 13."],
                    "answer": "B",
                    "response": "B",
                }
            ],
        }
    ]
    rows = convert("videomme", _write(tmp_path / "output_test_template.json", nested), tmp_path).rows
    assert rows[0].id == "002-3" and rows[0].options == ["4.", "9.", "5.", "13."] and rows[0].answer == "B"
    assert rows[0].video == str(tmp_path / "Gn4Bo8TPSAk.mp4")  # released videos are named by YouTube id


def test_longvideobench(tmp_path):
    recs = [
        {
            "video_id": "86CxyhFV9MI",
            "question": "In the video, which subtitles appear at the same time as the man with black hair?",
            "question_wo_referring_query": "Which subtitles appear at the same time?",
            "candidates": ["promisc has come to an end", "come on, run", "the mower", "jump higher"],
            "correct_choice": 1,
            "position": [1, 2],
            "topic_category": "NP-News-Programs",
            "question_category": "TOS",
            "level": "L2-Relation",
            "id": "86CxyhFV9MI_0",
            "video_path": "86CxyhFV9MI.mp4",
            "subtitle_path": "86CxyhFV9MI_en.json",
            "duration_group": 600,
            "starting_timestamp_for_subtitles": 0,
            "duration": 527.04,
            "view_count": 100,
        }
    ]
    rows = convert("longvideobench", _write(tmp_path / "lvb_val.json", recs), tmp_path / "videos").rows
    r = rows[0]
    assert (r.id, r.answer, r.task, r.duration_s) == ("86CxyhFV9MI_0", "B", "TOS", 527.04)
    assert r.video == str(tmp_path / "videos" / "86CxyhFV9MI.mp4") and len(r.options) == 4
    test = [dict(recs[0], correct_choice=None)]
    test[0].pop("correct_choice")
    assert convert("longvideobench", _write(tmp_path / "lvb_test_wo_gt.json", test), tmp_path).rows[0].answer is None


def test_mlvu_dev_folder(tmp_path):
    folder = tmp_path / "json"
    folder.mkdir()
    _write(
        folder / "1_plotQA.json",
        [
            {
                "video": "movie101_66.mp4",
                "duration": 246,
                "question": "What color is the main male character in the video?",
                "candidates": ["Yellow", "Red", "Green", "Blue"],
                "answer": "Yellow",
                "question_type": "plotQA",
            }
        ],
    )
    _write(
        folder / "4_count.json",
        [
            {
                "video": "count_1.mp4",
                "duration": 520.5,
                "question": "Throughout this video, how many times does the action 'jumping' occur?",
                "candidates": ["3", "5", "1", "2"],
                "answer": "2",
                "question_type": "count",
            }
        ],
    )
    _write(
        folder / "9_summary.json",
        [{"video": "sum.mp4", "duration": 600, "question": "Please summarize this video.", "answer": "A long text."}],
    )
    rows = convert("mlvu", folder, tmp_path / "video").rows
    assert [r.id for r in rows] == ["1_plotQA-0", "4_count-0"]
    assert rows[0].answer == "A" and rows[1].answer == "D" and rows[1].task == "count"
    assert rows[1].video == str(tmp_path / "video" / "4_count" / "count_1.mp4") and rows[1].duration_s == 520.5


def test_nextqa_csv_with_vid_map(tmp_path):
    (tmp_path / "val.csv").write_text(
        "video,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4\n"
        "4010069381,369,640,480,how do the two man play the instrument,0,6,CH,"
        "roll the handle,tap their feet,strum the string,hit with sticks,pat with hand\n"
        "2834146886,1881,496,370,what does the white dog do after going to the cushion,2,8,TN,"
        "drink again,shake its body,smells the black dog,wagging tail,touch lady in blue stripes\n"
    )
    _write(tmp_path / "map_vid_vidorID.json", {"4010069381": "1006/4010069381"})
    rows = convert("nextqa", tmp_path / "val.csv", tmp_path / "NExTVideo").rows
    assert [r.id for r in rows] == ["4010069381_6", "2834146886_8"]
    assert rows[0].video == str(tmp_path / "NExTVideo" / "1006" / "4010069381.mp4")
    assert rows[1].video == str(tmp_path / "NExTVideo" / "2834146886.mp4")  # not in the map: flat layout
    assert rows[1].answer == "C" and rows[1].options[2] == "smells the black dog" and rows[1].task == "TN"
    (tmp_path / "bad.csv").write_text("video,question\n1,q\n")
    with pytest.raises(AnnotationError, match="missing column"):
        convert("nextqa", tmp_path / "bad.csv", tmp_path)


def test_egoschema_with_subset_answers(tmp_path):
    qs = [
        {
            "q_uid": "0074f737-11cb-497d-8d07-77c3a8127391",
            "google_drive_id": "1x",
            "question": "What is the overall goal of c's actions?",
            **{f"option {k}": f"option text {k}" for k in range(5)},
        },
        {
            "q_uid": "001934bb-81bd-4cd8-a574-0472ef3f6678",
            "google_drive_id": "1y",
            "question": "Why does c stop scrolling?",
            **{f"option {k}": f"other {k}" for k in range(5)},
        },
    ]
    _write(tmp_path / "questions.json", qs)
    _write(tmp_path / "subset_answers.json", {"0074f737-11cb-497d-8d07-77c3a8127391": 3})
    rows = convert("egoschema", tmp_path / "questions.json", tmp_path / "videos").rows
    assert rows[0].answer == "D" and rows[1].answer is None and rows[0].duration_s == 180.0
    assert rows[0].video == str(tmp_path / "videos" / "0074f737-11cb-497d-8d07-77c3a8127391.mp4")
    assert rows[0].options[4] == "option text 4"


def test_lvbench_jsonl_with_time_reference(tmp_path):
    line = {
        "key": "TeV7GWx2rWs",
        "type": "cartoon",
        "video_info": {"duration_minutes": 118.5, "fps": 30, "resolution": {"width": 640, "height": 360}},
        "qa": [
            {
                "uid": "1",
                "question": "What year appears in the opening caption of the video?\n"
                "(A) 1636\n(B) 1366\n(C) 1363\n(D) 1633",
                "answer": "B",
                "question_type": ["key information retrieval"],
                "time_reference": "00:15-00:19",
            },
            {
                "uid": "2",
                "question": "What happens at the end?\n(A) a fight\n(B) a dance\n(C) a song\n(D) nothing",
                "answer": "c",
                "question_type": ["event understanding", "reasoning"],
                "time_reference": "1:52:03-1:53:10",
            },
        ],
    }
    (tmp_path / "video_info.meta.jsonl").write_text(json.dumps(line) + "\n")
    rows = convert("lvbench", tmp_path / "video_info.meta.jsonl", tmp_path / "videos").rows
    assert rows[0].question == "What year appears in the opening caption of the video?"
    assert rows[0].options == ["1636", "1366", "1363", "1633"] and rows[0].answer == "B"
    assert rows[0].evidence == [(15.0, 19.0)] and rows[0].task == "key information retrieval"
    assert (
        rows[1].evidence == [(6723.0, 6790.0)]
        and rows[1].answer == "C"
        and rows[0].duration_s == pytest.approx(7110.0)
    )
    assert rows[0].video == str(tmp_path / "videos" / "TeV7GWx2rWs.mp4")


def test_wrong_files_give_errors_naming_the_file(tmp_path):
    assert list(ADAPTERS) == ["videomme", "longvideobench", "mlvu", "nextqa", "egoschema", "lvbench"]
    lvb = _write(tmp_path / "lvb_val.json", [{"id": "x", "question": "q"}])
    with pytest.raises(
        AnnotationError,
        match=r"lvb_val.json: none of its 1 record\(s\) could be converted \(first: "
        r"record 0 \(id x\): no 'candidates' field",
    ):
        convert("longvideobench", lvb, tmp_path)
    garbage = tmp_path / "g.json"
    garbage.write_text("{not json")
    with pytest.raises(AnnotationError, match="g.json: not valid JSON"):
        convert("egoschema", garbage, tmp_path)
    with pytest.raises(ValueError, match="valid: videomme, longvideobench"):
        convert("mvbench", garbage, tmp_path)
    dup = convert("videomme", _write(tmp_path / "d.json", VIDEOMME_FLAT + VIDEOMME_FLAT[:1]), tmp_path)
    assert len(dup.rows) == 2 and [(s.record, s.reason) for s in dup.skipped] == [("question '001-1'", "duplicate id")]


# Records in each benchmark's real format, for the defect tests below.
def _mlvu(**kw):
    rec = {
        "video": "needle_32.mp4",
        "duration": 467,
        "question": "What does the hand coming out of the computer do?",
        "candidates": ["Delivers a product", "Shakes the woman's hand", "Takes the woman's credit card", "Points"],
        "answer": "Delivers a product",
        "question_type": "needle",
    }
    return rec | kw


def _lvb(i, **kw):
    rec = {
        "video_id": "86CxyhFV9MI",
        "question": "Which subtitles appear at the same time as the man with black hair?",
        "candidates": ["promisc has come to an end", "come on, run", "the mower", "jump higher"],
        "correct_choice": 1,
        "question_category": "TOS",
        "id": f"86CxyhFV9MI_{i}",
        "video_path": "86CxyhFV9MI.mp4",
        "duration_group": 600,
        "duration": 527.04,
    }
    return rec | kw


def _ego(uid, **kw):
    rec = {"q_uid": uid, "google_drive_id": "1x", "question": "What is c doing?"}
    return rec | {f"option {k}": f"option text {k}" for k in range(5)} | kw


def _lvbench_line(key="TeV7GWx2rWs", minutes=118.5, qa=None):
    qa = qa or [
        {
            "uid": "1",
            "question": "What year appears in the opening caption?\n(A) 1636\n(B) 1366\n(C) 1363\n(D) 1633",
            "answer": "B",
            "question_type": ["key information retrieval"],
            "time_reference": "00:15-00:19",
        }
    ]
    return {"key": key, "type": "cartoon", "video_info": {"duration_minutes": minutes, "fps": 30}, "qa": qa}


def _jsonl(path, lines):
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_mlvu_answer_outside_candidates_skips_only_that_record(tmp_path):
    """Defect 1: 2_needle.json record 34's answer is no candidate; the others must still convert."""
    recs = [_mlvu(), _mlvu(answer="Waves goodbye"), _mlvu(video="needle_33.mp4", answer="Points")]
    res = convert("mlvu", _write(tmp_path / "2_needle.json", recs), tmp_path / "video")
    assert [(r.id, r.answer) for r in res.rows] == [("2_needle-0", "A"), ("2_needle-2", "D")]
    [skip] = res.skipped
    assert skip.file == str(tmp_path / "2_needle.json") and skip.record == "record 1 (video needle_32.mp4)"
    assert "'Waves goodbye' is not one of its candidates" in skip.reason and "choice_bench.py" in skip.reason


def test_mlvu_gold_letter_is_the_last_match_and_empty_records_are_skipped(tmp_path):
    """Defect 2: choice_bench.py's qa_template keeps the LAST equal candidate; empty records are not rows."""
    anomaly = _mlvu(
        video="surveil_13.mp4",
        question="Does this surveillance footage contain any anomalies? If yes, which kind of anomaly?",
        candidates=["Shooting", "Normal", "Arson", "Shooting"],
        answer="Shooting",
        question_type="anomaly_reco",
    )
    empty = _mlvu(video="surveil_14.mp4", question="", candidates=["", "", "", ""], answer="")
    res = convert("mlvu", _write(tmp_path / "6_anomaly_reco.json", [anomaly, empty]), tmp_path)
    assert [r.answer for r in res.rows] == ["D"]
    assert [(s.record, s.reason) for s in res.skipped] == [
        ("record 1 (video surveil_14.mp4)", "all candidates are empty")
    ]


def test_videomme_video_is_named_by_youtube_id(tmp_path):
    """Defect 3: released Video-MME videos are <YouTube id>.mp4: videoID, else the id in url, never 001.mp4."""
    no_video_id = [{k: v for k, v in VIDEOMME_FLAT[0].items() if k != "videoID"}]
    assert convert("videomme", _write(tmp_path / "a.json", no_video_id), tmp_path).rows[0].video == str(
        tmp_path / "fFjv93ACGo8.mp4"
    )
    nested = {
        "video_id": "001",
        "duration": "short",
        "domain": "Knowledge",
        "sub_category": "Humanity & History",
        "url": "https://www.youtube.com/watch?v=fFjv93ACGo8",
        "questions": [{k: VIDEOMME_FLAT[0][k] for k in ("question_id", "task_type", "question", "options", "answer")}],
    }
    rows = convert("videomme", _write(tmp_path / "output_test_template.json", [nested]), tmp_path).rows
    assert rows[0].video == str(tmp_path / "fFjv93ACGo8.mp4") and rows[0].answer == "C"
    short = [dict(nested, url="https://youtu.be/fFjv93ACGo8")]
    assert convert("videomme", _write(tmp_path / "b.json", short), tmp_path).rows[0].video.endswith("/fFjv93ACGo8.mp4")
    no_url = [{k: v for k, v in nested.items() if k != "url"}, nested]
    res = convert("videomme", _write(tmp_path / "c.json", no_url), tmp_path)
    assert len(res.rows) == 1 and "neither 'videoID' nor 'url'" in res.skipped[0].reason


@pytest.mark.parametrize(
    "bench,name,records,reason",
    [
        (
            "longvideobench",
            "lvb_val.json",
            [_lvb(0, duration="190.16s"), _lvb(1)],
            "duration '190.16s' is not a number",
        ),
        ("longvideobench", "lvb_val.json", [_lvb(0, correct_choice="B"), _lvb(1)], "correct_choice 'B' is not an"),
        ("mlvu", "1_plotQA.json", [_mlvu(duration="n/a"), _mlvu()], "duration 'n/a' is not a number"),
        (
            "mlvu",
            "1_plotQA.json",
            [_mlvu(candidates=[str(k) for k in range(12)], answer="3"), _mlvu()],
            "12 candidates",
        ),
        ("lvbench", "video_info.meta.jsonl", [_lvbench_line(minutes="n/a"), _lvbench_line("other")], "'n/a' is not a"),
    ],
)
def test_bad_values_skip_the_record_instead_of_a_traceback(tmp_path, bench, name, records, reason):
    """Defect 4: ValueError/IndexError from one record's values skip that record, named, with the reason."""
    path = _jsonl(tmp_path / name, records) if name.endswith(".jsonl") else _write(tmp_path / name, records)
    res = convert(bench, path, tmp_path)
    assert len(res.rows) == 1 and len(res.skipped) == 1
    assert res.skipped[0].file == str(path) and res.skipped[0].record.startswith("record 0")
    assert reason in res.skipped[0].reason


def test_egoschema_answer_letter_in_subset_answers_is_skipped(tmp_path):
    """Defect 4: subset_answers.json holds indices; a letter skips that question and says where it came from."""
    _write(tmp_path / "questions.json", [_ego("u1"), _ego("u2")])
    _write(tmp_path / "subset_answers.json", {"u1": "D", "u2": 4})
    res = convert("egoschema", tmp_path / "questions.json", tmp_path)
    assert [(r.id, r.answer) for r in res.rows] == [("u2", "E")]
    assert res.skipped[0].record == "record 0 (q_uid u1)"
    assert res.skipped[0].reason == "subset_answers.json answer 'D' is not an option index (0, 1, ...)"


def test_wrong_types_are_refused_not_coerced(tmp_path):
    """Defect 5: a string for options, answer 2, a letter outside the options, correct_choice true."""
    options_as_text = dict(VIDEOMME_FLAT[0], question_id="x1", options="A. Apples. B. Candles.")
    numeric_answer = dict(VIDEOMME_FLAT[0], question_id="x2", answer=2)
    letter_e = dict(VIDEOMME_FLAT[0], question_id="x3", answer="E")
    res = convert(
        "videomme",
        _write(tmp_path / "v.json", [options_as_text, numeric_answer, letter_e, VIDEOMME_FLAT[1]]),
        tmp_path,
    )
    assert [r.id for r in res.rows] == ["001-2"]
    assert [s.reason for s in res.skipped] == [
        "options is a str, not a list",
        "answer 2 is not an option letter",
        "answer 'E' is not one of the 4 options (A-D)",
    ]
    mlvu = convert(
        "mlvu",
        _write(tmp_path / "4_count.json", [_mlvu(candidates=["3", "5", "1", "2"], answer=2), _mlvu()]),
        tmp_path,
    )
    assert len(mlvu.rows) == 1 and "the answer 2 is not one of its candidates" in mlvu.skipped[0].reason
    lvb = convert(
        "longvideobench", _write(tmp_path / "lvb_val.json", [_lvb(0, correct_choice=True), _lvb(1)]), tmp_path
    )
    assert len(lvb.rows) == 1 and lvb.skipped[0].reason == "correct_choice True is not an option index (0, 1, ...)"
    bad_letter = _lvbench_line(
        qa=[dict(_lvbench_line()["qa"][0], answer="E"), dict(_lvbench_line()["qa"][0], uid="2")]
    )
    lvbench = convert("lvbench", _jsonl(tmp_path / "m.jsonl", [bad_letter]), tmp_path)
    assert [r.id for r in lvbench.rows] == ["2"] and "'E' is not one of the 4 options" in lvbench.skipped[0].reason


def test_manifest_refuses_an_answer_letter_outside_its_options(tmp_path):
    """Defect 5: read_manifest must not accept a row whose gold letter names no option."""
    from foveate.agent.records import ManifestRow, read_manifest

    row = {"id": "a", "video": "v.mp4", "question": "q", "options": ["x", "y", "z", "w"], "answer": "E"}
    (tmp_path / "m.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(ValueError, match=r"m.jsonl:1: .*answer 'E' must be the letter of one of the 4 options"):
        read_manifest(tmp_path / "m.jsonl")
    assert ManifestRow(**dict(row, answer="d")).answer == "d"
    assert ManifestRow(**dict(row, options=None, answer="free text")).answer == "free text"


def test_lvbench_unusable_time_references_warn_and_reversed_spans_are_dropped(tmp_path, caplog):
    """Defect 6: '00:15~00:19' and two spans warn (file, record); '01:16-00:00' is no made-up [76, 77]."""
    base = _lvbench_line()["qa"][0]
    refs = ["00:15~00:19", "00:15-00:19, 01:02-01:05", "01:16-00:00", "00:15-00:15", ""]
    line = _lvbench_line(qa=[dict(base, uid=str(k), time_reference=t) for k, t in enumerate(refs)])
    path = _jsonl(tmp_path / "video_info.meta.jsonl", [line])
    with caplog.at_level("WARNING", logger="foveate.evals.adapters.lvbench"):
        rows = convert("lvbench", path, tmp_path).rows
    assert [r.evidence for r in rows] == [None, None, None, [(15.0, 16.0)], None]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 3 and all(w.startswith(f"{path}: record 0 (key TeV7GWx2rWs) question ") for w in warnings)
    assert "question 0 (uid 0): time_reference '00:15~00:19' is not one 'start-end' span" in warnings[0]
    assert "question 2 (uid 2): time_reference '01:16-00:00' ends before it starts" in warnings[2]


@pytest.mark.parametrize(
    "bench,name,content",
    [
        ("videomme", "v.json", "[]"),
        ("longvideobench", "lvb_val.json", "[]"),
        ("egoschema", "questions.json", "[]"),
        ("nextqa", "val.csv", ""),
        ("nextqa", "val.csv", "video,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4\n"),
        ("lvbench", "video_info.meta.jsonl", ""),
        ("lvbench", "video_info.meta.jsonl", "\n\n"),
    ],
)
def test_a_file_with_no_question_is_an_error(tmp_path, bench, name, content):
    """Defect 7: nothing to convert is an error naming the file, not an empty manifest."""
    (tmp_path / name).write_text(content)
    with pytest.raises(AnnotationError, match=rf"^{tmp_path / name}: no question in this file$"):
        convert(bench, tmp_path / name, tmp_path)


def test_mlvu_open_ended_file_passed_alone_is_an_error(tmp_path):
    """Defect 7: 9_summary.json has no candidates; passed directly it must not give an empty manifest."""
    path = _write(
        tmp_path / "9_summary.json", [{"video": "s.mp4", "duration": 600, "question": "Summarize.", "answer": "x"}]
    )
    with pytest.raises(AnnotationError, match="9_summary.json: an open-ended generation task"):
        convert("mlvu", path, tmp_path)


def test_errors_name_the_file_at_fault(tmp_path):
    """Defect 8: a malformed side file is reported against itself; a short CSV row names its line."""
    header = "video,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4\n"
    good = "2834146886,1881,496,370,what does the dog do,2,8,TN,drink,shake,smell,wag,touch\n"
    (tmp_path / "val.csv").write_text(header + good + "4010069381,369,640,480,how do they play\n")
    rows = convert("nextqa", tmp_path / "val.csv", tmp_path)
    assert len(rows.rows) == 1
    assert str(rows.skipped[0]) == f"{tmp_path / 'val.csv'}: line 3: has 5 fields, the header has 13"
    _write(tmp_path / "map_vid_vidorID.json", ["1006/4010069381"])
    with pytest.raises(AnnotationError, match=rf"^{tmp_path / 'map_vid_vidorID.json'}: expected an object"):
        convert("nextqa", tmp_path / "val.csv", tmp_path)
    _write(tmp_path / "map_vid_vidorID.json", {"2834146886": 1006})
    with pytest.raises(AnnotationError, match=rf"^{tmp_path / 'map_vid_vidorID.json'}: the entry for '2834146886'"):
        convert("nextqa", tmp_path / "val.csv", tmp_path)
    _write(tmp_path / "questions.json", [_ego("u1")])
    _write(tmp_path / "subset_answers.json", [["u1", 3]])
    with pytest.raises(AnnotationError, match=rf"^{tmp_path / 'subset_answers.json'}: expected an object"):
        convert("egoschema", tmp_path / "questions.json", tmp_path)
    (tmp_path / "subset_answers.json").write_text("{oops")
    with pytest.raises(AnnotationError, match=rf"^{tmp_path / 'subset_answers.json'}: not valid JSON"):
        convert("egoschema", tmp_path / "questions.json", tmp_path)
