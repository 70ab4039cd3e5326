"""flink_env.table_env on Managed Flink (flink.service_configured): the job leaves the
service's options alone and sets only keys on the service's programmatic list."""

from __future__ import annotations

from genai_apm.flink import env as flink_env
from genai_apm.settings import config

# what the service decides from the application's configuration (docs/aws.md)
SERVICE_OWNED = (
    "parallelism.default",
    "state.backend.type",
    "execution.checkpointing.interval",
    "execution.checkpointing.storage",
    "execution.checkpointing.dir",
    "execution.checkpointing.externalized-checkpoint-retention",
    "restart-strategy.type",
    "python.executable",
)


def set_keys(t_env) -> dict[str, str]:
    """The keys set on a TableConfig (not the cluster's defaults beneath), less those PyFlink
    sets itself in every TableEnvironment (python.loopback-server.address, ...)."""
    from pyflink.table import EnvironmentSettings, TableEnvironment

    bare = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    own = bare.get_config().get_configuration().to_dict()
    found = t_env.get_config().get_configuration().to_dict()
    return {k: v for k, v in found.items() if k not in own}


def test_on_managed_flink_only_the_services_programmatic_options_are_set(tmp_path, capsys):
    base = config.load(path=None, environ={}).replace(stack={"state_dir": str(tmp_path)})
    local = set_keys(flink_env.table_env(base, "t", bounded=True))
    managed = flink_env.table_env(
        base.replace(flink={"service_configured": True}), "t", bounded=True
    )
    found = set_keys(managed)

    # the local run sets every one of them (else this test would prove nothing)
    assert set(SERVICE_OWNED) <= set(local)
    assert not set(SERVICE_OWNED) & set(found)
    assert all(k.startswith(flink_env.SERVICE_SETTABLE) for k in found), sorted(found)
    # what the service allows is set as locally: same values
    assert found == {k: v for k, v in local.items() if k.startswith(flink_env.SERVICE_SETTABLE)}
    assert found["pipeline.object-reuse"] == "true" and found["table.local-time-zone"] == "UTC"
    # each dropped key is said once, on stderr (the application's log)
    err = capsys.readouterr().err
    assert all(f"the service sets {k};" in err for k in SERVICE_OWNED), err
