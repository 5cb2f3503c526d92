"""What a first deploy on a fresh account needs, read from the template as CloudFormation gets it
after SAM's transform (aws-sam-translator, the library `sam build`/`sam deploy` and the
AWS::Serverless transform run): no reservation when ReserveConcurrency=false, SQS rights on
the stack's own queues only, the app functions after the migration and their log groups, a
custom resource that cannot hang the stack, a database a rollback can delete."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from samtranslator.translator.transform import transform

from local.template import condition, function_id, load_template, resolve, resource

APP_FUNCTIONS = ("submit", "ws_connect", "execute", "notify", "authorizer", "quote", "watch")
# The managed policies SAM attaches by name (the translator needs their ARNs offline).
MANAGED = {
    name: f"arn:aws:iam::aws:policy/{path}{name}"
    for name, path in (
        ("AWSLambdaBasicExecutionRole", "service-role/"),
        ("AWSLambdaVPCAccessExecutionRole", "service-role/"),
        ("AWSLambdaSQSQueueExecutionRole", "service-role/"),
        ("AWSXrayWriteOnlyAccess", ""),
    )
}


class _Policies:
    def load(self) -> dict[str, str]:
        return MANAGED


def _render(value: Any, doc: dict[str, Any], parameters: dict[str, str]) -> Any:
    """Every Fn::If resolved as a deploy with `parameters` resolves it (NoValue: dropped)."""
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            return _render(resolve(value, doc, parameters), doc, parameters)
        out = {}
        for k, v in value.items():
            rendered = _render(v, doc, parameters)
            if rendered is not None or v is None:
                out[k] = rendered
        return out
    if isinstance(value, list):
        return [r for r in (_render(v, doc, parameters) for v in value) if r is not None]
    return value


def transformed(parameters: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """template.yaml after SAM's transform, with its conditions decided by `parameters` (and the
    defaults) and the resources whose condition is false left out, as CloudFormation would."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    doc = copy.deepcopy(load_template())
    for res in doc["Resources"].values():  # sam build's job: the code is uploaded by then
        props = res.get("Properties", {})
        if "CodeUri" in props:
            props["CodeUri"] = "s3://bucket/function.zip"
        if "ContentUri" in props:
            props["ContentUri"] = "s3://bucket/layer.zip"
    out = transform(doc, parameters, _Policies())
    out.setdefault("Parameters", doc["Parameters"])
    out.setdefault("Conditions", doc["Conditions"])
    kept = {
        name: res
        for name, res in out["Resources"].items()
        if "Condition" not in res or condition(res["Condition"], out, parameters)
    }
    return {**out, "Resources": _render(kept, out, parameters)}


@pytest.mark.parametrize("reserve", ["false", "true"])
def test_reserve_concurrency_false_renders_no_reservation(
    reserve: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = transformed({"ReserveConcurrency": reserve}, monkeypatch)
    reserved = {
        name: res["Properties"]["ReservedConcurrentExecutions"]
        for name, res in out["Resources"].items()
        if res["Type"] == "AWS::Lambda::Function"
        and "ReservedConcurrentExecutions" in res["Properties"]
    }
    if reserve == "false":
        assert reserved == {}
        assert "ReservedConcurrentExecutions" not in json.dumps(out["Resources"])
    else:  # the default ExecuteMaxConcurrency (2) + the dead-letter mapping's 2; the watcher 1
        assert reserved == {"ExecuteFunction": 4, "WatchFunction": 1}


def test_no_role_may_touch_every_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """SAM's `Events: SQS` attaches AWSLambdaSQSQueueExecutionRole (Receive/Delete on `*`) to the
    function's role, whatever else it is granted: the consumers' mappings are resources of their
    own, and each role names the queues it uses."""
    out = transformed({}, monkeypatch)
    roles = {k: v for k, v in out["Resources"].items() if v["Type"] == "AWS::IAM::Role"}
    assert "ExecuteFunctionRole" in roles
    sqs_statements = 0
    for name, role in roles.items():
        assert MANAGED["AWSLambdaSQSQueueExecutionRole"] not in role["Properties"].get(
            "ManagedPolicyArns", []
        ), name
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"]
                actions = [actions] if isinstance(actions, str) else actions
                if not any(a.startswith("sqs:") for a in actions):
                    continue
                sqs_statements += 1
                assert "sqs:*" not in actions, name
                resources = statement["Resource"]
                resources = resources if isinstance(resources, list) else [resources]
                assert "*" not in resources, (name, statement)
                for r in resources:
                    assert "Fn::GetAtt" in r or "Fn::Sub" in r, (name, r)  # a queue of ours
    assert sqs_statements >= 6
    mappings = {
        (m["Properties"]["EventSourceArn"]["Fn::GetAtt"][0], m["Properties"]["FunctionName"]["Ref"])
        for m in out["Resources"].values()
        if m["Type"] == "AWS::Lambda::EventSourceMapping"
    }
    assert mappings == {
        ("OrdersQueue", "ExecuteFunction"),
        ("OrdersDeadLetterQueue", "ExecuteFunction"),
        ("StatusEventsQueue", "NotifyFunction"),
    }


def test_app_functions_wait_for_the_migration_and_their_log_groups() -> None:
    tpl = load_template()
    for name in APP_FUNCTIONS:
        fn = resource(function_id(name, tpl), tpl)
        assert "DatabaseSchema" in fn["DependsOn"], name  # new code after the new schema
    for name in (*APP_FUNCTIONS, "migrate"):
        fn = resource(function_id(name, tpl), tpl)
        group = fn["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]  # a Ref: made before it
        group_name = json.dumps(resource(group, tpl)["Properties"]["LogGroupName"])
        assert "Function" not in group_name, name  # named without the function: no cycle
        assert resource(group, tpl)["Properties"]["RetentionInDays"] == 30
    # The access-log stage names the account's logging role when this stack sets it.
    stage = resource("WsStage", tpl)["Properties"]
    assert stage["Description"]["Fn::If"][0] == "CreateApiGatewayLogsRole"
    assert "${ApiGatewayAccount}" in stage["Description"]["Fn::If"][1]["Fn::Sub"]


def test_the_migration_cannot_hang_the_stack_and_a_rollback_can_delete_the_database() -> None:
    tpl = load_template()
    schema = resource("DatabaseSchema", tpl)["Properties"]
    timeout = resource("MigrateFunction", tpl)["Properties"]["Timeout"]
    assert timeout < schema["ServiceTimeout"] < 3600
    assert tpl["Parameters"]["DbDeletionProtection"]["Default"] == "false"
    db = resource("Database", tpl)["Properties"]
    assert db["MaxAllocatedStorage"] == {"Ref": "DbMaxAllocatedStorage"}
    assert (
        tpl["Parameters"]["DbMaxAllocatedStorage"]["MinValue"]
        > tpl["Parameters"]["DbAllocatedStorage"]["MinValue"]
    )


def test_the_authorizers_401s_are_not_function_errors() -> None:
    """A keyless WebSocket connect raises Unauthorized (the 401), which Lambda counts in Errors;
    the alarm subtracts the authorizer's own count of them."""
    alarm = resource("FunctionErrorsAlarm", load_template())["Properties"]
    by_id = {m["Id"]: m for m in alarm["Metrics"]}
    assert by_id["refused"]["MetricStat"]["Metric"]["MetricName"] == "ApiKeyMissing"
    assert "f1raw" in by_id["f1"]["Expression"]
    assert "refused" in by_id["f1"]["Expression"]
    [total] = [m for m in alarm["Metrics"] if m.get("ReturnData")]
    assert "f1" in total["Expression"]
    assert "f1raw" not in total["Expression"]


def test_the_layer_ships_boto3_with_its_own_botocore() -> None:
    """The tracer brings botocore into the common layer, which shadows the runtime's: boto3 is
    shipped beside it, at the release made with that botocore."""
    root = Path(__file__).resolve().parents[2]
    pins = dict(
        line.split("==")
        for line in (root / "layers" / "constraints.txt").read_text().splitlines()
        if "==" in line
    )
    assert pins["boto3"] == pins["botocore"]
    common = (root / "layers" / "common" / "requirements.txt").read_text().splitlines()
    assert "boto3" in common


def test_every_metric_math_alarm_fits_cloudwatchs_limits() -> None:
    """PutMetricAlarm takes at most 10 queries that retrieve a metric and 10 expressions, one
    of which the alarm watches (ReturnData)."""
    tpl = load_template()
    for name, res in tpl["Resources"].items():
        metrics = (
            res["Properties"].get("Metrics") if res["Type"] == "AWS::CloudWatch::Alarm" else None
        )
        if not metrics:
            continue
        assert sum("MetricStat" in m for m in metrics) <= 10, name
        assert sum("Expression" in m for m in metrics) <= 10, name
        assert sum(bool(m.get("ReturnData")) for m in metrics) == 1, name
