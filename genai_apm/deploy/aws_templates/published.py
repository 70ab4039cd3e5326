"""What the CloudWatch exporter publishes, as the alarms and the dashboard name it."""

from __future__ import annotations

from genai_apm.settings.config import Settings


class Published:
    """Names the exporter uses for latency rows, as genai_apm.export.cloudwatch declares them."""

    def __init__(self, settings: Settings):
        from genai_apm.export import cloudwatch

        self.namespace = settings.cloudwatch.namespace
        self.units = cloudwatch.latency_metric_units()
        # the most specific dimension set (model x app); rollups drop dimensions from the end
        self.dimensions = [name for name, _ in cloudwatch.LATENCY_DIMENSIONS]

    def metric(self, name: str) -> str:
        if name not in self.units:
            raise RuntimeError(
                f"the CloudWatch exporter no longer publishes {name!r} "
                f"(it publishes {', '.join(sorted(self.units))})"
            )
        return name

    @property
    def model(self) -> str:
        return self.dimensions[0]

    @property
    def app(self) -> str:
        return self.dimensions[1]
