import pytest

from foveate.agent.records import ManifestRow, PredictionRow
from foveate.evals.metrics import (
    bootstrap_ci,
    duration_bucket,
    normalize_answer,
    overlaps,
    paired,
    predicted_letter,
    score,
    temporal_iou,
    union,
)


@pytest.mark.parametrize(
    "pred, gold, iou",
    [
        ([(0, 10)], [(0, 10)], 1.0),  # identical
        ([(0, 4)], [(6, 10)], 0.0),  # disjoint
        ([(0, 5)], [(5, 10)], 0.0),  # touching: half-open spans share no time
        ([(2, 4)], [(0, 10)], 0.2),  # nested
        ([(0, 10)], [(2, 4)], 0.2),  # nested, other way
        ([(0, 6)], [(4, 10)], 0.2),  # partial overlap: 2 / 10
        ([], [(0, 1)], 0.0),  # empty prediction
        ([(0, 1)], [], 0.0),  # empty ground truth
        ([(0, 2), (1, 3)], [(0, 3)], 1.0),  # overlapping predictions are merged first
        ([(0, 2), (8, 10)], [(0, 10)], 0.4),  # union of two spans
        ([(5, 5), (3, 1)], [(0, 10)], 0.0),  # empty and reversed spans are ignored
    ],
)
def test_temporal_iou(pred, gold, iou):
    assert temporal_iou(pred, gold) == pytest.approx(iou)
    # the yes/no test the oracle, the question writer and pretraining use agrees with it on single spans
    if len(pred) == len(gold) == 1 and pred[0][0] < pred[0][1]:
        assert overlaps(pred[0], gold[0]) == (iou > 0)


def test_union_merges_touching_and_overlapping():
    assert union([(5, 6), (0, 2), (2, 3), (2.5, 4)]) == [(0.0, 4.0), (5.0, 6.0)]


def test_answer_matching():
    assert normalize_answer("  The Red, star! ") == "red star"
    opts = ["red", "green", "blue"]
    assert predicted_letter(PredictionRow(id="x", choice="b"), opts) == "B"
    assert predicted_letter(PredictionRow(id="x", answer="(C)"), opts) == "C"
    assert predicted_letter(PredictionRow(id="x", answer="Green."), opts) == "B"
    assert predicted_letter(PredictionRow(id="x", choice="F"), opts) is None
    assert predicted_letter(PredictionRow(id="x", answer="purple"), opts) is None


def test_the_agent_the_rewards_and_the_eval_pick_an_option_by_one_rule():
    """An option's text picks it, a letter given beside the text wins, text naming no option (or two)
    picks nothing: parse_answer (agent loop, baselines, GRPO rewards), matches_gold and foveate eval agree."""
    from foveate.agent.answer import matches_gold, parse_answer

    opts = ["red", "APPLE", "00:12-00:18", "the red"]
    cases = [
        ('{"answer": "apple", "evidence": []}', "B"),  # case aside
        ('{"answer": "00:12-00:18", "evidence": []}', "C"),
        ('{"answer": "APPLE", "choice": "C", "evidence": []}', "C"),  # the letter wins
        ('{"answer": "APPLE", "choice": "Z", "evidence": []}', "B"),  # no such letter: the text decides
        ('{"answer": "red", "evidence": []}', None),  # "red" and "the red" normalise alike: ambiguous
        ('{"answer": "pear", "evidence": []}', None),
    ]
    for payload, letter in cases:
        answer = parse_answer(f"<answer>{payload}</answer>", opts)
        assert answer.choice == letter, payload
        raw = parse_answer(f"<answer>{payload}</answer>")  # parsed without the options, scored with them
        for gold in "ABCD":
            assert matches_gold(raw, gold, opts) == (gold == letter) == matches_gold(answer, gold, opts)
        row = PredictionRow(id="x", answer=raw.text, choice=raw.choice)
        assert predicted_letter(row, opts) == letter


def test_a_when_answer_picks_the_time_span_option_it_overlaps_most():
    """With time-span options, an answer naming a span (clock times, seconds, a clip handle) picks the
    option it overlaps most; a handle is read back as its times, so scoring the prediction file later,
    without the handles, picks the same option."""
    from foveate.agent.answer import matches_gold, parse_answer

    opts = ["0:12-0:14", "0:30-0:33", "0:45-0:47", "0:02-0:04", "0:50-0:52"]
    handles = {"c1": (28.0, 32.0), "c2": (12.0, 16.0), "c3": (40.0, 44.0)}
    cases = [
        ("c2", "A", "12.0-16.0s"),
        ("C1", "B", "28.0-32.0s"),
        ("0:13-0:20", "A", "0:13-0:20"),
        ("44.5 to 48 s", "C", "44.5 to 48 s"),
        ("c3", None, "40.0-44.0s"),  # overlaps no option
        ("c9", None, "c9"),  # unknown handle
        ("12-16", None, "12-16"),  # numbers without a unit name no span
    ]
    for text, letter, read_back in cases:
        answer = parse_answer(f'<answer>{{"answer": "{text}", "evidence": ["c2"]}}</answer>', opts, 60.0, handles)
        assert (answer.choice, answer.text) == (letter, read_back), text
        row = PredictionRow(id="x", answer=answer.text)  # what the prediction file keeps
        assert predicted_letter(row, opts) == letter
        assert matches_gold(answer, "A", opts) == (letter == "A")
    # Options that are not all spans: a handle picks nothing.
    assert parse_answer('<answer>{"answer": "c2"}</answer>', ["1", "2", "3"], 60.0, handles).choice is None


def test_duration_buckets():
    assert [duration_bucket(s) for s in (0, 299.9, 300, 1199, 1200, 3599, 3600, 7200, None)] == [
        "<5min",
        "<5min",
        "5-20min",
        "5-20min",
        "20-60min",
        "20-60min",
        ">60min",
        ">60min",
        "unknown",
    ]


def test_bootstrap_is_seeded_and_brackets_the_mean():
    values = [1, 0, 1, 1, 0, 1, 0, 1, 1, 1]
    lo, hi = bootstrap_ci(values, seed=3)
    assert (lo, hi) == bootstrap_ci(values, seed=3)
    assert lo < 0.7 < hi and 0 <= lo and hi <= 1
    assert bootstrap_ci([1, 1, 1]) == (1.0, 1.0)
    assert bootstrap_ci([]) is None


def _rows():
    mc = dict(video="v", question="q", options=["x", "y", "z"])
    return [
        ManifestRow(id="a", answer="A", evidence=[(0, 10)], task="needle", duration_s=60, **mc),
        ManifestRow(id="b", answer="B", evidence=[(0, 10)], task="counting", duration_s=600, **mc),
        ManifestRow(id="c", answer="C", evidence=[(10, 20)], task="counting", duration_s=600, **mc),
        ManifestRow(id="d", answer="A", task="counting", duration_s=4000, **mc),
        ManifestRow(id="e", video="v", question="open", answer="The red star", task="open"),
    ]


def test_score_hand_computed():
    preds = {
        "a": PredictionRow(
            id="a",
            choice="A",
            evidence=[(0, 5)],
            frames_used=4,
            tool_calls=1,
            tokens_in=10,
            tokens_out=2,
            latency_s=1.0,
        ),
        "b": PredictionRow(
            id="b", choice="A", evidence=[(5, 15), (20, 30)], frames_used=8, tool_calls=3, latency_s=3.0
        ),
        "c": PredictionRow(id="c", choice="C", evidence=[(12, 20)], error="controller crashed", frames_used=0),
        "e": PredictionRow(id="e", answer="red star.", frames_used=6, tool_calls=2, latency_s=2.0),
    }
    m = score(_rows(), preds)
    o = m["overall"]
    # a right, b wrong, c errored (wrong even though the letter matches), d missing, e right (normalised match)
    assert o["n"] == 5 and o["accuracy"] == pytest.approx(2 / 5)
    # IoU over rows with gold evidence: a 0.5, b 5/25=0.2, c 0 (errored rows cite nothing); d has no gold evidence
    assert o["n_with_evidence"] == 3 and o["evidence_iou"] == pytest.approx((0.5 + 0.2 + 0.0) / 3)
    # first span only: a 0.5, b (5,15) vs (0,10) = 5/15, c 0
    assert o["r1@0.3"] == pytest.approx(2 / 3) and o["r1@0.5"] == pytest.approx(1 / 3) and o["r1@0.7"] == 0.0
    assert o["missing"] == 1 and o["error_rows"] == 1 and o["errors"] == 2
    assert o["frames_used"] == pytest.approx((4 + 8 + 0 + 6) / 4) and o["tool_calls"] == pytest.approx(6 / 4)
    assert o["tokens"] == pytest.approx(12 / 4) and o["latency_s"] == pytest.approx(6 / 4)
    assert m["by_task"]["needle"]["accuracy"] == 1.0 and m["by_task"]["counting"]["accuracy"] == 0.0
    assert m["by_task"]["open"]["accuracy"] == 1.0 and m["by_task"]["open"]["evidence_iou"] is None
    assert list(m["by_duration"]) == ["<5min", "5-20min", ">60min", "unknown"]
    assert m["by_duration"]["5-20min"]["n"] == 2 and m["by_duration"][">60min"]["missing"] == 1
    lo, hi = o["accuracy_ci95"]
    assert 0 <= lo <= 0.4 <= hi <= 1


def test_no_predictions_scores_zero_not_crash():
    m = score(_rows(), {})
    assert m["overall"]["accuracy"] == 0 and m["overall"]["missing"] == 5 and m["overall"]["frames_used"] is None


def test_paired_differences_are_per_question_and_their_interval_is_narrower_than_unpaired():
    rows = _rows()
    # b answers what a answers plus question "b"; its evidence on "a" is better
    a = score(
        rows,
        {"a": PredictionRow(id="a", choice="A", evidence=[(0, 5)]), "e": PredictionRow(id="e", answer="red star")},
    )
    b = score(
        rows,
        {
            "a": PredictionRow(id="a", choice="A", evidence=[(0, 10)]),
            "b": PredictionRow(id="b", choice="B"),
            "e": PredictionRow(id="e", answer="red star"),
        },
    )
    d = paired(b["rows"], a["rows"])
    assert d["n"] == 5 and d["accuracy_diff"] == pytest.approx(1 / 5) and (d["won"], d["lost"]) == (1, 0)
    # IoU on the 3 rows with gold evidence: a 1.0 - 0.5, b 0 - 0, c 0 - 0
    assert d["evidence_iou_diff"] == pytest.approx(0.5 / 3)
    lo, hi = d["accuracy_diff_ci95"]
    assert 0 <= lo <= 0.2 <= hi <= 0.6
    assert paired(a["rows"], b["rows"])["lost"] == 1 and paired(a["rows"], a["rows"])["accuracy_diff_ci95"] == [0, 0]
    # the same differences, unpaired, would give an interval that straddles zero; paired it does not
    many = [ManifestRow(id=str(i), video="v", question="q", options=["x", "y"], answer="A") for i in range(40)]
    good = {str(i): PredictionRow(id=str(i), choice="A") for i in range(40) if i % 2 == 0 or i < 10}
    base = {str(i): PredictionRow(id=str(i), choice="A") for i in range(40) if i % 2 == 0}
    d = paired(score(many, good)["rows"], score(many, base)["rows"])
    assert (d["won"], d["lost"]) == (5, 0) and d["accuracy_diff_ci95"][0] > 0
    assert bootstrap_ci([float(s.correct) for s in score(many, base)["rows"]])[1] > 0.5 + 5 / 40
    with pytest.raises(ValueError, match="same questions"):
        paired(a["rows"][:2], b["rows"])
