"""A prune's pacing: batches sized to take about their target time, and the pauses after them."""

from __future__ import annotations

from stepline.engine.retention import Pacing


def test_a_slow_batch_makes_the_next_smaller_and_the_pause_longer() -> None:
    pacing = Pacing(most=100, batch_seconds=0.005, pause=0.05)
    assert pacing.size == 10
    pause = pacing.after(0.020)  # 10 runs took 20 ms: 4x the target
    assert pacing.size == 2
    assert pause == 0.060  # three times the batch, over the 50 ms floor


def test_fast_batches_grow_at_most_twofold_up_to_the_most() -> None:
    pacing = Pacing(most=100, batch_seconds=0.005, pause=0.05)
    sizes = []
    for _ in range(6):
        assert pacing.after(0.0001) == 0.05  # the floor
        sizes.append(pacing.size)
    assert sizes == [20, 40, 80, 100, 100, 100]


def test_a_batch_never_shrinks_below_one_run() -> None:
    pacing = Pacing(most=100, batch_seconds=0.005, pause=0.05, size=3)
    pacing.after(10.0)
    assert pacing.size == 1
