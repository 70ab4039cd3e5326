"""AWS access from settings: boto3 clients and the options Flink's S3 filesystem needs.

Every AWS call of the project goes through here, so the endpoint (moto locally), region and
credentials are set in one place. Credentials left empty fall back to the default chain
(environment, profile, instance or task role); they are never logged.
"""

from __future__ import annotations

from genai_apm.settings.config import AwsSettings


def client(aws: AwsSettings, service: str, **config):
    """A boto3 client for ``service``; ``config`` goes to botocore's Config (retries, ...)."""
    import boto3
    from botocore.config import Config

    kw: dict = {"region_name": aws.region}
    if aws.endpoint_url:
        kw["endpoint_url"] = aws.endpoint_url
    if aws.access_key_id:
        kw["aws_access_key_id"] = aws.access_key_id
        kw["aws_secret_access_key"] = aws.secret_access_key
    if config:
        kw["config"] = Config(**config)
    return boto3.client(service, **kw)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> ``("bucket", "a/b")``."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix.strip("/")


def flink_s3_options(aws: AwsSettings) -> dict[str, str]:
    """flink-s3-fs-hadoop options (it mirrors ``s3.*`` to Hadoop's ``fs.s3a.*``).

    Flink masks keys containing "secret" when it logs its configuration, so the secret key
    never shows up in the logs; the standalone cluster's config file is private to its owner.
    """
    options = {"s3.endpoint.region": aws.region}
    if aws.endpoint_url:
        # moto and MinIO serve buckets under the path, not as virtual hosts
        options["s3.endpoint"] = aws.endpoint_url
        options["s3.path.style.access"] = "true"
    if aws.access_key_id:
        options["s3.access-key"] = aws.access_key_id
        options["s3.secret-key"] = aws.secret_access_key
    return options
