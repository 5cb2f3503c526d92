"""Read template.yaml: the one source of truth for queue, route and environment settings.

The local stack builds its queues and routes from what the SAM template declares, so the two
cannot drift. CloudFormation tags (`!Ref`, `!GetAtt`, `!Sub`, ...) load as their long forms
(`{"Ref": ...}`, `{"Fn::GetAtt": [...]}`); `Ref`s to parameters resolve to their defaults, or to
the values a caller deploys with (`parameters`, as `sam deploy --parameter-overrides` gives
them); `Fn::If` on the template's conditions and `Fn::Split` resolve with them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "template.yaml"

# The parameter values the local stack deploys with (what `sam deploy --parameter-overrides`
# would give): the local chain has no request limit and the local pollers are never throttled,
# so the figures a dedicated RPC provider and ReserveConcurrency=true allow in the cloud; and
# every origin for CORS (local browser tools on other ports). The template's defaults are for
# a new account on the public devnet endpoint.
LOCAL_PARAMETERS: Mapping[str, str] = {
    "ExecuteMaxConcurrency": "10",
    "NotifyMaxConcurrency": "5",
    "OrdersMaxReceiveCount": "3",
    "ReserveConcurrency": "true",
    "WatchTickSeconds": "1",
    "AllowedOrigins": "*",
}


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation's short-form intrinsic functions."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(None, None, f"bad !{suffix}", node.start_mark)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


@lru_cache(maxsize=4)
def _load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        doc = yaml.load(fh, Loader=_CfnLoader)  # a SafeLoader subclass: no arbitrary objects
    if not isinstance(doc, dict) or "Resources" not in doc:
        raise ValueError(f"{path} is not a CloudFormation template")
    return doc


def load_template(path: str | Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The parsed template (cached; do not mutate)."""
    return _load(Path(path).resolve())


NO_VALUE = None  # what `!Ref AWS::NoValue` resolves to: the property is absent


def parameter_value(
    name: str, template: dict[str, Any], parameters: Mapping[str, str] | None = None
) -> Any:
    """A parameter's value: `parameters`' (a deploy's overrides), else its default."""
    if parameters and name in parameters:
        return parameters[name]
    param = template.get("Parameters", {}).get(name)
    if param is None or "Default" not in param:
        raise KeyError(f"parameter {name!r} has no value")
    return param["Default"]


def condition(
    name: str, template: dict[str, Any], parameters: Mapping[str, str] | None = None
) -> bool:
    """A template condition (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition) as a deploy with
    `parameters` evaluates it."""
    return _truth(template["Conditions"][name], template, parameters)


def _truth(expr: Any, doc: dict[str, Any], parameters: Mapping[str, str] | None) -> bool:
    ((op, args),) = expr.items()
    if op == "Condition":
        return condition(str(args), doc, parameters)
    if op == "Fn::Not":
        return not _truth(args[0], doc, parameters)
    if op == "Fn::And":
        return all(_truth(a, doc, parameters) for a in args)
    if op == "Fn::Or":
        return any(_truth(a, doc, parameters) for a in args)
    if op == "Fn::Equals":
        left, right = (resolve(a, doc, parameters) for a in args)
        return str(left) == str(right)
    raise ValueError(f"condition {op} is not understood locally")


def resolve(
    value: Any, template: dict[str, Any] | None = None, parameters: Mapping[str, str] | None = None
) -> Any:
    """A `Ref` to a parameter becomes its value (`parameters`, else its default); `Fn::If`
    becomes its branch (`!Ref AWS::NoValue`: None), `Fn::Split` a list, `Fn::FindInMap` its
    entry; anything else is returned unchanged."""
    doc = template if template is not None else load_template()
    if not isinstance(value, dict) or len(value) != 1:
        return value
    ((op, args),) = value.items()
    if op == "Ref" and args == "AWS::NoValue":
        return NO_VALUE
    if op == "Ref" and args in doc.get("Parameters", {}):
        try:
            return parameter_value(str(args), doc, parameters)
        except KeyError:
            return value
    if op == "Fn::If":
        name, yes, no = args
        return resolve(yes if condition(name, doc, parameters) else no, doc, parameters)
    if op == "Fn::Split":
        sep, text = args[0], resolve(args[1], doc, parameters)
        return str(text).split(sep) if isinstance(text, str) else value
    if op == "Fn::FindInMap":
        table, key, entry = (resolve(a, doc, parameters) for a in args)
        return doc["Mappings"][table][str(key)][entry]
    return value


def resource(logical_id: str, template: dict[str, Any] | None = None) -> dict[str, Any]:
    doc = template if template is not None else load_template()
    found: dict[str, Any] = doc["Resources"][logical_id]
    return found


def function_id(name: str, template: dict[str, Any] | None = None) -> str:
    """The function's logical id, given it or its folder name (`execute` -> `ExecuteFunction`)."""
    doc = template if template is not None else load_template()
    for logical_id, res in doc["Resources"].items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        code_uri = str(res.get("Properties", {}).get("CodeUri", "")).rstrip("/")
        if name in (logical_id, code_uri, code_uri.rsplit("/", 1)[-1]):
            return str(logical_id)
    raise KeyError(f"no function {name!r} in the template")


def _function_property(name: str, key: str, template: dict[str, Any]) -> Any:
    props = resource(function_id(name, template), template).get("Properties", {})
    if key in props:
        return props[key]
    return template.get("Globals", {}).get("Function", {}).get(key)


def function_timeout(name: str, template: dict[str, Any] | None = None) -> int:
    doc = template if template is not None else load_template()
    return int(resolve(_function_property(name, "Timeout", doc), doc) or 3)


def function_environment(
    name: str, template: dict[str, Any] | None = None, parameters: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Globals' variables merged with the function's own. Parameter `Ref`s become their values
    (`parameters`, else defaults); values that only exist once deployed (`!GetAtt`, `!Sub` ...)
    stay as intrinsic dicts."""
    doc = template if template is not None else load_template()
    merged: dict[str, Any] = {}
    glob = doc.get("Globals", {}).get("Function", {}).get("Environment", {})
    own = resource(function_id(name, doc), doc).get("Properties", {}).get("Environment", {})
    for source in (glob, own):
        for key, value in source.get("Variables", {}).items():
            resolved = resolve(value, doc, parameters)
            merged[key] = resolved if isinstance(resolved, dict) else str(resolved)
    return merged


@dataclass(frozen=True)
class QueueSettings:
    """A queue, its redrive policy and the event source mapping that consumes it."""

    queue: str
    consumer: str
    visibility_timeout: int
    message_retention: int
    max_receive_count: int
    dead_letter_queue: str
    batch_size: int
    max_concurrency: int | None
    report_batch_item_failures: bool
    function_timeout: int


def sqs_event_sources(
    template: dict[str, Any] | None = None,
) -> list[tuple[str, str, dict[str, Any]]]:
    """Every SQS event source mapping as (queue logical id, function logical id, properties in
    the `AWS::Lambda::EventSourceMapping` spelling), whichever way the template declares it: as
    that resource, or as a SAM function's `Events: {Type: SQS}` (whose `Queue` is the
    mapping's `EventSourceArn`)."""
    doc = template if template is not None else load_template()
    found: list[tuple[str, str, dict[str, Any]]] = []
    for logical_id, res in doc["Resources"].items():
        props = res.get("Properties", {})
        if res.get("Type") == "AWS::Lambda::EventSourceMapping":
            source, function = props.get("EventSourceArn"), props.get("FunctionName")
            if (
                isinstance(source, dict)
                and "Fn::GetAtt" in source
                and isinstance(function, dict)
                and "Ref" in function
            ):
                found.append((str(source["Fn::GetAtt"][0]), str(function["Ref"]), props))
        elif res.get("Type") == "AWS::Serverless::Function":
            for event in props.get("Events", {}).values():
                ev = event.get("Properties", {})
                queue = ev.get("Queue")
                if event.get("Type") == "SQS" and isinstance(queue, dict) and "Fn::GetAtt" in queue:
                    found.append((str(queue["Fn::GetAtt"][0]), str(logical_id), ev))
    return found


def queue_settings(
    queue: str = "OrdersQueue",
    template: dict[str, Any] | None = None,
    parameters: Mapping[str, str] | None = None,
) -> QueueSettings:
    """Settings of `queue` (a logical id) and of the one function whose SQS event source mapping
    reads it, with the template's defaults or the `parameters` a deploy overrides."""
    doc = template if template is not None else load_template()
    props = resource(queue, doc)["Properties"]
    redrive = props["RedrivePolicy"]
    for source, function, ev in sqs_event_sources(doc):
        if source != queue:
            continue
        scaling = ev.get("ScalingConfig", {})
        max_conc = resolve(scaling.get("MaximumConcurrency"), doc, parameters)
        return QueueSettings(
            queue=queue,
            consumer=function,
            visibility_timeout=int(resolve(props.get("VisibilityTimeout", 30), doc, parameters)),
            message_retention=int(
                resolve(props.get("MessageRetentionPeriod", 345600), doc, parameters)
            ),
            max_receive_count=int(resolve(redrive["maxReceiveCount"], doc, parameters)),
            dead_letter_queue=str(redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]),
            batch_size=int(resolve(ev.get("BatchSize", 10), doc, parameters)),
            max_concurrency=None if max_conc is None else int(max_conc),
            report_batch_item_failures="ReportBatchItemFailures"
            in ev.get("FunctionResponseTypes", []),
            function_timeout=function_timeout(function, doc),
        )
    raise KeyError(f"no function consumes {queue!r}")


def ws_routes(template: dict[str, Any] | None = None) -> tuple[str, ...]:
    """Route keys of the WebSocket API, e.g. ('$connect', '$disconnect', '$default', ...)."""
    doc = template if template is not None else load_template()
    return tuple(
        str(res["Properties"]["RouteKey"])
        for res in doc["Resources"].values()
        if res.get("Type") == "AWS::ApiGatewayV2::Route"
    )


def ws_route_selection_expression(template: dict[str, Any] | None = None) -> str:
    doc = template if template is not None else load_template()
    for res in doc["Resources"].values():
        props = res.get("Properties", {})
        if res.get("Type") == "AWS::ApiGatewayV2::Api" and props.get("ProtocolType") == "WEBSOCKET":
            return str(props["RouteSelectionExpression"])
    raise KeyError("no WebSocket API in the template")


def http_routes(template: dict[str, Any] | None = None) -> dict[tuple[str, str], str]:
    """(METHOD, path) -> function logical id, for every HttpApi event."""
    doc = template if template is not None else load_template()
    routes: dict[tuple[str, str], str] = {}
    for logical_id, res in doc["Resources"].items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        for event in res.get("Properties", {}).get("Events", {}).values():
            if event.get("Type") == "HttpApi":
                ev = event["Properties"]
                routes[(str(ev["Method"]).upper(), str(ev["Path"]))] = str(logical_id)
    return routes


def http_route_functions(template: dict[str, Any] | None = None) -> dict[tuple[str, str], str]:
    """(METHOD, path) -> the function folder under functions/ that serves it."""
    doc = template if template is not None else load_template()
    return {route: _code_folder(logical_id, doc) for route, logical_id in http_routes(doc).items()}


@dataclass(frozen=True)
class Schedule:
    """A function's EventBridge schedule (a `Schedule` event): how often it is invoked, and how
    long each invocation may run."""

    function: str  # its folder under functions/
    event: str  # the event's name in the template (part of the rule's name)
    every_seconds: float
    timeout_seconds: int


def parse_rate(expression: str) -> float:
    """`rate(1 minute)`, `rate(5 minutes)`, `rate(1 hour)`, `rate(30 seconds)` in seconds (the
    local scheduler's reading of EventBridge's rate expressions; cron is not supported)."""
    text = expression.strip()
    if not (text.startswith("rate(") and text.endswith(")")):
        raise ValueError(f"only rate() schedules run locally, not {expression!r}")
    amount, _, unit = text[5:-1].strip().partition(" ")
    seconds = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
    unit = unit.strip().rstrip("s")
    if unit not in seconds or not amount.isdigit() or int(amount) < 1:
        raise ValueError(f"not a rate expression: {expression!r}")
    return float(int(amount) * seconds[unit])


def schedules(template: dict[str, Any] | None = None) -> list[Schedule]:
    """Every function's `Schedule` events, as EventBridge would run them."""
    doc = template if template is not None else load_template()
    found = []
    for logical_id, res in doc["Resources"].items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        for name, event in res.get("Properties", {}).get("Events", {}).items():
            if event.get("Type") != "Schedule":
                continue
            props = event.get("Properties", {})
            if props.get("Enabled", True) is False or props.get("State") == "DISABLED":
                continue
            found.append(
                Schedule(
                    function=_code_folder(str(logical_id), doc),
                    event=str(name),
                    every_seconds=parse_rate(str(resolve(props["Schedule"], doc))),
                    timeout_seconds=function_timeout(str(logical_id), doc),
                )
            )
    return found


@dataclass(frozen=True)
class HttpAuth:
    """The HTTP API's default Lambda authorizer and which routes opt out of it."""

    function: str  # the authorizer's folder under functions/, e.g. "authorizer"
    identity_headers: tuple[str, ...]  # lower-case; missing -> 401 without calling it
    public_routes: frozenset[tuple[str, str]]  # (METHOD, path) with `Auth: {Authorizer: NONE}`
    payload_format: str
    simple_responses: bool
    ttl_seconds: int  # how long an answer is cached, per identity (ReauthorizeEvery)


def _code_folder(logical_id: str, doc: dict[str, Any]) -> str:
    code_uri = str(resource(logical_id, doc)["Properties"]["CodeUri"]).rstrip("/")
    return code_uri.rsplit("/", 1)[-1]


def http_auth(template: dict[str, Any] | None = None) -> HttpAuth | None:
    """The HttpApi's `Auth` (None when it has no default authorizer)."""
    doc = template if template is not None else load_template()
    auth = resource("HttpApi", doc).get("Properties", {}).get("Auth") or {}
    default = auth.get("DefaultAuthorizer")
    if not default:
        return None
    spec = auth["Authorizers"][default]
    function = spec["FunctionArn"]["Fn::GetAtt"][0]
    public: set[tuple[str, str]] = set()
    for res in doc["Resources"].values():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        for event in res.get("Properties", {}).get("Events", {}).values():
            ev = event.get("Properties", {})
            if (
                event.get("Type") == "HttpApi"
                and (ev.get("Auth") or {}).get("Authorizer") == "NONE"
            ):
                public.add((str(ev["Method"]).upper(), str(ev["Path"])))
    return HttpAuth(
        function=_code_folder(function, doc),
        identity_headers=tuple(h.lower() for h in spec.get("Identity", {}).get("Headers", [])),
        public_routes=frozenset(public),
        payload_format=str(spec.get("AuthorizerPayloadFormatVersion", "1.0")),
        simple_responses=bool(spec.get("EnableSimpleResponses", False)),
        ttl_seconds=int(resolve(spec.get("Identity", {}).get("ReauthorizeEvery", 0), doc)),
    )


def ws_connect_authorizer(template: dict[str, Any] | None = None) -> str | None:
    """The function folder of the WebSocket `$connect` route's CUSTOM authorizer, if any."""
    doc = template if template is not None else load_template()
    for res in doc["Resources"].values():
        props = res.get("Properties", {})
        if res.get("Type") != "AWS::ApiGatewayV2::Route" or props.get("RouteKey") != "$connect":
            continue
        if props.get("AuthorizationType") != "CUSTOM":
            return None
        authorizer = resource(props["AuthorizerId"]["Ref"], doc)["Properties"]
        uri = str(authorizer["AuthorizerUri"]["Fn::Sub"])
        function = uri.split("/functions/${", 1)[1].split(".Arn}", 1)[0]  # ${Fn.Arn}
        return _code_folder(function, doc)
    return None


def route_matches(template_path: str, path: str) -> bool:
    """Does a request path match an HTTP API route path (`/api/orders/{orderId}`)? A greedy
    last variable (`/console/{proxy+}`) matches one or more segments, as API Gateway's does."""
    want, got = template_path.strip("/").split("/"), path.strip("/").split("/")
    if want[-1].startswith("{") and want[-1].endswith("+}"):
        fixed, rest = want[:-1], got[len(want) - 1 :]
        return (
            len(got) >= len(want)
            and all(rest)
            and route_matches("/".join(fixed), "/".join(got[: len(fixed)]))
        )
    return len(want) == len(got) and all(
        w == g or (w.startswith("{") and w.endswith("}") and g)
        for w, g in zip(want, got, strict=True)
    )


@dataclass(frozen=True)
class HttpCors:
    """The HttpApi's CorsConfiguration, which API Gateway itself answers and applies."""

    allow_origins: tuple[str, ...]
    allow_methods: tuple[str, ...]
    allow_headers: tuple[str, ...]
    expose_headers: tuple[str, ...]
    max_age: int | None
    allow_credentials: bool


def http_cors(
    template: dict[str, Any] | None = None, parameters: Mapping[str, str] | None = None
) -> HttpCors | None:
    """The HttpApi's `CorsConfiguration` (None when it has none, or when its `Fn::If` leaves
    it out: AllowedOrigins empty)."""
    doc = template if template is not None else load_template()
    cors = resolve(
        resource("HttpApi", doc).get("Properties", {}).get("CorsConfiguration"), doc, parameters
    )
    if not cors:
        return None

    def names(key: str) -> tuple[str, ...]:
        return tuple(str(v) for v in resolve(cors.get(key), doc, parameters) or [])

    max_age = resolve(cors.get("MaxAge"), doc, parameters)
    return HttpCors(
        allow_origins=names("AllowOrigins"),
        allow_methods=tuple(m.upper() for m in names("AllowMethods")),
        allow_headers=tuple(h.lower() for h in names("AllowHeaders")),
        expose_headers=tuple(h.lower() for h in names("ExposeHeaders")),
        max_age=None if max_age is None else int(max_age),
        allow_credentials=bool(resolve(cors.get("AllowCredentials"), doc, parameters)),
    )
