"""The training commands' progress bars: a bar over the work before training (the SFT oracle's questions) opens at
its first update and closes when its work is done or its block ends, around the training bar that follows."""

from __future__ import annotations

from foveate.cli import train
from foveate.cli.train import step_progress, work_progress


class _Bars:
    """Counts the bars started and stopped (wraps the one constructor every training bar comes from)."""

    def __init__(self, monkeypatch):
        self.log: list[tuple[str, str]] = []
        make = train._steps_bar

        def counted(label, disable=False, info=True):
            bar = make(label, disable, info)
            start, stop = bar.start, bar.stop
            bar.start = lambda: (self.log.append(("start", label)), start())[1]
            bar.stop = lambda: (self.log.append(("stop", label)), stop())[1]
            return bar

        monkeypatch.setattr(train, "_steps_bar", counted)

    def live(self) -> list[str]:
        """Labels of the bars started and not yet stopped (a second stop is a no-op in rich)."""
        shown: list[str] = []
        for event, label in self.log:
            if event == "start":
                shown.append(label)
            elif label in shown:
                shown.remove(label)
        return shown


def test_a_work_bar_closes_when_its_work_is_done_before_the_training_bar_opens(monkeypatch):
    bars = _Bars(monkeypatch)
    with work_progress("sft examples: questions") as progress:
        assert bars.live() == []  # nothing shown before the first update
        for done in range(1, 4):
            progress(done, 3)
            assert bars.live() == ([] if done == 3 else ["sft examples: questions"])
        with step_progress("sft") as steps:  # inside the block, as run_sft trains after building its examples
            assert bars.live() == ["sft"]
            steps(1, 2, 0.5)
            steps(2, 2)
    assert bars.live() == []


def test_an_unfinished_work_bar_closes_with_its_block(monkeypatch):
    bars = _Bars(monkeypatch)
    try:
        with work_progress("select: val answers") as progress:
            progress(1, 3)
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert bars.live() == []
    with work_progress("answer: test answers"):
        pass  # never updated: never shown
    assert ("start", "answer: test answers") not in bars.log
