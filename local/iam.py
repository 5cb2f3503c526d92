"""IAM as the template says: each function's role, from SAM's own expansion of template.yaml.

`expand` runs `samtranslator` (what `sam deploy` sends CloudFormation: SAM's policy templates
such as `SQSSendMessagePolicy` become statements, each function gets its `<Function>Role`), and
`Roles` resolves the intrinsics and conditions in those roles against the local stack's
resources (`LocalResources`: its queues, secrets, WebSocket API, account and region). `Policy`
evaluates a request as IAM does: the actions and resources of Allow statements with wildcards,
an explicit Deny over any Allow, the AWS managed policies from their published documents (moto's
copies), and a `Condition` it cannot evaluate fails closed (an Allow with one does not apply, a
Deny with one does) and says so.

An `AccessChecker` puts it in front of every botocore call this process makes: a `before-call`
hook evaluates the call against the role of the function running it (`acting_as`),
and a call the role does not allow fails as AWS's AccessDenied does and is logged with the
statement it lacks. Calls made outside any function (the stack's own set-up) are not checked.
"""

from __future__ import annotations

import contextvars
import copy
import functools
import json
import logging
import os
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from local.template import LOCAL_PARAMETERS, condition, load_template

log = logging.getLogger("local.iam")

ACCOUNT = "000000000000"  # LocalStack's default account
ALLOWED_KEPT = 10_000  # allowed calls an AccessChecker remembers (denials: all)
REGION = "us-east-1"
PARTITION = "aws"

# The HTTP verb of each management API operation: IAM's execute-api:ManageConnections resource
# is arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/VERB/@connections/ID.
MANAGEMENT_VERBS = {
    "PostToConnection": "POST",
    "DeleteConnection": "DELETE",
    "GetConnection": "GET",
}


@dataclass(frozen=True)
class LocalResources:
    """What the template's references resolve to locally. `refs` maps a logical id to its `Ref`
    value (a queue's URL, a secret's ARN, the WebSocket API's id); `attributes` maps
    (logical id, attribute) to `Fn::GetAtt`'s. Queues given by URL get their `Arn` and
    `QueueName` from it. Other resources resolve to placeholders that cannot match a real
    request (`local-unresolved-<LogicalId>`), so a statement on them allows nothing here."""

    refs: Mapping[str, str] = field(default_factory=dict)
    attributes: Mapping[tuple[str, str], str] = field(default_factory=dict)
    parameters: Mapping[str, str] = field(default_factory=lambda: dict(LOCAL_PARAMETERS))
    account: str = ACCOUNT
    region: str = REGION

    @classmethod
    def for_stack(
        cls,
        queues: Mapping[str, str],
        secrets: Mapping[str, str] | None = None,
        websocket_api: str = "local",
        parameters: Mapping[str, str] | None = None,
        account: str = ACCOUNT,
        region: str = REGION,
    ) -> LocalResources:
        """`queues`: logical id -> queue URL; `secrets`: logical id -> secret ARN."""
        refs: dict[str, str] = {"WebSocketApi": websocket_api}
        attributes: dict[tuple[str, str], str] = {}
        for logical_id, url in queues.items():
            refs[logical_id] = url
            attributes[(logical_id, "Arn")] = queue_arn(url, account, region)
            attributes[(logical_id, "QueueName")] = url.rstrip("/").rsplit("/", 1)[-1]
        refs.update(secrets or {})
        return cls(
            refs=refs,
            attributes=attributes,
            parameters=dict(LOCAL_PARAMETERS if parameters is None else parameters),
            account=account,
            region=region,
        )


def queue_arn(url: str, account: str = ACCOUNT, region: str = REGION) -> str:
    """An SQS queue's ARN from its URL (`.../ACCOUNT/NAME`), as SQS names it."""
    parts = urlsplit(url).path.strip("/").split("/")
    owner = parts[-2] if len(parts) >= 2 and parts[-2].isdigit() else account
    return f"arn:{PARTITION}:sqs:{region}:{owner}:{parts[-1]}"


# ------------------------------------------------------------------ the template's expansion


def _with_s3_code(doc: dict[str, Any]) -> dict[str, Any]:
    """The template as `sam package` leaves it: local code folders become S3 URIs (the
    translator accepts nothing else; the code's location does not matter to IAM)."""
    out = copy.deepcopy(doc)
    for res in out.get("Resources", {}).values():
        props = res.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str):
                props[key] = "s3://local-code/" + props[key].strip("/")
    return out


@functools.lru_cache(maxsize=8)
def _expand_cached(doc_json: str, parameters_json: str) -> str:
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)  # the translator's pseudo parameters
    managed = {name: arn for name, arn in _managed_policy_arns().items()}
    try:
        expanded = Translator(None, Parser()).translate(
            json.loads(doc_json),
            json.loads(parameters_json),
            get_managed_policy_map=lambda: managed,
        )
    except InvalidDocumentException as exc:
        raise ValueError("; ".join(str(cause) for cause in exc.causes)) from exc
    return json.dumps(expanded)


def expand(
    template: dict[str, Any] | None = None, parameters: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The CloudFormation template SAM makes of `template` (template.yaml by default), with the
    local stack's parameter values."""
    doc = _with_s3_code(template if template is not None else load_template())
    params = dict(LOCAL_PARAMETERS if parameters is None else parameters)
    result: dict[str, Any] = json.loads(
        _expand_cached(json.dumps(doc, sort_keys=True), json.dumps(params, sort_keys=True))
    )
    return result


@functools.lru_cache(maxsize=1)
def _managed_policies() -> dict[str, dict[str, Any]]:
    """AWS's managed policies by ARN, from moto's copy of their published documents."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    found: dict[str, dict[str, Any]] = {}
    for name, spec in json.loads(aws_managed_policies_data).items():
        path = spec.get("Path", "/")
        found[f"arn:{PARTITION}:iam::aws:policy{path}{name}"] = spec["Document"]
    return found


def _managed_policy_arns() -> dict[str, str]:
    return {arn.rsplit("/", 1)[-1]: arn for arn in _managed_policies()}


# ------------------------------------------------------------------ intrinsics


class _Resolver:
    def __init__(self, doc: dict[str, Any], resources: LocalResources) -> None:
        self.doc = doc
        self.res = resources
        self.pseudo = {
            "AWS::AccountId": resources.account,
            "AWS::Region": resources.region,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "local",
        }

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.doc.get("Parameters", {}):
            param = self.doc["Parameters"][name]
            return self.res.parameters.get(name, param.get("Default", ""))
        if name in self.res.refs:
            return self.res.refs[name]
        return f"local-unresolved-{name}"

    def getatt(self, name: str, attribute: str) -> Any:
        if (name, attribute) in self.res.attributes:
            return self.res.attributes[(name, attribute)]
        return f"local-unresolved-{name}.{attribute}"

    def condition(self, name: str) -> bool:
        return condition(name, self.doc, self.res.parameters)

    def sub(self, text: str, extra: Mapping[str, Any]) -> str:
        def one(match: re.Match[str]) -> str:
            key = match.group(1)
            if key.startswith("!"):
                return "${" + key[1:] + "}"
            if key in extra:
                return str(extra[key])
            if "." in key and key not in self.pseudo:
                name, attribute = key.split(".", 1)
                return str(self.getatt(name, attribute))
            return str(self.ref(key))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self(item) for item in value) if v is not _ABSENT]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((op, args),) = value.items()
            if op == "Ref" or op.startswith("Fn::"):
                return self._intrinsic(op, args)
        return {k: v for k, v in ((k, self(v)) for k, v in value.items()) if v is not _ABSENT}

    def _intrinsic(self, op: str, args: Any) -> Any:
        if op == "Ref":
            return _ABSENT if args == "AWS::NoValue" else self.ref(str(args))
        if op == "Fn::GetAtt":
            name, attribute = args if isinstance(args, list) else str(args).split(".", 1)
            return self.getatt(str(name), str(attribute))
        if op == "Fn::Sub":
            if isinstance(args, str):
                return self.sub(args, {})
            text, extra = args
            return self.sub(str(text), {k: self(v) for k, v in extra.items()})
        if op == "Fn::If":
            name, yes, no = args
            return self(yes if self.condition(str(name)) else no)
        if op == "Fn::Join":
            sep, items = args
            return str(sep).join(str(i) for i in self(items))
        if op == "Fn::Select":
            index, items = args
            return self(items)[int(self(index))]
        if op == "Fn::Split":
            sep, text = args
            return str(self(text)).split(str(sep))
        raise ValueError(f"{op} is not resolved locally")


_ABSENT: Any = object()  # `!Ref AWS::NoValue`: the property or list item is left out


# ------------------------------------------------------------------ evaluation


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # the statement that allowed or denied, or what is missing


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    """IAM's wildcards: `*` any run of characters (across `/` and `:`), `?` one character."""
    if not case_sensitive:
        pattern, value = pattern.lower(), value.lower()
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_resources: tuple[str, ...]
    condition: Mapping[str, Any] | None
    where: str  # the policy and Sid, for messages

    @classmethod
    def parse(cls, raw: Mapping[str, Any], where: str) -> Statement:
        sid = raw.get("Sid")
        return cls(
            effect=str(raw.get("Effect", "Allow")),
            actions=tuple(str(a) for a in _as_list(raw.get("Action", []))),
            not_actions=tuple(str(a) for a in _as_list(raw.get("NotAction", []))),
            resources=tuple(str(r) for r in _as_list(raw.get("Resource", []))),
            not_resources=tuple(str(r) for r in _as_list(raw.get("NotResource", []))),
            condition=raw.get("Condition") or None,
            where=f"{where}/{sid}" if sid else where,
        )

    def applies(self, action: str, resource: str) -> bool:
        """Whether action and resource fall under this statement (its condition aside)."""
        if self.actions:
            hit = any(_matches(a, action, case_sensitive=False) for a in self.actions)
        else:
            hit = not any(_matches(a, action, case_sensitive=False) for a in self.not_actions)
        if not hit:
            return False
        if self.resources:
            return any(_matches(r, resource, case_sensitive=True) for r in self.resources)
        return not any(_matches(r, resource, case_sensitive=True) for r in self.not_resources)


@dataclass(frozen=True)
class Policy:
    """A role's statements: its inline policies and its managed policies' documents."""

    role: str
    statements: tuple[Statement, ...]

    def evaluate(self, action: str, resource: str) -> Decision:
        """IAM's identity-policy evaluation: an explicit Deny wins, then any Allow; nothing
        that allows is an implicit deny. A Condition is not evaluated: it fails closed."""
        allow: Statement | None = None
        for st in self.statements:
            if not st.applies(action, resource):
                continue
            if st.effect == "Deny":
                why = " (its condition is not evaluated locally: fails closed)" * bool(st.condition)
                return Decision(False, f"explicitly denied by {st.where}{why}")
            if st.condition:
                log.warning(
                    "%s: %s allows %s on %s only under a condition, which is not evaluated "
                    "locally: it does not apply (fails closed)",
                    self.role,
                    st.where,
                    action,
                    resource,
                )
                continue
            allow = allow or st
        if allow is not None:
            return Decision(True, f"allowed by {allow.where}")
        return Decision(
            False,
            f"no statement of {self.role} allows it: it needs "
            f'{{"Effect": "Allow", "Action": "{action}", "Resource": "{resource}"}}',
        )


def _role_statements(role_id: str, props: Mapping[str, Any]) -> list[Statement]:
    found: list[Statement] = []
    for policy in props.get("Policies", []) or []:
        name = policy.get("PolicyName", "inline")
        for raw in _as_list(policy.get("PolicyDocument", {}).get("Statement", [])):
            found.append(Statement.parse(raw, f"{role_id}/{name}"))
    managed = _managed_policies()
    for arn in props.get("ManagedPolicyArns", []) or []:
        document = managed.get(str(arn))
        if document is None:
            # Unknown: its statements cannot be read, so it grants nothing here (fails closed).
            log.warning("%s: managed policy %s is unknown locally: it grants nothing", role_id, arn)
            continue
        for raw in _as_list(document.get("Statement", [])):
            found.append(Statement.parse(raw, f"{role_id}/{str(arn).rsplit('/', 1)[-1]}"))
    return found


class Roles:
    """Each function's role, from the expansion, resolved against the local resources."""

    def __init__(
        self,
        resources: LocalResources | None = None,
        template: dict[str, Any] | None = None,
    ) -> None:
        self.resources = resources or LocalResources()
        doc = template if template is not None else load_template()
        self.expanded = expand(doc, self.resources.parameters)
        resolve = _Resolver(self.expanded, self.resources)
        self.policies: dict[str, Policy] = {}
        for logical_id, res in self.expanded["Resources"].items():
            if res.get("Type") != "AWS::Lambda::Function":
                continue
            role = res["Properties"].get("Role", {})
            role_id = role.get("Fn::GetAtt", [None])[0] if isinstance(role, dict) else None
            if role_id is None or role_id not in self.expanded["Resources"]:
                continue
            props = resolve(self.expanded["Resources"][role_id].get("Properties", {}))
            self.policies[logical_id] = Policy(role_id, tuple(_role_statements(role_id, props)))

    def policy(self, function: str) -> Policy:
        """`function`: its logical id (`NotifyFunction`) or folder (`notify`)."""
        from local.template import function_id

        return self.policies[function_id(function)]

    def evaluate(self, function: str, action: str, resource: str) -> Decision:
        return self.policy(function).evaluate(action, resource)


# ------------------------------------------------------------------ requests -> (action, resource)


def management_connection_arn(
    resources: LocalResources, operation: str, connection_id: str, stage: str
) -> str:
    api = resources.refs.get("WebSocketApi", "local")
    verb = MANAGEMENT_VERBS.get(operation, "POST")
    return (
        f"arn:{PARTITION}:execute-api:{resources.region}:{resources.account}:"
        f"{api}/{stage}/{verb}/@connections/{connection_id}"
    )


def request_target(
    service: str, operation: str, params: Mapping[str, Any], resources: LocalResources
) -> tuple[str, str]:
    """The IAM action and resource ARN a botocore call is authorised as (`service`: the
    client's service name, e.g. "sqs")."""
    if service == "apigatewaymanagementapi":
        stage = resources.parameters.get("Stage") or _stage_default()
        arn = management_connection_arn(
            resources, operation, unquote(str(params.get("ConnectionId", "*"))), stage
        )
        return "execute-api:ManageConnections", arn
    if service == "sqs":
        # The batch calls are authorised as their single forms (IAM has no sqs:*Batch action).
        operation = operation.removesuffix("Batch")
        if "QueueUrl" in params:
            return f"sqs:{operation}", queue_arn(
                str(params["QueueUrl"]), resources.account, resources.region
            )
        if "QueueName" in params:
            name = params["QueueName"]
            return f"sqs:{operation}", (
                f"arn:{PARTITION}:sqs:{resources.region}:{resources.account}:{name}"
            )
        return f"sqs:{operation}", "*"
    if service == "secretsmanager":
        secret = str(params.get("SecretId", "*"))
        if not secret.startswith("arn:") and secret != "*":
            secret = (
                f"arn:{PARTITION}:secretsmanager:{resources.region}:{resources.account}:"
                f"secret:{secret}"
            )
        return f"secretsmanager:{operation}", secret
    return f"{service}:{operation}", "*"


@functools.lru_cache(maxsize=1)
def _stage_default() -> str:
    return str(load_template().get("Parameters", {}).get("Stage", {}).get("Default", "prod"))


# ------------------------------------------------------------------ the hook

_acting_as: contextvars.ContextVar[tuple[str, AccessChecker] | None] = contextvars.ContextVar(
    "acting_as", default=None
)


@contextmanager
def acting_as(function: str, checker: AccessChecker | None) -> Iterator[None]:
    """AWS calls made in this block (this thread, its tasks, and the threads and pool tasks it
    starts) are `function`'s, evaluated by `checker` against its role (None: not checked)."""
    if checker is None:
        yield
        return
    token = _acting_as.set((function, checker))
    try:
        yield
    finally:
        _acting_as.reset(token)


@dataclass(frozen=True)
class Denial:
    function: str
    action: str
    resource: str
    reason: str


class _DeniedResponse:
    """What a before-call handler hands botocore instead of sending the request."""

    status_code = 403
    headers: Mapping[str, str] = {}
    content = b""
    text = ""


def _before_parameter_build(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context["local_iam_params"] = dict(params)


def _before_call(
    model: Any, context: dict[str, Any], **_: Any
) -> tuple[_DeniedResponse, dict[str, Any]] | None:
    acting = _acting_as.get()
    if acting is None:
        return None
    function, checker = acting
    return checker.check(
        function, model.service_model.service_name, model.name, context.get("local_iam_params", {})
    )


_install_lock = threading.Lock()
_installed = False


def install_hooks() -> None:
    """Once per process: every botocore client created from now on runs `_before_call` before
    each request, and threads and pool tasks inherit the function they were started for (a
    worker thread of a handler acts under its role, as in its own Lambda process)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        from botocore.client import ClientCreator

        create = ClientCreator.create_client

        def create_client(creator: Any, *args: Any, **kwargs: Any) -> Any:
            client = create(creator, *args, **kwargs)
            client.meta.events.register("before-parameter-build", _before_parameter_build)
            client.meta.events.register_first("before-call", _before_call)  # type: ignore[arg-type]
            return client

        ClientCreator.create_client = create_client  # type: ignore[method-assign,assignment]

        start = threading.Thread.start

        def start_in_context(thread: threading.Thread) -> None:
            if _acting_as.get() is not None:
                run, ctx = thread.run, contextvars.copy_context()
                thread.run = lambda: ctx.run(run)  # type: ignore[method-assign]
            start(thread)

        threading.Thread.start = start_in_context  # type: ignore[method-assign,assignment]

        submit = ThreadPoolExecutor.submit

        def submit_in_context(
            pool: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
        ) -> Future[Any]:
            if _acting_as.get() is not None:
                return submit(pool, contextvars.copy_context().run, fn, *args, **kwargs)
            return submit(pool, fn, *args, **kwargs)

        ThreadPoolExecutor.submit = submit_in_context  # type: ignore[method-assign,assignment]
        _installed = True


def forget_cached_clients() -> None:
    """Drop the botocore clients the engine caches (made before `install_hooks`, they would
    carry no hook); the next call makes a hooked one."""
    import sys

    queue = sys.modules.get("engine.queue")
    if queue is not None:
        queue.sqs_client.cache_clear()
    notify = sys.modules.get("engine.notify")
    if notify is not None:
        with notify._client_lock:
            notify._clients.clear()
    secrets = sys.modules.get("engine.secrets")
    if secrets is not None:
        secrets._client.cache_clear()
        secrets._provider.cache_clear()


class AccessChecker:
    """Evaluates the botocore calls made as a function (`acting_as`) against its role: one per
    stack (its resources), recording what it checked and what it denied."""

    def __init__(self, roles: Roles) -> None:
        self.roles = roles
        self.denials: list[Denial] = []
        # (function, action, resource) of the latest calls allowed (bounded: make run is long).
        self.allowed: deque[tuple[str, str, str]] = deque(maxlen=ALLOWED_KEPT)
        self._lock = threading.Lock()
        install_hooks()

    def decide(
        self, function: str, service: str, operation: str, params: Mapping[str, Any]
    ) -> tuple[str, str, Decision]:
        action, resource = request_target(service, operation, params, self.roles.resources)
        return action, resource, self.roles.evaluate(function, action, resource)

    def check(
        self, function: str, service: str, operation: str, params: Mapping[str, Any]
    ) -> tuple[_DeniedResponse, dict[str, Any]] | None:
        """None to let the call go; else the AccessDenied answer botocore raises as AWS's."""
        action, resource, decision = self.decide(function, service, operation, params)
        if decision.allowed:
            with self._lock:
                self.allowed.append((function, action, resource))
            return None
        with self._lock:
            self.denials.append(Denial(function, action, resource, decision.reason))
        log.error(
            "AccessDenied: %s is not authorized to perform %s on %s: %s",
            function,
            action,
            resource,
            decision.reason,
        )
        role = self.roles.policy(function).role
        message = (
            f"User: arn:{PARTITION}:sts::{self.roles.resources.account}:assumed-role/{role}/"
            f"{function} is not authorized to perform: {action} on resource: {resource} "
            f"because no identity-based policy allows the {action} action"
        )
        return _DeniedResponse(), {
            "Error": {"Code": "AccessDenied", "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        }


def denials_report(denials: Sequence[Denial]) -> str:
    return "\n".join(f"{d.function}: {d.action} on {d.resource}: {d.reason}" for d in denials)
