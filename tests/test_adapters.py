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
    rows = convert("videomme", pq, tmp_path / "data")
    assert [r.id for r in rows] == ["001-1", "001-2"]
    assert rows[0].video == str(tmp_path / "data" / "fFjv93ACGo8.mp4")
    assert rows[0].options == ["Apples.", "Candles.", "Berries.", "The three kinds are of the same number."]
    assert rows[0].answer == "C" and rows[0].task == "Counting Problem" and rows[0].evidence is None
    assert rows[0].model_dump()["duration_category"] == "short"
    assert [
        r.model_dump() for r in convert("videomme", _write(tmp_path / "v.json", VIDEOMME_FLAT), tmp_path / "data")
    ] == [r.model_dump() for r in rows]


def test_videomme_official_nested_json(tmp_path):
    nested = [
        {
            "video_id": "002",
            "duration_category": "short",
            "video_category": "Knowledge",
            "video_subcategory": "Humanity & History",
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
    rows = convert("videomme", _write(tmp_path / "output_test_template.json", nested), tmp_path)
    assert rows[0].id == "002-3" and rows[0].options == ["4.", "9.", "5.", "13."] and rows[0].answer == "B"
    assert rows[0].video.endswith("/002.mp4")


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
    rows = convert("longvideobench", _write(tmp_path / "lvb_val.json", recs), tmp_path / "videos")
    r = rows[0]
    assert (r.id, r.answer, r.task, r.duration_s) == ("86CxyhFV9MI_0", "B", "TOS", 527.04)
    assert r.video == str(tmp_path / "videos" / "86CxyhFV9MI.mp4") and len(r.options) == 4
    test = [dict(recs[0], correct_choice=None)]
    test[0].pop("correct_choice")
    assert convert("longvideobench", _write(tmp_path / "lvb_test_wo_gt.json", test), tmp_path)[0].answer is None


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
    rows = convert("mlvu", folder, tmp_path / "video")
    assert [r.id for r in rows] == ["1_plotQA-0", "4_count-0"]
    assert rows[0].answer == "A" and rows[1].answer == "D" and rows[1].task == "count"
    assert rows[1].video == str(tmp_path / "video" / "4_count" / "count_1.mp4") and rows[1].duration_s == 520.5
    bad = _write(tmp_path / "x.json", [{"video": "a.mp4", "question": "q", "candidates": ["a", "b"], "answer": "c"}])
    with pytest.raises(AnnotationError, match="not one of its candidates"):
        convert("mlvu", bad, tmp_path)


def test_nextqa_csv_with_vid_map(tmp_path):
    (tmp_path / "val.csv").write_text(
        "video,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4\n"
        "4010069381,369,640,480,how do the two man play the instrument,0,6,CH,"
        "roll the handle,tap their feet,strum the string,hit with sticks,pat with hand\n"
        "2834146886,1881,496,370,what does the white dog do after going to the cushion,2,8,TN,"
        "drink again,shake its body,smells the black dog,wagging tail,touch lady in blue stripes\n"
    )
    _write(tmp_path / "map_vid_vidorID.json", {"4010069381": "1006/4010069381"})
    rows = convert("nextqa", tmp_path / "val.csv", tmp_path / "NExTVideo")
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
    rows = convert("egoschema", tmp_path / "questions.json", tmp_path / "videos")
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
    rows = convert("lvbench", tmp_path / "video_info.meta.jsonl", tmp_path / "videos")
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
    with pytest.raises(AnnotationError, match=r"lvb_val.json: record 0 has no 'candidates' field"):
        convert("longvideobench", lvb, tmp_path)
    garbage = tmp_path / "g.json"
    garbage.write_text("{not json")
    with pytest.raises(AnnotationError, match="g.json: not valid JSON"):
        convert("egoschema", garbage, tmp_path)
    with pytest.raises(ValueError, match="valid: videomme, longvideobench"):
        convert("mvbench", garbage, tmp_path)
    with pytest.raises(AnnotationError, match="duplicate question id"):
        convert("videomme", _write(tmp_path / "d.json", VIDEOMME_FLAT + VIDEOMME_FLAT[:1]), tmp_path)
