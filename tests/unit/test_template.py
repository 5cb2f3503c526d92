"""What a deploy depends on, read from template.yaml (cfn-lint and sam validate check the rest)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from local.template import (
    function_environment,
    function_id,
    http_auth,
    http_cors,
    http_routes,
    load_template,
    queue_settings,
    resolve,
    resource,
    route_matches,
    ws_connect_authorizer,
    ws_route_selection_expression,
    ws_routes,
)

ROOT = Path(__file__).resolve().parents[2]
ORDER_ID = "0b6a4c3e-5f1d-4c7a-9a43-2d3c7e6b1f00"
FUNCTIONS = ("submit", "ws_connect", "execute", "notify", "authorizer")


@pytest.fixture(scope="module")
def tpl() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


def _of_type(tpl: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in tpl["Resources"].items() if v["Type"] == kind}


def _statements(tpl: dict[str, Any], name: str) -> list[dict[str, Any]]:
    policies = resource(function_id(name, tpl), tpl)["Properties"].get("Policies", [])
    return [s for p in policies if "Statement" in p for s in p["Statement"]]


def _policy_templates(tpl: dict[str, Any], name: str) -> list[tuple[str, Any]]:
    policies = resource(function_id(name, tpl), tpl)["Properties"].get("Policies", [])
    return [(k, v) for p in policies for k, v in p.items() if k != "Statement"]


def test_orders_queue_redrive_visibility_and_consumer(tpl: dict[str, Any]) -> None:
    qs = queue_settings("OrdersQueue", tpl)
    assert qs.consumer == "ExecuteFunction"
    assert qs.max_receive_count == 3
    assert qs.function_timeout == 120
    assert qs.visibility_timeout >= 6 * qs.function_timeout
    assert qs.max_concurrency == 10
    assert qs.batch_size == 1  # one order per invocation: 10 concurrent = 10 orders in flight
    assert qs.report_batch_item_failures
    assert qs.dead_letter_queue == "OrdersDeadLetterQueue"


def test_status_queue_feeds_notify_with_a_dlq(tpl: dict[str, Any]) -> None:
    qs = queue_settings("StatusEventsQueue", tpl)
    assert qs.consumer == "NotifyFunction"
    assert qs.max_receive_count == 3
    assert qs.visibility_timeout >= 6 * qs.function_timeout
    assert qs.report_batch_item_failures
    assert qs.dead_letter_queue in tpl["Resources"]


def test_dlq_alarm_watches_the_orders_dlq(tpl: dict[str, Any]) -> None:
    alarms = _of_type(tpl, "AWS::CloudWatch::Alarm")
    watched = {
        d["Value"]["Fn::GetAtt"][0]: a["Properties"]
        for a in alarms.values()
        for d in a["Properties"].get("Dimensions", [])
        if isinstance(d["Value"], dict) and "Fn::GetAtt" in d["Value"]
    }
    props = watched["OrdersDeadLetterQueue"]
    assert props["MetricName"] == "NumberOfMessagesReceived"  # the DLQ is consumed (settled)
    assert props["Namespace"] == "AWS/SQS"
    assert props["Threshold"] == 0
    assert props["ComparisonOperator"] == "GreaterThanThreshold"


def test_execute_settles_dead_letters(tpl: dict[str, Any]) -> None:
    events = resource("ExecuteFunction", tpl)["Properties"]["Events"]
    dead = events["OrdersDeadLetters"]["Properties"]
    assert dead["Queue"] == {"Fn::GetAtt": ["OrdersDeadLetterQueue", "Arn"]}
    assert dead["BatchSize"] == 1
    dlq = resource("OrdersDeadLetterQueue", tpl)["Properties"]
    assert dlq["VisibilityTimeout"] >= 6 * resource("ExecuteFunction", tpl)["Properties"]["Timeout"]


def test_websocket_api_routes(tpl: dict[str, Any]) -> None:
    assert ws_route_selection_expression(tpl) == "$request.body.action"
    assert set(ws_routes(tpl)) == {"$connect", "$disconnect", "$default", "subscribe"}
    assert _of_type(tpl, "AWS::ApiGatewayV2::Deployment")
    (stage,) = _of_type(tpl, "AWS::ApiGatewayV2::Stage").values()
    settings = stage["Properties"]["DefaultRouteSettings"]
    assert settings["ThrottlingRateLimit"] == {"Ref": "WsThrottlingRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "WsThrottlingBurstLimit"}
    assert resolve(settings["ThrottlingRateLimit"], tpl) > 0
    perms = _of_type(tpl, "AWS::Lambda::Permission").values()
    assert any(p["Properties"]["FunctionName"] == {"Ref": "WsConnectFunction"} for p in perms)


def test_http_api_routes_reach_submit(tpl: dict[str, Any]) -> None:
    assert http_routes(tpl) == {
        ("POST", "/api/orders/execute"): "SubmitFunction",
        ("GET", "/api/orders/{orderId}"): "SubmitFunction",
        ("GET", "/api/orders"): "SubmitFunction",
        ("GET", "/health"): "SubmitFunction",
        ("GET", "/openapi.json"): "SubmitFunction",
        ("GET", "/docs"): "SubmitFunction",
        ("GET", "/docs/{proxy+}"): "SubmitFunction",
        ("GET", "/"): "SubmitFunction",
        ("GET", "/console/{proxy+}"): "SubmitFunction",
    }
    api = resource("HttpApi", tpl)["Properties"]
    assert api["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": {"Ref": "HttpThrottlingBurstLimit"},
        "ThrottlingRateLimit": {"Ref": "HttpThrottlingRateLimit"},
    }
    for name in ("HttpThrottlingBurstLimit", "HttpThrottlingRateLimit"):
        assert tpl["Parameters"][name]["Type"] == "Number"
        assert tpl["Parameters"][name]["Default"] > 0
    assert "StageName" not in api  # $default stage: FastAPI sees unprefixed paths


def test_http_api_default_authorizer_is_the_api_key_lambda(tpl: dict[str, Any]) -> None:
    auth = resource("HttpApi", tpl)["Properties"]["Auth"]
    spec = auth["Authorizers"][auth["DefaultAuthorizer"]]
    assert spec["FunctionArn"] == {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]}
    assert spec["AuthorizerPayloadFormatVersion"] == "2.0"
    assert spec["EnableSimpleResponses"] is True
    assert spec["EnableFunctionDefaultPermissions"] is True
    assert spec["Identity"]["Headers"] == ["x-api-key"]
    ttl = resolve(spec["Identity"]["ReauthorizeEvery"], tpl)
    assert 0 < ttl <= 300  # short: a revoked key's cached "yes" must not live long
    settings = http_auth(tpl)
    assert settings is not None
    assert settings.function == "authorizer"
    # Only health, the API's documents and the console's static files are public; every
    # order route needs the key.
    public = {
        ("GET", "/health"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/docs/{proxy+}"),
        ("GET", "/"),
        ("GET", "/console/{proxy+}"),
    }
    assert settings.public_routes == public
    private = {p for _, p in set(http_routes(tpl)) - public}
    assert private == {"/api/orders/execute", "/api/orders/{orderId}", "/api/orders"}
    assert route_matches("/api/orders/{orderId}", "/api/orders/abc")
    assert not route_matches("/api/orders/{orderId}", "/api/orders")


def test_greedy_route_paths_match_one_or_more_segments() -> None:
    assert route_matches("/console/{proxy+}", "/console/app.js")
    assert route_matches("/console/{proxy+}", "/console/modules/timeline.js")
    assert not route_matches("/console/{proxy+}", "/console")
    assert not route_matches("/console/{proxy+}", "/console/")
    assert not route_matches("/console/{proxy+}", "/api/orders")
    assert not route_matches("/docs/{proxy+}", "/docsx/a.js")
    assert route_matches("/{proxy+}", "/anything/at/all")
    assert route_matches("/", "/")
    assert not route_matches("/", "/x")


def test_http_api_cors_allows_what_a_browser_client_sends(tpl: dict[str, Any]) -> None:
    cors = http_cors(tpl)
    assert cors is not None
    assert set(cors.allow_methods) == {"GET", "POST", "DELETE", "OPTIONS"}
    assert set(cors.allow_headers) == {"content-type", "idempotency-key", "x-api-key"}
    assert "idempotent-replayed" in cors.expose_headers
    assert cors.allow_origins == ("*",)
    assert not cors.allow_credentials


def test_websocket_connect_runs_the_authorizer(tpl: dict[str, Any]) -> None:
    connect = next(
        r["Properties"]
        for r in _of_type(tpl, "AWS::ApiGatewayV2::Route").values()
        if r["Properties"]["RouteKey"] == "$connect"
    )
    assert connect["AuthorizationType"] == "CUSTOM"
    authorizer = resource(connect["AuthorizerId"]["Ref"], tpl)["Properties"]
    assert authorizer["AuthorizerType"] == "REQUEST"
    assert "AuthorizerFunction.Arn" in authorizer["AuthorizerUri"]["Fn::Sub"]
    assert ws_connect_authorizer(tpl) == "authorizer"
    others = [
        r["Properties"]
        for r in _of_type(tpl, "AWS::ApiGatewayV2::Route").values()
        if r["Properties"]["RouteKey"] != "$connect"
    ]
    assert all(r["AuthorizationType"] == "NONE" for r in others)  # WS authorizes $connect only
    perms = [p["Properties"] for p in _of_type(tpl, "AWS::Lambda::Permission").values()]
    [perm] = [p for p in perms if p["FunctionName"] == {"Ref": "AuthorizerFunction"}]
    assert perm["Principal"] == "apigateway.amazonaws.com"
    assert "/authorizers/${WsAuthorizer}" in perm["SourceArn"]["Fn::Sub"]


def test_authorizer_reads_only_the_database(tpl: dict[str, Any]) -> None:
    assert _policy_templates(tpl, "authorizer") == [
        (
            "AWSSecretsManagerGetSecretValuePolicy",
            {"SecretArn": {"Fn::GetAtt": ["Database", "MasterUserSecret.SecretArn"]}},
        )
    ]
    assert _statements(tpl, "authorizer") == []
    assert set(function_environment("authorizer", tpl)) == {
        "DB_SECRET_ARN", "DB_HOST", "DB_PORT", "DB_NAME", "DB_POOL_MAX", "DB_AUTO_MIGRATE",
        "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL", "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_TRACER_CAPTURE_RESPONSE",
    }  # fmt: skip


def test_database_password_is_managed_by_rds(tpl: dict[str, Any]) -> None:
    db = resource("Database", tpl)["Properties"]
    assert db["ManageMasterUserPassword"] is True
    assert "MasterUserPassword" not in db
    assert db["StorageEncrypted"] is True
    assert str(db["EngineVersion"]).startswith("16.")
    assert not any("password" in p.lower() for p in tpl["Parameters"])
    proxy = resource("DbProxy", tpl)["Properties"]
    assert proxy["Auth"][0]["SecretArn"] == {
        "Fn::GetAtt": ["Database", "MasterUserSecret.SecretArn"]
    }
    assert proxy["RequireTLS"] is True


def test_functions_connect_through_the_proxy(tpl: dict[str, Any]) -> None:
    for name in FUNCTIONS:
        env = function_environment(name, tpl)
        assert env["DB_HOST"] == {"Fn::GetAtt": ["DbProxy", "Endpoint"]}, name
        assert env["POWERTOOLS_SERVICE_NAME"] == name


def test_wallet_secret_has_no_value_and_only_execute_reads_it(tpl: dict[str, Any]) -> None:
    secret = resource("WalletSecret", tpl)["Properties"]
    assert "SecretString" not in secret
    assert "GenerateSecretString" not in secret
    for name in FUNCTIONS:
        reads = [
            v["SecretArn"]
            for k, v in _policy_templates(tpl, name)
            if k == "AWSSecretsManagerGetSecretValuePolicy"
        ]
        assert ({"Ref": "WalletSecret"} in reads) == (name == "execute"), name
        assert ("WALLET_SECRET_ARN" in function_environment(name, tpl)) == (name == "execute")


def test_least_privilege_sends_and_connections(tpl: dict[str, Any]) -> None:
    def sends(name: str) -> set[str]:
        return {
            v["QueueName"]["Fn::GetAtt"][0]
            for k, v in _policy_templates(tpl, name)
            if k == "SQSSendMessagePolicy"
        }

    assert sends("submit") == {"OrdersQueue", "StatusEventsQueue"}
    assert sends("ws_connect") == {"OrdersQueue", "StatusEventsQueue"}
    assert sends("execute") == {"StatusEventsQueue"}
    assert sends("notify") == set()
    assert sends("authorizer") == set()
    for name in FUNCTIONS:
        manage = [
            s for s in _statements(tpl, name) if s["Action"] == "execute-api:ManageConnections"
        ]
        assert bool(manage) == (name in ("ws_connect", "notify")), name
        for s in manage:
            assert "${WebSocketApi}/${Stage}/POST/@connections/*" in s["Resource"]["Fn::Sub"]
        for s in _statements(tpl, name):
            assert s["Resource"] != "*", (name, s)


def test_environment_names_are_ones_the_code_reads(tpl: dict[str, Any]) -> None:
    known = {
        "DB_SECRET_ARN", "DB_HOST", "DB_PORT", "DB_NAME", "DB_POOL_MAX", "DB_AUTO_MIGRATE",
        "ORDERS_QUEUE_URL", "ORDERS_DLQ_ARN",
        "STATUS_QUEUE_URL", "WS_URL", "WS_MANAGEMENT_ENDPOINT", "SOLANA_RPC_URL",
        "SOLANA_CLUSTER", "WALLET_SECRET_ARN", "VENUE_POOLS", "PRIORITY_FEE_MICRO_LAMPORTS",
        "POOL_REFRESH_SECONDS", "MIN_POOL_LIQUIDITY", "POOL_DENY_LIST", "MAX_POOLS_PER_PAIR",
        "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL", "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_TRACER_CAPTURE_RESPONSE",
    }  # fmt: skip
    for name in FUNCTIONS:
        assert set(function_environment(name, tpl)) <= known, name
    assert function_environment("execute", tpl)["SOLANA_RPC_URL"] == "https://api.devnet.solana.com"
    assert json.loads(function_environment("execute", tpl)["VENUE_POOLS"]) == []


def test_the_execute_function_gets_the_discovery_settings_config_reads(
    tpl: dict[str, Any],
) -> None:
    """Every discovery setting reaches the execute function from a parameter, and its default
    is one Settings accepts (the parameter's bounds are the code's)."""
    from engine.config import MAX_POOLS_PER_PAIR_LIMIT, Settings

    env = function_environment("execute", tpl)
    names = ("POOL_REFRESH_SECONDS", "MIN_POOL_LIQUIDITY", "POOL_DENY_LIST", "MAX_POOLS_PER_PAIR")
    cfg = Settings.from_env({name: str(env[name]) for name in names})
    assert (cfg.pool_refresh_seconds, cfg.min_pool_liquidity) == (300.0, Decimal(0))
    assert (cfg.pool_deny_list, cfg.max_pools_per_pair) == (frozenset(), 10)
    assert tpl["Parameters"]["MaxPoolsPerPair"]["MaxValue"] == MAX_POOLS_PER_PAIR_LIMIT
    for name in names:
        assert name not in function_environment("submit", tpl)


def test_execute_has_the_solana_layer(tpl: dict[str, Any]) -> None:
    assert resource("ExecuteFunction", tpl)["Properties"]["Layers"] == [{"Ref": "SolanaLayer"}]
    assert tpl["Globals"]["Function"]["Layers"] == [{"Ref": "CommonLayer"}]

    def requirements(layer: str) -> set[str]:
        lines = (ROOT / "layers" / layer / "requirements.txt").read_text().splitlines()
        return {line.split("=")[0] for line in lines if line and not line.startswith("#")}

    assert {"solana", "solders"} <= requirements("solana")
    assert not {"solana", "solders"} & requirements("common")


def test_vpc_and_egress_are_explicit(tpl: dict[str, Any]) -> None:
    params = tpl["Parameters"]
    assert params["PrivateSubnetIds"]["Type"] == "List<AWS::EC2::Subnet::Id>"
    assert "NAT gateway" in params["PrivateSubnetIds"]["Description"]
    assert "NAT gateway" in tpl["Description"]
    vpc = tpl["Globals"]["Function"]["VpcConfig"]
    assert vpc["SubnetIds"] == {"Ref": "PrivateSubnetIds"}
    assert resource("Database", tpl)["Properties"]["DeletionProtection"] == {
        "Ref": "DbDeletionProtection"
    }


def test_layer_and_functions_build(tpl: dict[str, Any]) -> None:
    layer = resource("CommonLayer", tpl)
    assert layer["Metadata"]["BuildMethod"] == "python3.11"
    assert (ROOT / layer["Properties"]["ContentUri"] / "requirements.txt").is_file()
    assert tpl["Globals"]["Function"]["Runtime"] == "python3.11"
    for name in FUNCTIONS:
        code_uri = resource(function_id(name, tpl), tpl)["Properties"]["CodeUri"]
        assert (ROOT / code_uri).is_dir(), code_uri


def test_outputs(tpl: dict[str, Any]) -> None:
    out = tpl["Outputs"]
    assert out["HttpApiUrl"]["Value"]["Fn::Sub"].startswith("https://")
    assert out["WebSocketUrl"]["Value"]["Fn::Sub"].startswith("wss://")
    assert out["OrdersQueueUrl"]["Value"] == {"Ref": "OrdersQueue"}
    assert out["DlqUrl"]["Value"] == {"Ref": "OrdersDeadLetterQueue"}


@pytest.mark.parametrize(
    ("name", "route", "event_type"),
    [
        ("ws_connect", "$connect", "CONNECT"),
        ("ws_disconnect", "$disconnect", "DISCONNECT"),
        ("ws_default_order", "$default", "MESSAGE"),
        ("ws_subscribe", "subscribe", "MESSAGE"),
    ],
)
def test_websocket_events(name: str, route: str, event_type: str) -> None:
    ctx = json.loads((ROOT / "events" / f"{name}.json").read_text())["requestContext"]
    assert ctx["routeKey"] == route
    assert ctx["eventType"] == event_type
    for key in ("connectionId", "domainName", "stage", "apiId"):
        assert ctx[key], key


@pytest.mark.parametrize(
    "name",
    [
        "submit_post_order",
        "submit_get_order",
        "submit_list_orders",
        "submit_health",
        "submit_console_page",
        "submit_console_asset",
    ],
)
def test_http_events_are_payload_v2_for_a_declared_route(name: str) -> None:
    event = json.loads((ROOT / "events" / f"{name}.json").read_text())
    assert event["version"] == "2.0"
    method, path = event["routeKey"].split(" ", 1)
    assert (method, path) in http_routes()
    if method == "POST":
        assert event["headers"]["content-type"] == "application/json"
        assert event["headers"]["idempotency-key"]
        json.loads(event["body"])


def test_sqs_events() -> None:
    execute = json.loads((ROOT / "events" / "execute_sqs.json").read_text())
    assert json.loads(execute["Records"][0]["body"]) == {"orderId": ORDER_ID}
    notify = json.loads((ROOT / "events" / "notify_sqs.json").read_text())
    frame = json.loads(notify["Records"][0]["body"])
    assert {"orderId", "seq", "status", "at"} <= set(frame)


def test_every_checkov_exception_is_justified(tpl: dict[str, Any]) -> None:
    """checkov runs clean in CI (make template); each check skipped says why, in the template."""
    skipped = 0
    for name, res in tpl["Resources"].items():
        for skip in res.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert skip["id"].startswith("CKV_"), name
            assert len(skip.get("comment", "")) > 40, f"{name} {skip['id']} needs a reason"
            skipped += 1
    assert skipped > 0


def test_the_dashboard_and_alarms_watch_the_metrics_the_code_emits(tpl: dict[str, Any]) -> None:
    """Every metric name on the dashboard and the alarms is one engine/observability.py emits,
    in its namespace, so a renamed metric cannot leave a blank widget behind."""
    import re

    from engine import observability

    emitted = set(re.findall(r"^  (\w+)(?:, (\w+))? \(", observability.__doc__ or "", re.M))
    names = {n for pair in emitted for n in pair if n}
    assert {"OrderConfirmed", "OrderFailed", "LandTime", "NotifyLag"} <= names
    body = resource("OperationsDashboard", tpl)["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "X", body))["widgets"]
    on_dashboard = {
        m[1]
        for w in widgets
        for m in w["properties"]["metrics"]
        if isinstance(m[0], str) and m[0] == observability.NAMESPACE
    }
    searched = set(re.findall(r'MetricName=\\?"(\w+)', body))
    assert on_dashboard | searched <= names
    assert {"OrderAccepted", "OrderConfirmed", "OrderFailed", "RoutingTime", "LandTime"} <= (
        on_dashboard | searched
    )
    failure = resource("FailureRateAlarm", tpl)["Properties"]
    watched = {
        m["MetricStat"]["Metric"]["MetricName"] for m in failure["Metrics"] if "MetricStat" in m
    }
    assert watched == {"OrderFailed", "OrderConfirmed"} <= names
    land = resource("LandTimeAlarm", tpl)["Properties"]
    assert land["MetricName"] == "LandTime"
    assert land["Namespace"] == observability.NAMESPACE
    env = tpl["Globals"]["Function"]["Environment"]["Variables"]
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == observability.NAMESPACE
    assert tpl["Globals"]["Function"]["Tracing"] == "Active"
