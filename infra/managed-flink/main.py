"""genai-apm on Amazon Managed Service for Apache Flink: the file the run option `python` names.

`make package` puts this beside python/ (the genai_apm package, also the run option
`pyFiles`) and .cache/jars/flink/ (the connector jar, run option `jarfile`). It runs the job
the property group `genai_apm` names (key `job`), with settings from the `genai_apm.<section>`
groups (genai_apm.settings.app_properties). The service passes no arguments; any given go to the job
(the package test adds `--bounded`, so a local run ends).
"""

import os
import sys

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, os.path.join(HERE, "python"))
# genai_apm.home finds the connector jar under $GENAI_APM_HOME/.cache/jars/flink: the same
# file Managed Flink was given as `jarfile`, so the job's pipeline.jars adds nothing new
os.environ.setdefault("GENAI_APM_HOME", HERE)


def main() -> int:
    from genai_apm.errors import GenaiApmError
    from genai_apm.jobs import load
    from genai_apm.settings import app_properties

    try:
        path = app_properties.properties_path(os.environ)
        if path is None:
            raise GenaiApmError(
                f"no {app_properties.MANAGED_FLINK_PATH} and no ${app_properties.ENV_VAR}: "
                "this runs on Managed Flink, or locally with the variable set"
            )
        return load(app_properties.job(path)).main(sys.argv[1:])
    except GenaiApmError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
