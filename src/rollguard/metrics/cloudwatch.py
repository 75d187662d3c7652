"""Amazon CloudWatch: the policy's metrics through ``GetMetricData`` (boto3).

Each query names a namespace, a metric, its dimensions (``$version`` may
appear in their values: the version's dimension) and a statistic. The window
is asked for as one period: ``StartTime`` is the window's start rounded down
to the minute (as CloudWatch rounds it), the period the whole minutes up to
the window's end, so CloudWatch answers one value; should it answer several
(an unaligned period), ``Sum`` and ``SampleCount`` add up, ``Maximum`` and
``Minimum`` take the extreme and any other statistic is an error rather than
a guessed mean. No value is no data. ``scale`` multiplies the value (seconds
to milliseconds, bytes to MiB).

Credentials come from boto3's chain (environment, shared files, instance
role) or a ``profile``, or from two variables the policy names; they never
appear in a reason. botocore bounds the time of each attempt (``timeout``)
and retries (``retries``) in its standard mode. boto3 blocks, so each call
runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from rollguard.errors import ProviderError
from rollguard.metrics.http import QueryFailed, env_secret, shown
from rollguard.metrics.influxdb import number
from rollguard.metrics.templated import QueryProvider, Window, fill
from rollguard.policy.sources import CloudWatchMetric, CloudWatchSource
from rollguard.timestamps import utc

#: Error codes that mean the credentials (not the query) were refused.
CREDENTIAL_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "AccessDenied",
        "AccessDeniedException",
        "ExpiredToken",
        "ExpiredTokenException",
        "MissingAuthenticationToken",
    }
)
_ADDED = {"Sum", "SampleCount"}


class CloudWatchProvider(QueryProvider[CloudWatchMetric]):
    """Answers rollguard's queries with the policy's CloudWatch metrics."""

    def __init__(self, source: CloudWatchSource) -> None:
        super().__init__(queries=source.queries, signals=source.signals, versions=source.versions)
        self._where = str(source.endpoint_url) if source.endpoint_url else source.region
        keys: dict[str, str] = {}
        if source.access_key_id_env is not None and source.secret_access_key_env is not None:
            keys = {
                "aws_access_key_id": env_secret(
                    source.access_key_id_env, "metrics.access_key_id_env"
                ),
                "aws_secret_access_key": env_secret(
                    source.secret_access_key_env, "metrics.secret_access_key_env"
                ),
            }
        self._credentials_field = (
            "metrics.access_key_id_env and metrics.secret_access_key_env"
            if keys
            else "the AWS credential chain (metrics.profile, AWS_* variables)"
        )
        try:
            session = boto3.session.Session(profile_name=source.profile, **keys)
        except botocore.exceptions.ProfileNotFound as exc:
            raise ProviderError(f"metrics.profile: {exc}") from None
        config = botocore.config.Config(
            connect_timeout=source.timeout,
            read_timeout=source.timeout,
            retries={"total_max_attempts": source.retries + 1, "mode": "standard"},
        )
        self._client: Any = session.client(
            "cloudwatch",
            region_name=source.region,
            endpoint_url=str(source.endpoint_url) if source.endpoint_url else None,
            config=config,
        )

    async def aclose(self) -> None:
        await asyncio.to_thread(self._client.close)

    async def run(self, query: CloudWatchMetric, window: Window, *, count: bool) -> float:
        start = math.floor(window.start / 60) * 60
        period = max(60, math.ceil((window.end - start) / 60) * 60)
        dimensions = [
            {"Name": name, "Value": fill(value, {"version": window.label})}
            for name, value in sorted(query.dimensions.items())
        ]
        request = {
            "MetricDataQueries": [
                {
                    "Id": "q",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": query.namespace,
                            "MetricName": query.metric,
                            "Dimensions": dimensions,
                        },
                        "Period": period,
                        "Stat": query.stat,
                    },
                    "ReturnData": True,
                }
            ],
            "StartTime": utc(start),
            "EndTime": utc(window.end),
        }
        answer = await asyncio.to_thread(self._call, request)
        values = _values(answer, query)
        return _combine(values, query) * query.scale

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        """One GetMetricData call; every botocore failure becomes a QueryFailed."""
        try:
            answer: dict[str, Any] = self._client.get_metric_data(**request)
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "?"))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in CREDENTIAL_CODES or status in (401, 403):
                raise QueryFailed(
                    f"CloudWatch at {self._where} refused the credentials ({code}); "
                    f"check {self._credentials_field}"
                ) from None
            message = shown(error.get("Message", ""))
            raise QueryFailed(f"CloudWatch rejected the query ({code}): {message}") from None
        except (
            botocore.exceptions.ReadTimeoutError,
            botocore.exceptions.ConnectTimeoutError,
        ) as exc:
            reason = f"CloudWatch at {self._where} did not answer in time ({exc})"
            raise QueryFailed(reason) from None
        except botocore.exceptions.EndpointConnectionError as exc:
            raise QueryFailed(f"cannot reach CloudWatch at {self._where}: {exc}") from None
        except botocore.exceptions.NoCredentialsError:
            raise QueryFailed(
                f"no AWS credentials for CloudWatch; check {self._credentials_field}"
            ) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise QueryFailed(f"CloudWatch at {self._where}: {shown(exc)}") from None
        return answer


def _values(answer: dict[str, Any], query: CloudWatchMetric) -> list[float]:
    """The values of the one result, or why there are none."""
    results = answer.get("MetricDataResults")
    if not isinstance(results, list) or len(results) != 1 or not isinstance(results[0], dict):
        raise QueryFailed(f"CloudWatch answered without one result: {shown(answer)}")
    result = results[0]
    status = result.get("StatusCode", "Complete")
    if status not in ("Complete", "PartialData"):
        messages = [m.get("Value", "") for m in answer.get("Messages", []) if isinstance(m, dict)]
        raise QueryFailed(f"CloudWatch answered {status}: {shown('; '.join(messages))}")
    raw = result.get("Values") or []
    if not raw:
        raise QueryFailed(
            f"no {query.namespace}/{query.metric} {query.stat} in the window", no_data=True
        )
    return [number(value, "CloudWatch", f"{query.namespace}/{query.metric}") for value in raw]


def _combine(values: list[float], query: CloudWatchMetric) -> float:
    """One number for the window from the periods CloudWatch answered."""
    if len(values) == 1:
        return values[0]
    if query.stat in _ADDED:
        return math.fsum(values)
    if query.stat == "Maximum":
        return max(values)
    if query.stat == "Minimum":
        return min(values)
    raise QueryFailed(
        f"CloudWatch answered {len(values)} periods of {query.stat} for "
        f"{query.namespace}/{query.metric}; they cannot be combined into one"
    )
