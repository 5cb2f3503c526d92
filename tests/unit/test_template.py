"""What a deploy depends on, read from template.yaml (cfn-lint and sam validate check the rest)."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.metrics import METRICS
from local.template import (
    LOCAL_PARAMETERS,
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
    sqs_event_sources,
    ws_connect_authorizer,
    ws_route_selection_expression,
    ws_routes,
)

ROOT = Path(__file__).resolve().parents[2]
ORDER_ID = "0b6a4c3e-5f1d-4c7a-9a43-2d3c7e6b1f00"
FUNCTIONS = ("submit", "ws_connect", "execute", "notify", "authorizer", "quote", "watch")
# Each function's database login: its own role's secret (migrations/005_function_roles.sql,
# and 020 for watch and quote).
DB_SECRETS = {
    "submit": "SubmitDbSecret",
    "ws_connect": "WsConnectDbSecret",
    "execute": "ExecuteDbSecret",
    "notify": "NotifyDbSecret",
    "authorizer": "AuthorizerDbSecret",
    "quote": "QuoteDbSecret",
    "watch": "WatchDbSecret",
}


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
    # Defaults for a new account on the public devnet endpoint: no reservation, so a throttle
    # may use up a receive (5 of them), and 2 orders at once (the endpoint's request limit).
    assert qs.max_receive_count == 5
    assert qs.function_timeout == 120
    assert qs.visibility_timeout >= 6 * qs.function_timeout
    assert qs.max_concurrency == 2
    # The local stack deploys as a stack with reservations and a dedicated RPC would.
    local = queue_settings("OrdersQueue", tpl, LOCAL_PARAMETERS)
    assert (local.max_receive_count, local.max_concurrency) == (3, 10)
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
    [dead] = [
        props
        for queue, function, props in sqs_event_sources(tpl)
        if queue == "OrdersDeadLetterQueue"
    ]
    assert resource("OrdersDeadLettersMapping", tpl)["Properties"] is dead
    assert dead["FunctionName"] == {"Ref": "ExecuteFunction"}
    assert dead["BatchSize"] == 1
    dlq = resource("OrdersDeadLetterQueue", tpl)["Properties"]
    assert dlq["VisibilityTimeout"] >= 6 * resource("ExecuteFunction", tpl)["Properties"]["Timeout"]


def test_websocket_api_routes(tpl: dict[str, Any]) -> None:
    assert ws_route_selection_expression(tpl) == "$request.body.action"
    assert set(ws_routes(tpl)) == {"$connect", "$disconnect", "$default", "subscribe", "cancel"}
    # Every later route or integration change reaches the stage: AutoDeploy, not a Deployment
    # resource that CloudFormation creates once and never again.
    assert not _of_type(tpl, "AWS::ApiGatewayV2::Deployment")
    (stage,) = _of_type(tpl, "AWS::ApiGatewayV2::Stage").values()
    assert stage["Properties"]["AutoDeploy"] is True
    assert "DeploymentId" not in stage["Properties"]
    routes = _of_type(tpl, "AWS::ApiGatewayV2::Route")
    assert set(stage["DependsOn"]) == set(routes)  # its first deployment has every route
    settings = stage["Properties"]["DefaultRouteSettings"]
    assert settings["ThrottlingRateLimit"] == {"Ref": "WsThrottlingRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "WsThrottlingBurstLimit"}
    assert resolve(settings["ThrottlingRateLimit"], tpl) > 0
    perms = _of_type(tpl, "AWS::Lambda::Permission").values()
    assert any(p["Properties"]["FunctionName"] == {"Ref": "WsConnectFunction"} for p in perms)


def test_http_api_routes_reach_submit_and_quote(tpl: dict[str, Any]) -> None:
    assert http_routes(tpl) == {
        ("POST", "/api/orders/execute"): "SubmitFunction",
        ("GET", "/api/orders/{orderId}"): "SubmitFunction",
        ("DELETE", "/api/orders/{orderId}"): "SubmitFunction",
        ("GET", "/api/orders"): "SubmitFunction",
        ("GET", "/api/limits"): "SubmitFunction",
        ("GET", "/api/quote"): "QuoteFunction",
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
    assert private == {
        "/api/orders/execute",
        "/api/orders/{orderId}",
        "/api/orders",
        "/api/quote",
        "/api/limits",
    }
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
    assert http_cors(tpl) is None  # by default: the console is on the API's own origin
    two = {"AllowedOrigins": "https://a.example,https://b.example"}
    assert http_cors(tpl, two) is not None
    assert http_cors(tpl, two).allow_origins == ("https://a.example", "https://b.example")  # type: ignore[union-attr]
    cors = http_cors(tpl, LOCAL_PARAMETERS)
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


def test_authorizer_reads_only_its_own_database_login(tpl: dict[str, Any]) -> None:
    assert _policy_templates(tpl, "authorizer") == [
        ("AWSSecretsManagerGetSecretValuePolicy", {"SecretArn": {"Ref": "AuthorizerDbSecret"}})
    ]
    assert _statements(tpl, "authorizer") == []
    assert set(function_environment("authorizer", tpl)) == {
        "DB_SECRET_ARN", "DB_HOST", "DB_PORT", "DB_NAME", "DB_POOL_MAX",
        "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL", "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_TRACER_CAPTURE_RESPONSE",
        "DATABASE_URL", "SQS_ENDPOINT_URL", "SECRETS_ENDPOINT_URL",  # empty: for sam local
    }  # fmt: skip


def test_database_password_is_managed_by_rds(tpl: dict[str, Any]) -> None:
    db = resource("Database", tpl)["Properties"]
    assert db["ManageMasterUserPassword"] is True
    assert "MasterUserPassword" not in db
    assert db["StorageEncrypted"] is True
    assert str(db["EngineVersion"]).startswith("16.")
    assert not any("password" in p.lower() for p in tpl["Parameters"])
    proxy = resource("DbProxy", tpl)["Properties"]
    assert proxy["RequireTLS"] is True


def test_functions_connect_through_the_proxy(tpl: dict[str, Any]) -> None:
    for name in FUNCTIONS:
        env = function_environment(name, tpl)
        assert env["DB_HOST"] == {"Fn::GetAtt": ["DbProxy", "Endpoint"]}, name
        assert env["POWERTOOLS_SERVICE_NAME"] == name


def test_each_function_logs_in_as_its_own_role_and_reads_no_other_login(
    tpl: dict[str, Any],
) -> None:
    """Only the migrate function (the owner) reads the master secret; each other function reads
    its own role's secret, and the proxy authenticates every one of them."""
    master = {"Fn::GetAtt": ["Database", "MasterUserSecret.SecretArn"]}
    logins = {name: {"Ref": secret} for name, secret in DB_SECRETS.items()}
    for name in FUNCTIONS:
        assert function_environment(name, tpl)["DB_SECRET_ARN"] == logins[name], name
        reads = [
            v["SecretArn"]
            for k, v in _policy_templates(tpl, name)
            if k == "AWSSecretsManagerGetSecretValuePolicy"
        ]
        others = [*logins.values(), master]
        others.remove(logins[name])
        assert logins[name] in reads, name
        assert not [r for r in reads if r in others], name
        statements = json.dumps(_statements(tpl, name))
        assert "MasterUserSecret" not in statements, name
    for name, secret in DB_SECRETS.items():
        generated = resource(secret, tpl)["Properties"]["GenerateSecretString"]
        assert json.loads(generated["SecretStringTemplate"]) == {"username": f"engine_{name}"}
        assert generated["GenerateStringKey"] == "password"
    migrate = function_environment("migrate", tpl)
    assert migrate["DB_SECRET_ARN"] == master
    assert "DB_SECRET_ARN" not in tpl["Globals"]["Function"]["Environment"]["Variables"]
    proxy = resource("DbProxy", tpl)["Properties"]
    proxied = sorted(json.dumps(a["SecretArn"], sort_keys=True) for a in proxy["Auth"])
    assert proxied == sorted(json.dumps(x, sort_keys=True) for x in [master, *logins.values()])
    for auth in proxy["Auth"]:
        assert (auth["AuthScheme"], auth["IAMAuth"]) == ("SECRETS", "DISABLED")
    readable = resource("DbProxyRole", tpl)["Properties"]["Policies"][0]["PolicyDocument"]
    assert len(readable["Statement"][0]["Resource"]) == 1 + len(DB_SECRETS)


def test_migrations_run_once_per_deploy_as_the_owner(tpl: dict[str, Any]) -> None:
    """No function migrates on first connection; a custom resource runs the migrate function
    whenever the layer that carries the migrations (or the set of role logins) changes."""
    for name in (*FUNCTIONS, "migrate"):
        assert "DB_AUTO_MIGRATE" not in function_environment(name, tpl), name
    schema = resource("DatabaseSchema", tpl)
    assert schema["Type"].startswith("Custom::")
    assert schema["Properties"]["ServiceToken"] == {"Fn::GetAtt": ["MigrateFunction", "Arn"]}
    assert schema["Properties"]["CommonLayer"] == {"Ref": "CommonLayer"}
    assert schema["DependsOn"] == ["DbProxyTargetGroup"]  # the proxy can reach the database
    env = function_environment("migrate", tpl)
    roles = env["DB_ROLE_SECRETS"]["Fn::Sub"]
    assert json.loads(re.sub(r"\$\{(\w+)\}", r"\1", roles)) == {
        f"engine_{name}": secret for name, secret in DB_SECRETS.items()
    }
    for secret in DB_SECRETS.values():  # a new login re-runs the step
        assert f"${{{secret}}}" in schema["Properties"]["Roles"]["Fn::Sub"]
    assert env["FIRST_API_KEY_SECRET_ARN"] == {"Ref": "FirstApiKeySecret"}
    first = resource("FirstApiKeySecret", tpl)["Properties"]
    assert "SecretString" not in first
    assert "GenerateSecretString" not in first  # the key's format is the engine's: oek_...
    assert tpl["Outputs"]["FirstApiKeySecretArn"]["Value"] == {"Ref": "FirstApiKeySecret"}


def test_wallet_secret_has_no_value_and_only_execute_reads_it(tpl: dict[str, Any]) -> None:
    secret = resource("WalletSecret", tpl)["Properties"]
    assert "SecretString" not in secret
    assert "GenerateSecretString" not in secret
    # The secret itself refuses every reader but the execute role, whatever IAM policies say.
    [policy] = _of_type(tpl, "AWS::SecretsManager::ResourcePolicy").values()
    assert policy["Properties"]["SecretId"] == {"Ref": "WalletSecret"}
    assert policy["Properties"]["BlockPublicPolicy"] is True
    [deny] = policy["Properties"]["ResourcePolicy"]["Statement"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == (
        "Deny",
        "*",
        "secretsmanager:GetSecretValue",
    )
    assert deny["Condition"] == {
        "StringNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": ["ExecuteFunctionRole", "Arn"]}}
    }
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
    # execute: its frames, and a dead letter no executor started, back on the orders queue
    assert sends("execute") == {"OrdersQueue", "StatusEventsQueue"}
    assert sends("notify") == set()
    assert sends("authorizer") == set()
    assert sends("watch") == {"OrdersQueue", "StatusEventsQueue"}  # triggers, their frames
    assert sends("quote") == set()
    for name in FUNCTIONS:
        manage = [
            s for s in _statements(tpl, name) if s["Action"] == "execute-api:ManageConnections"
        ]
        assert bool(manage) == (name in ("ws_connect", "notify")), name
        for s in manage:
            # Per HTTP verb: POST posts frames, DELETE closes a revoked key's socket.
            assert [r["Fn::Sub"].rsplit("}/", 1)[1] for r in s["Resource"]] == [
                "POST/@connections/*",
                "DELETE/@connections/*",
            ], name
        for s in _statements(tpl, name):
            assert s["Resource"] != "*", (name, s)


def test_environment_names_are_ones_the_code_reads(tpl: dict[str, Any]) -> None:
    known = {
        "DB_SECRET_ARN", "DB_HOST", "DB_PORT", "DB_NAME", "DB_POOL_MAX",
        "DB_ROLE_SECRETS", "FIRST_API_KEY_SECRET_ARN",
        "ORDERS_QUEUE_URL", "ORDERS_DLQ_ARN",
        "STATUS_QUEUE_URL", "WS_URL", "WS_MANAGEMENT_ENDPOINT", "SOLANA_RPC_URL",
        "SOLANA_CLUSTER", "WALLET_SECRET_ARN", "VENUE_POOLS", "SOLANA_RPC_URL_SECRET_ARN",
        "WALLET_ADDRESS_SECRET_ARN",
        "PRIORITY_FEE_MIN_MICRO_LAMPORTS", "PRIORITY_FEE_PERCENTILE", "PRIORITY_FEE_MAX_LAMPORTS",
        "POOL_REFRESH_SECONDS", "MIN_POOL_LIQUIDITY", "POOL_DENY_LIST", "MAX_POOLS_PER_PAIR",
        "MAX_TRIGGERS", "WATCH_TICK_SECONDS", "WATCH_STOP_WHEN_IDLE",
        "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL", "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_TRACER_CAPTURE_RESPONSE",
        "DATABASE_URL", "SQS_ENDPOINT_URL", "SECRETS_ENDPOINT_URL",  # empty: for sam local
    }  # fmt: skip
    for name in (*FUNCTIONS, "migrate"):
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
    # submit and ws_connect quote a limit order's pair at submit (engine.spot), on demand only.
    for function in (
        "ExecuteFunction",
        "QuoteFunction",
        "WatchFunction",
        "SubmitFunction",
        "WsConnectFunction",
    ):
        assert resource(function, tpl)["Properties"]["Layers"] == [{"Ref": "SolanaLayer"}]
    for name in ("notify", "authorizer"):
        assert "Layers" not in resource(function_id(name, tpl), tpl)["Properties"], name
    assert tpl["Globals"]["Function"]["Layers"] == [{"Ref": "CommonLayer"}]

    def requirements(layer: str) -> set[str]:
        lines = (ROOT / "layers" / layer / "requirements.txt").read_text().splitlines()
        return {line.split("=")[0] for line in lines if line and not line.startswith("#")}

    assert {"solana", "solders"} <= requirements("solana")
    assert not {"solana", "solders"} & requirements("common")


def test_vpc_and_egress_are_explicit(tpl: dict[str, Any]) -> None:
    params = tpl["Parameters"]
    assert params["PrivateSubnetIds"]["Type"] == "List<AWS::EC2::Subnet::Id>"
    assert "MUST route 0.0.0.0/0 to a NAT gateway" in params["PrivateSubnetIds"]["Description"]
    assert "NAT gateway" in tpl["Description"]
    # VPC endpoints only save NAT charges: SQS and Secrets Manager, never execute-api (the
    # WebSocket API is public: from inside the VPC post_to_connection would get 403).
    assert "PrivateSubnetEgress" not in params
    assert params["VpcEndpoints"]["Default"] == "none"
    endpoints = _of_type(tpl, "AWS::EC2::VPCEndpoint")
    assert {
        e["Properties"]["ServiceName"]["Fn::Sub"].rsplit(".", 1)[1] for e in endpoints.values()
    } == {
        "sqs",
        "secretsmanager",
    }
    assert all(e["Condition"] == "CreateVpcEndpoints" for e in endpoints.values())
    assert "execute-api" not in json.dumps(endpoints)
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
        ("ws_cancel", "cancel", "MESSAGE"),
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
        "submit_cancel_order",
        "quote_get",
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
    """Every metric name on the dashboard and the alarms is one engine/metrics.py names (and
    the code emits), in its namespace, so a renamed metric cannot leave a blank widget behind."""
    import re

    from engine import observability

    names = {m.name for m in METRICS}
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


def test_websocket_access_logs_never_fail_a_fresh_account(tpl: dict[str, Any]) -> None:
    """WebSocket stage logs need API Gateway's account-level CloudWatch role, which a fresh
    account lacks: off by default; created (and kept) only when asked."""
    param = tpl["Parameters"]["WebSocketAccessLogs"]
    assert param["Default"] == "off"
    assert set(param["AllowedValues"]) == {"off", "account-role-exists", "create-account-role"}
    (stage,) = _of_type(tpl, "AWS::ApiGatewayV2::Stage").values()
    logs = stage["Properties"]["AccessLogSettings"]["Fn::If"]
    assert logs[0] == "WsAccessLogsOn"
    assert logs[2] == {"Ref": "AWS::NoValue"}
    assert tpl["Conditions"]["WsAccessLogsOn"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "WebSocketAccessLogs"}, "off"]}]
    }
    account = resource("ApiGatewayAccount", tpl)
    assert account["Condition"] == "CreateApiGatewayLogsRole"
    assert account["Properties"]["CloudWatchRoleArn"] == {
        "Fn::GetAtt": ["ApiGatewayLogsRole", "Arn"]
    }
    assert account["DeletionPolicy"] == resource("ApiGatewayLogsRole", tpl)["DeletionPolicy"]
    assert account["DeletionPolicy"] == "Retain"
    assert "AccessLogSettings" in resource("HttpApi", tpl)["Properties"]  # HTTP: no role needed


def test_execute_reserves_what_both_its_mappings_may_use(tpl: dict[str, Any]) -> None:
    """A throttled SQS invocation counts as a receive: with ReserveConcurrency, execute's
    reservation covers the sum of its two mappings' maxima for every allowed
    ExecuteMaxConcurrency; without it there is no reservation at all."""
    orders = resource("OrdersMapping", tpl)["Properties"]
    assert orders["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "ExecuteMaxConcurrency"}
    dead = resource("OrdersDeadLettersMapping", tpl)["Properties"]["ScalingConfig"]
    reserved = resource("ExecuteFunction", tpl)["Properties"]["ReservedConcurrentExecutions"]
    allowed = tpl["Parameters"]["ExecuteMaxConcurrency"]["AllowedValues"]
    assert tpl["Parameters"]["ExecuteMaxConcurrency"]["Default"] in allowed
    assert set(tpl["Mappings"]["ExecuteReserved"]) == set(allowed)
    for value in allowed:
        assert 2 <= int(value) <= 1000  # what ScalingConfig accepts
        on = {"ReserveConcurrency": "true", "ExecuteMaxConcurrency": value}
        assert resolve(reserved, tpl, on) == int(value) + dead["MaximumConcurrency"]
        off = {"ReserveConcurrency": "false", "ExecuteMaxConcurrency": value}
        assert resolve(reserved, tpl, off) is None
    assert tpl["Parameters"]["ReserveConcurrency"]["Default"] == "false"  # fits a new account


def test_notify_concurrency_is_capped(tpl: dict[str, Any]) -> None:
    qs = queue_settings("StatusEventsQueue", tpl)
    assert qs.max_concurrency == resolve({"Ref": "NotifyMaxConcurrency"}, tpl) == 2


def test_the_proxy_name_fits_any_stack_name(tpl: dict[str, Any]) -> None:
    """RDS Proxy names: 1-60 letters, digits, single hyphens, starting with a letter, not ending
    with one. Built from the stack id's last UUID group (12 hex digits), never the stack name."""
    name = resource("DbProxy", tpl)["Properties"]["DBProxyName"]
    assert "AWS::StackName" not in json.dumps(name)
    joiner, (prefix, select) = name["Fn::Join"]
    assert select == {
        "Fn::Select": [
            4,
            {
                "Fn::Split": [
                    "-",
                    {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]},
                ]
            },
        ]
    }
    stack_id = (
        "arn:aws:cloudformation:us-east-1:123456789012:stack/"
        + "x" * 128
        + ("/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b")
    )
    built = joiner.join([prefix, stack_id.split("/")[2].split("-")[4]])
    assert re.fullmatch(r"[A-Za-z](?!.*--)[A-Za-z0-9-]{0,58}[A-Za-z0-9]", built), built


def test_alarms_watch_the_queue_the_functions_the_proxy_and_the_wallet(
    tpl: dict[str, Any],
) -> None:
    from engine import observability

    alarms = {k: v["Properties"] for k, v in _of_type(tpl, "AWS::CloudWatch::Alarm").items()}
    age = alarms["OrdersAgeAlarm"]
    assert (age["Namespace"], age["MetricName"]) == ("AWS/SQS", "ApproximateAgeOfOldestMessage")
    assert age["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["OrdersQueue", "QueueName"]}
    for alarm, metric in (
        ("FunctionErrorsAlarm", "Errors"),
        ("FunctionThrottlesAlarm", "Throttles"),
    ):
        watched = {
            m["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"]
            for m in alarms[alarm]["Metrics"]
            if "MetricStat" in m and m["MetricStat"]["Metric"]["MetricName"] == metric
        }
        assert watched == {function_id(n, tpl) for n in (*FUNCTIONS, "migrate")}, alarm
    for alarm in ("DbProxyConnectionsAlarm", "DbProxyPinnedAlarm"):
        assert alarms[alarm]["Namespace"] == "AWS/RDS"
        assert alarms[alarm]["Dimensions"] == [{"Name": "ProxyName", "Value": {"Ref": "DbProxy"}}]
    wallet = alarms["WalletLowBalanceAlarm"]
    # Both reporters: the watcher every minute (an idle stack's empty wallet alarms before an
    # order fails), the execute function after its batches.
    metrics = [m["MetricStat"]["Metric"] for m in wallet["Metrics"] if "MetricStat" in m]
    assert {(m["Namespace"], m["MetricName"], m["Dimensions"][0]["Value"]) for m in metrics} == {
        (observability.NAMESPACE, "WalletBalance", "execute"),
        (observability.NAMESPACE, "WalletBalance", "watch"),
    }
    assert "WalletBalance" in {m.name for m in METRICS}
    assert wallet["ComparisonOperator"] == "LessThanThreshold"
    assert wallet["Threshold"] == {"Ref": "WalletLowBalanceSol"}
    topic = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    for name, props in alarms.items():  # every alarm reaches the operator's topic, both ways
        assert props["AlarmActions"] == topic, name
        assert props["OKActions"] == topic, name


def test_both_layers_install_under_one_constraints_file() -> None:
    """Lambda unpacks both of execute's layers into one /opt/python: a package both ship must be
    the same version in each, so both resolve against layers/constraints.txt."""
    pins = {}
    for line in (ROOT / "layers" / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    for layer in ("common", "solana"):
        lines = (ROOT / "layers" / layer / "requirements.txt").read_text().splitlines()
        assert "-c ../constraints.txt" in lines, layer
        for line in lines:
            if line and not line.startswith(("#", "-c")):
                name = re.split(r"[=<>\[ ;#]", line, maxsplit=1)[0].lower().replace("_", "-")
                assert name in pins, (layer, name)
    # The packages both layers bring (the examples, and python-dateutil, which the
    # Solana client's arrow would take to 4.x while botocore needs 2.x) have one pin each.
    assert {"pydantic", "anyio", "typing-extensions", "python-dateutil"} <= set(pins)
    assert pins["python-dateutil"].startswith("2.")


# -- limit and sniper orders (issue 12) ------------------------------------------------------------


def test_the_watcher_runs_on_a_schedule_one_at_a_time_and_never_retries(
    tpl: dict[str, Any],
) -> None:
    """Every minute; reserved concurrency 1 (one watcher at a time); a missed or held-back
    invocation is replaced by the next one: no retries, events at most a minute old, both on the
    schedule's target and on the function's own async invocation."""
    watch = resource("WatchFunction", tpl)["Properties"]
    [tick] = watch["Events"].values()
    assert tick["Type"] == "Schedule"
    assert tick["Properties"]["Schedule"] == "rate(1 minute)"
    assert tick["Properties"]["RetryPolicy"] == {
        "MaximumRetryAttempts": 0,
        "MaximumEventAgeInSeconds": 60,
    }
    assert watch["EventInvokeConfig"] == {"MaximumEventAgeInSeconds": 60, "MaximumRetryAttempts": 0}
    reserved = watch["ReservedConcurrentExecutions"]
    assert resolve(reserved, tpl, {"ReserveConcurrency": "true"}) == 1
    assert resolve(reserved, tpl, {"ReserveConcurrency": "false"}) is None
    # It stops ticking before its timeout, and its timeout ends before the next invocation.
    from execution.watcher import STOP_BEFORE_TIMEOUT_SECONDS

    assert STOP_BEFORE_TIMEOUT_SECONDS < watch["Timeout"] < 60
    tick_seconds = tpl["Parameters"]["WatchTickSeconds"]
    assert watch["Environment"]["Variables"]["WATCH_TICK_SECONDS"] == {"Ref": "WatchTickSeconds"}
    assert 0 < tick_seconds["MinValue"] <= tick_seconds["Default"] < STOP_BEFORE_TIMEOUT_SECONDS


def test_the_watcher_and_the_quote_function_hold_least_privilege(tpl: dict[str, Any]) -> None:
    for name in ("watch", "quote"):
        statements = _statements(tpl, name)
        if name == "watch":  # the wallet's public key from its secret's tag, never its value
            assert statements == [
                {
                    "Sid": "WalletPublicKeyTag",
                    "Effect": "Allow",
                    "Action": "secretsmanager:DescribeSecret",
                    "Resource": {"Ref": "WalletSecret"},
                }
            ]
        else:
            assert statements == [], (name, statements)  # policy templates only, each scoped
        reads = [v for k, v in _policy_templates(tpl, name) if k.startswith("AWSSecretsManager")]
        assert reads == [{"SecretArn": {"Ref": DB_SECRETS[name]}}], name
        env = function_environment(name, tpl)
        assert "WALLET_SECRET_ARN" not in env, name  # neither signs anything
    assert "ORDERS_QUEUE_URL" not in function_environment("quote", tpl)
    execute = resource("ExecuteFunction", tpl)["Properties"]["Environment"]["Variables"]
    assert execute["MAX_TRIGGERS"] == {"Ref": "MaxTriggers"}
    # The settings reach the code within the bounds the code accepts.
    from engine.config import Settings

    cfg = Settings.from_env(
        {
            "MAX_TRIGGERS": str(resolve({"Ref": "MaxTriggers"}, tpl)),
            "WATCH_TICK_SECONDS": str(resolve({"Ref": "WatchTickSeconds"}, tpl)),
            "WATCH_STOP_WHEN_IDLE": str(resolve({"Ref": "WatchStopWhenIdle"}, tpl)),
        }
    )
    # A look every 3 s: 20 getMultipleAccounts a minute fit the public devnet endpoint.
    assert (cfg.max_triggers, cfg.watch_tick_seconds, cfg.watch_stop_when_idle) == (5, 3.0, False)
    assert tpl["Parameters"]["MaxTriggers"]["MinValue"] == 1


def test_a_stalled_watcher_alarms(tpl: dict[str, Any]) -> None:
    from engine import observability

    stalled = resource("WatcherStalledAlarm", tpl)["Properties"]
    assert (stalled["Namespace"], stalled["MetricName"]) == (observability.NAMESPACE, "WatchTick")
    assert stalled["Dimensions"] == [{"Name": "service", "Value": "watch"}]
    assert stalled["TreatMissingData"] == "breaching"  # no tick at all is the fault
    assert "WatchTick" in {m.name for m in METRICS}
    for name in ("watch", "quote"):
        logging = resource(function_id(name, tpl), tpl)["Properties"]["LoggingConfig"]
        assert logging == {"LogGroup": {"Ref": f"{name.capitalize()}LogGroup"}}


def test_the_sniper_path_reads_the_chain_slot_on_both_apis(tpl: dict[str, Any]) -> None:
    for name in ("submit", "ws_connect"):
        assert function_environment(name, tpl)["SOLANA_RPC_URL"] == "https://api.devnet.solana.com"


def test_the_scheduled_event_is_one_powertools_parses() -> None:
    from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent

    event = EventBridgeEvent(json.loads((ROOT / "events" / "watch_schedule.json").read_text()))
    assert (event.source, event.detail_type) == ("aws.events", "Scheduled Event")
    assert event.resources[0].startswith("arn:aws:events:")
