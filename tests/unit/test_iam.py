"""Each function's IAM role as SAM expands template.yaml, evaluated by IAM's rules (local/iam.py).

The roles are read from samtranslator's expansion (SAM's policy templates, the managed
policies it attaches), resolved against a local stack's resources, and every request a function
makes is judged against its own role. These tests drive real botocore clients through the hook.
"""

from __future__ import annotations

import copy
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from local.iam import AccessChecker, LocalResources, Roles, acting_as, request_target
from local.ports import free_port
from local.template import load_template

BASE = "http://127.0.0.1:4566/000000000000"
QUEUES = {
    "OrdersQueue": f"{BASE}/t-orders",
    "OrdersDeadLetterQueue": f"{BASE}/t-orders-dlq",
    "StatusEventsQueue": f"{BASE}/t-status-events",
    "StatusEventsDeadLetterQueue": f"{BASE}/t-status-events-dlq",
}
WALLET = "arn:aws:secretsmanager:us-east-1:000000000000:secret:t/wallet-AbCdEf"
RESOURCES = LocalResources.for_stack(QUEUES, {"WalletSecret": WALLET}, websocket_api="wsapi")


@pytest.fixture(scope="module")
def roles() -> Roles:
    return Roles(RESOURCES)


def allowed(roles: Roles, function: str, service: str, op: str, **params: Any) -> bool:
    action, resource = request_target(service, op, params, RESOURCES)
    return roles.evaluate(function, action, resource).allowed


@pytest.mark.parametrize("function", ["notify", "ws_connect"])
def test_functions_that_close_sockets_may_post_and_delete_but_not_get(
    roles: Roles, function: str
) -> None:
    for op in ("PostToConnection", "DeleteConnection"):
        assert allowed(roles, function, "apigatewaymanagementapi", op, ConnectionId="c1="), op
    assert not allowed(
        roles, function, "apigatewaymanagementapi", "GetConnection", ConnectionId="c"
    )


def test_management_api_grants_are_per_function(roles: Roles) -> None:
    for function in ("submit", "execute", "watch", "quote", "authorizer", "migrate"):
        assert not allowed(
            roles, function, "apigatewaymanagementapi", "PostToConnection", ConnectionId="c"
        )


def test_queue_rights_follow_each_function_and_mapping(roles: Roles) -> None:
    orders, status = QUEUES["OrdersQueue"], QUEUES["StatusEventsQueue"]
    assert allowed(roles, "submit", "sqs", "SendMessage", QueueUrl=orders)
    assert allowed(roles, "submit", "sqs", "SendMessageBatch", QueueUrl=status)  # SendMessage*
    assert not allowed(roles, "submit", "sqs", "ReceiveMessage", QueueUrl=orders)
    assert not allowed(roles, "notify", "sqs", "SendMessage", QueueUrl=orders)
    # What the event source mappings do with each function's role.
    assert allowed(roles, "notify", "sqs", "ReceiveMessage", QueueUrl=status)
    assert not allowed(roles, "notify", "sqs", "ReceiveMessage", QueueUrl=orders)
    dlq = QUEUES["OrdersDeadLetterQueue"]
    # (DeleteMessageBatch is authorised as sqs:DeleteMessage: IAM has no batch actions.)
    for op in ("ReceiveMessage", "DeleteMessage", "DeleteMessageBatch", "GetQueueAttributes"):
        assert allowed(roles, "execute", "sqs", op, QueueUrl=dlq), op
    assert not allowed(roles, "execute", "sqs", "ChangeMessageVisibility", QueueUrl=dlq)
    assert allowed(roles, "execute", "sqs", "ChangeMessageVisibility", QueueUrl=orders)


def test_secrets_are_read_by_their_function_only(roles: Roles) -> None:
    assert allowed(roles, "execute", "secretsmanager", "GetSecretValue", SecretId=WALLET)
    assert not allowed(roles, "watch", "secretsmanager", "GetSecretValue", SecretId=WALLET)
    assert allowed(roles, "watch", "secretsmanager", "DescribeSecret", SecretId=WALLET)
    assert not allowed(roles, "submit", "secretsmanager", "DescribeSecret", SecretId=WALLET)


def test_managed_policies_count_from_their_published_documents(roles: Roles) -> None:
    log_group = "arn:aws:logs:us-east-1:000000000000:log-group:/aws/lambda/x:*"
    assert roles.evaluate("execute", "logs:PutLogEvents", log_group).allowed  # BasicExecution
    assert roles.evaluate("execute", "xray:PutTraceSegments", "*").allowed  # XrayWriteOnly
    assert not roles.evaluate("execute", "s3:GetObject", "arn:aws:s3:::bucket/key").allowed


def _without_delete_grant(doc: dict[str, Any], function: str) -> dict[str, Any]:
    changed = copy.deepcopy(doc)
    for policy in changed["Resources"][function]["Properties"]["Policies"]:
        for st in policy.get("Statement", []) if isinstance(policy, dict) else []:
            resources = st.get("Resource")
            if isinstance(resources, list):
                st["Resource"] = [r for r in resources if "/DELETE/" not in str(r)]
    return changed


def test_removing_the_delete_statement_denies_delete_connection() -> None:
    roles = Roles(RESOURCES, _without_delete_grant(load_template(), "NotifyFunction"))
    action, resource = request_target(
        "apigatewaymanagementapi", "DeleteConnection", {"ConnectionId": "c1"}, RESOURCES
    )
    decision = roles.evaluate("notify", action, resource)
    assert not decision.allowed
    assert "arn:aws:execute-api:us-east-1:000000000000:wsapi/prod/DELETE/@connections/c1" in (
        decision.reason
    )
    assert roles.evaluate("ws_connect", action, resource).allowed  # the other still has it


def test_explicit_deny_wins_and_conditions_fail_closed() -> None:
    doc = copy.deepcopy(load_template())
    doc["Resources"]["SubmitFunction"]["Properties"]["Policies"].append(
        {
            "Statement": [
                {"Effect": "Deny", "Action": "sqs:Send*", "Resource": "*"},
                {
                    "Effect": "Allow",
                    "Action": "sqs:PurgeQueue",
                    "Resource": "*",
                    "Condition": {"Bool": {"aws:SecureTransport": "true"}},
                },
            ]
        }
    )
    roles = Roles(RESOURCES, doc)
    orders = QUEUES["OrdersQueue"]
    denied = roles.evaluate(
        "submit", *request_target("sqs", "SendMessage", {"QueueUrl": orders}, RESOURCES)
    )
    assert not denied.allowed
    assert "explicitly denied" in denied.reason
    purge = request_target("sqs", "PurgeQueue", {"QueueUrl": orders}, RESOURCES)
    assert not roles.evaluate("submit", *purge).allowed


def test_a_denied_call_fails_as_access_denied_and_never_leaves(roles: Roles) -> None:
    checker = AccessChecker(roles)
    # Nothing listens there: an allowed call gets as far as connecting and fails on that.
    endpoint = f"http://127.0.0.1:{free_port()}"
    config = Config(retries={"max_attempts": 1}, connect_timeout=1)
    sqs = boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=config,
    )
    with acting_as("notify", checker):
        with pytest.raises(botocore.exceptions.ClientError) as denied:
            sqs.send_message(QueueUrl=QUEUES["OrdersQueue"], MessageBody="x")
        with pytest.raises(botocore.exceptions.EndpointConnectionError):
            sqs.receive_message(QueueUrl=QUEUES["StatusEventsQueue"])
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert "sqs:SendMessage" in str(denied.value)
    assert [(d.function, d.action) for d in checker.denials] == [("notify", "sqs:SendMessage")]
    assert list(checker.allowed) == [
        ("notify", "sqs:ReceiveMessage", "arn:aws:sqs:us-east-1:000000000000:t-status-events")
    ]
    # Outside any function (the stack's own set-up) nothing is checked.
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        sqs.send_message(QueueUrl=QUEUES["OrdersQueue"], MessageBody="x")
    assert len(checker.denials) == 1
