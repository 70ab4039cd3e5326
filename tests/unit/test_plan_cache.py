"""plan_cache.plan_key: the same key exactly when the job would be planned the same way.

Where a job's data lives (topics, folders, brokers) stays out of the key, so a plan compiled
for one deployment or test serves another of the same shape; everything the optimiser reads
(the SQL and the settings' values in it, the table.* options, the tables' schemas and formats)
is in it, so a changed job never loads a stale plan."""

from __future__ import annotations

from genai_apm.flink import env as flink_env
from genai_apm.flink import plan_cache
from genai_apm.jobs import latency


def key(settings, tables_path: str, input_path: str) -> str:
    t_env, statements = latency.SPEC.plan(settings, input_path=input_path, output_path=tables_path)
    return plan_cache.plan_key(t_env, statements)


def test_the_key_ignores_where_data_lives_and_follows_what_shapes_the_plan(base_settings, tmp_path):
    first = key(base_settings, str(tmp_path / "a"), str(tmp_path / "in-a"))
    moved = key(
        base_settings.replace(topics={"invocations": "elsewhere"}),
        str(tmp_path / "b"),
        str(tmp_path / "in-b"),
    )
    assert moved == first

    other_sql = key(
        base_settings.replace(latency={"percentiles": (0.5, 0.99)}),
        str(tmp_path / "a"),
        str(tmp_path / "in-a"),
    )
    other_option = key(  # table.exec.source.idle-timeout: stored inside the plan by Flink
        base_settings.replace(flink={"idle_timeout_s": 30}),
        str(tmp_path / "a"),
        str(tmp_path / "in-a"),
    )
    assert len({first, other_sql, other_option}) == 3


def test_the_cache_folder_comes_from_settings_and_is_off_on_managed_flink(base_settings, tmp_path):
    on = flink_env.table_env(
        base_settings.replace(flink={"plan_cache_dir": str(tmp_path / "plans")}), "t"
    )
    assert on.get_config().get(plan_cache.DIR_OPTION, "") == str(tmp_path / "plans")
    off = flink_env.table_env(base_settings.replace(flink={"plan_cache": False}), "t")
    assert off.get_config().get(plan_cache.DIR_OPTION, "") == ""
    managed = flink_env.table_env(base_settings.replace(flink={"service_configured": True}), "t")
    assert managed.get_config().get(plan_cache.DIR_OPTION, "") == ""
