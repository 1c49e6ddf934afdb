"""The learning script's look metric: which questions had a window looked at that shows the evidence."""

from foveate.agent.trajectory import Step, ToolTurn, Trajectory, write_trajectories
from foveate.training.learning import look_metrics


def _traj(turns: list[ToolTurn], gold) -> Trajectory:
    return Trajectory(
        video="v.mp4", question="q", duration_s=60.0, steps=[Step(text="", tool_turns=turns)], gold_evidence=gold
    )


def test_look_metrics_count_only_executed_windows_that_overlap_the_evidence(tmp_path):
    def zoom(s, e, frames=2, error=None):
        return ToolTurn(
            name="zoom",
            arguments={"start": s, "end": e, "num_frames": 2},
            frames_spent=frames,
            error=error,
        )

    retrieve = ToolTurn(name="retrieve", arguments={"query": "a star", "k": 3}, frames_spent=3)
    by_handle = ToolTurn(name="zoom", arguments={"clip": "c2"}, frames_spent=4, window=(11.0, 13.0))
    trajectories = [
        _traj([retrieve, zoom(10, 14)], [(12.0, 13.0)]),  # looked at it
        _traj([retrieve, by_handle], [(12.0, 13.0)]),  # looked at it, by a clip handle
        _traj([retrieve, zoom(20, 24)], [(12.0, 13.0)]),  # looked elsewhere
        _traj([zoom(10, 14, frames=0, error="budget")], [(12.0, 13.0)]),  # failed call: no look
        _traj([ToolTurn(name=None, error="not JSON")], [(12.0, 13.0)]),  # unparsed call: not executed
    ]
    write_trajectories(tmp_path / "t.jsonl", trajectories)
    metrics = look_metrics(tmp_path / "t.jsonl")
    assert metrics["n"] == 5
    assert metrics["looked_at_evidence"] == 2 / 5
    assert metrics["executed_tool_calls"] == 6 / 5  # 2 + 2 + 2 + 0 + 0 over 5 questions
