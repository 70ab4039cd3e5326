"""`genai-apm consume` filters: model, app and time over records of any topic's shape."""

from __future__ import annotations

import datetime as dt

from genai_apm.record_filter import RecordFilter, record_time, table_columns, table_rows

T = dt.datetime(2026, 1, 1, 0, 5, tzinfo=dt.UTC)


def test_record_time_comes_from_the_first_time_field_the_record_has():
    assert record_time({"window_start": "2026-01-01T00:05:00Z", "event_time": 0}) == T
    assert record_time({"alert_time": "2026-01-01T00:05:00"}) == T  # no zone: UTC
    assert record_time({"event_time": int(T.timestamp() * 1000)}) == T  # epoch ms
    assert record_time({"event_time": "2026-01-01T01:05:00+01:00"}) == T
    assert record_time({"model_id": "m"}) is None
    assert record_time({"event_time": "yesterday"}) is None


def test_filters_combine_and_a_missing_field_does_not_match():
    rows = [
        {"model_id": "a", "app_id": "chat", "window_start": "2026-01-01T00:04:00Z"},
        {"model_id": "a", "app_id": "chat", "window_start": "2026-01-01T00:05:00Z"},
        {"model_id": "a", "app_id": "*", "window_start": "2026-01-01T00:06:00Z"},
        {"model_id": "b", "app_id": "chat", "window_start": "2026-01-01T00:07:00Z"},
        {"rule": "no times, no keys"},
    ]
    assert [r for r in rows if RecordFilter()(r)] == rows
    assert [r for r in rows if RecordFilter(model="a")(r)] == rows[:3]
    assert [r for r in rows if RecordFilter(app="chat")(r)] == [rows[0], rows[1], rows[3]]
    assert [r for r in rows if RecordFilter("a", "chat", T)(r)] == [rows[1]]
    assert [r for r in rows if RecordFilter(since=T)(r)] == rows[1:4]


def test_table_columns_skip_maps_unless_asked_for():
    rows = [{"model_id": "a", "latency_hist": {"1": 2}, "p99": 3.0}, {"model_id": "b", "x": 1}]
    assert table_columns(rows) == ["model_id", "p99", "x"]
    assert table_columns(rows, ["x", "model_id"]) == ["x", "model_id"]
    assert table_rows(rows, ["model_id", "x"]) == [("a", None), ("b", 1)]
