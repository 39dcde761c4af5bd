"""Audit charts: geometry stays inside the plot, and empty periods draw nothing misleading."""

from __future__ import annotations

from meshgate.dashboard._charts import HEIGHT, WIDTH, bucket_for, calls_chart, latency_chart


def series(count: int) -> list[dict[str, object]]:
    return [
        {
            "start": f"2026-01-0{1 + index // 24}T{index % 24:02d}:00:00Z",
            "calls": index % 7,
            "errors": min(index % 7, index % 3),
            "p50": None if index % 7 == 0 else 10.0 + index,
            "p95": None if index % 7 == 0 else 20.0 + index,
            "p99": None if index % 7 == 0 else 40.0 + index,
        }
        for index in range(count)
    ]


def test_bars_and_lines_stay_inside_the_drawing() -> None:
    data = series(30)
    calls = calls_chart(data)
    assert len(calls.bars) == 30
    for bar in calls.bars + calls.error_bars:
        assert 0 <= bar.x <= WIDTH and 0 <= bar.y <= HEIGHT and bar.y + bar.height <= HEIGHT
    heights = {bar.x: bar.height for bar in calls.bars}
    assert all(error.height <= heights[error.x] for error in calls.error_bars)  # errors never outgrow their calls
    latency = latency_chart(data)
    for line in latency.lines:
        for point in line.points.split():
            x, y = (float(value) for value in point.split(","))
            assert 0 <= x <= WIDTH and 0 <= y <= HEIGHT
    assert [line.name for line in latency.lines] == ["p50", "p95", "p99"]


def test_a_period_without_calls_says_so() -> None:
    quiet = [{"start": "2026-01-01T00:00:00Z", "calls": 0, "errors": 0, "p50": None, "p95": None, "p99": None}]
    assert latency_chart(quiet).summary == "No calls in this period"
    assert calls_chart([]).summary == "No calls in this period"


def test_buckets_are_round_and_keep_charts_readable() -> None:
    assert bucket_for(3600) == 300  # an hour: 12 five-minute bars
    assert bucket_for(24 * 3600) == 1800
    assert bucket_for(30 * 24 * 3600) == 86400
