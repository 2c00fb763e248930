"""template.yaml as a stack: translated offline, created on moto's CloudFormation.

    template_stack.py describe --template T
        The functions the template declares, offline: logical id, binary
        (Metadata.BuildProperties.Binary), memory, timeout, events.
    template_stack.py create --template T --endpoint URL --stack-name N [--param K=V ...]
        Translates the SAM template with aws-sam-translator (the library
        `sam` itself uses), creates the result on moto's CloudFormation in
        an AWS account of its own, fills in what moto leaves unapplied (see
        FILLED), and prints the stack as JSON: outputs, resources, and for
        each function the environment moto's Lambda holds for it.
    template_stack.py delete --endpoint URL --account A --stack-name N
        Deletes the stack, then what a stack deletion leaves behind (the
        retained table, the bucket's objects, the secrets), as an operator
        would; prints what it deleted.
    template_stack.py resolve --template T --resource LogicalId=value ... [--param K=V ...]
        Each function's environment with the template's references resolved
        against resources made some other way (the demo's own on real AWS).

Errors go to stderr with exit code 1, naming what failed.
"""

import argparse
import ast
import io
import json
import random
import sys
import time
import urllib.parse
import zipfile

REGION_DEFAULT = "us-east-1"

# What moto 5.2's CloudFormation leaves unapplied and this script fills in,
# by the names the template declares, because the functions depend on it:
#  - AWS::SecretsManager::Secret: moto has no model for it, so the app
#    secret and the invitation key do not exist, and every `Ref` to them
#    (the functions' TIKTOK_APP_SECRET_ID and INVITE_KEY_SECRET_ID, the
#    AppSecretArn and InviteKeySecretArn outputs) is silently dropped from
#    the environment and outputs. Created here (a generated value as
#    GenerateSecretString asks), and the dropped variables set on the
#    functions in moto's Lambda, so its environment is the template's.
#  - AWS::DynamoDB::Table TimeToLiveSpecification (expired login states,
#    leases and invitations are removed by it).
#  - AWS::S3::Bucket VersioningConfiguration (a new version of a key is a
#    new upload) and NotificationConfiguration (uploads/ notifies the queue).
#  - AWS::S3::Bucket LifecycleConfiguration: moto never runs the rules, but
#    S3's API checks their shape, and a test reads them back from the bucket.
# Left unapplied, because nothing a function does on moto depends on them:
# bucket and queue policies and IAM (moto enforces none; the roles' policies
# are read back from moto's IAM for the tests), the bucket's public access
# block, point-in-time recovery, the HTTP
# API (the demo's local gateway plays it, with the template's routes),
# alarms, metric filters, log retention, EventInvokeConfig, architectures.
# Worked around before creating: a Ref to an AWS::Events::EventBus becomes
# the bus's Name (what the Ref gives), as moto would put the bus object there.
# The event source mappings moto creates are disabled: moto would run the
# function in Docker on each message; the demo's event source plays them.
FILLED = [
    "AWS::SecretsManager::Secret (and the Refs to it in environments and outputs)",
    "AWS::DynamoDB::Table TimeToLiveSpecification",
    "AWS::S3::Bucket VersioningConfiguration",
    "AWS::S3::Bucket NotificationConfiguration",
    "AWS::S3::Bucket LifecycleConfiguration",
]


class Failure(Exception):
    pass


def parse_pairs(pairs, what):
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise Failure(f"{what} {pair!r}: expected NAME=VALUE")
        name, value = pair.split("=", 1)
        out[name] = value
    return out


# ---------------------------------------------------------------------------
# The template, translated.
# ---------------------------------------------------------------------------


def load_sam(path):
    from samtranslator.yaml_helper import yaml_parse

    with open(path, encoding="utf-8") as f:
        return yaml_parse(f.read())


def translate(sam, params, code_uri, region):
    """The CloudFormation template `sam deploy` would create, with each
    function's code at `code_uri` (sam build's artifacts are not needed to
    create the stack)."""
    import copy
    import os

    # The translator reads the region (for ARNs and partitions) from boto3's
    # settings.
    os.environ["AWS_DEFAULT_REGION"] = region
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:
        # Only consulted for policies named by name; every role here is
        # written out in the template.
        def load(self):
            return {}

    sam = copy.deepcopy(sam)
    for resource in sam.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource.setdefault("Properties", {})["CodeUri"] = code_uri
    try:
        return transform(sam, params, NoManagedPolicies())
    except Exception as e:  # the translator's own errors name the resource
        raise Failure(f"aws-sam-translator refused the template: {e}") from e


def sam_functions(sam):
    """Each AWS::Serverless::Function: logical id -> its binary and events."""
    functions = {}
    for logical_id, resource in sam.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties", {})
        binary = resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
        events = []
        for name, event in (props.get("Events") or {}).items():
            kind = event.get("Type")
            ep = event.get("Properties", {})
            entry = {"name": name, "type": kind}
            if kind == "HttpApi":
                entry["method"] = ep.get("Method")
                entry["path"] = ep.get("Path")
            elif kind == "SQS":
                entry["batch_size"] = ep.get("BatchSize", 10)
                entry["function_response_types"] = ep.get("FunctionResponseTypes", [])
            elif kind == "DynamoDB":
                # Lambda's defaults when the template leaves them out.
                entry["batch_size"] = ep.get("BatchSize", 100)
                entry["maximum_retry_attempts"] = ep.get("MaximumRetryAttempts", -1)
                entry["function_response_types"] = ep.get("FunctionResponseTypes", [])
            events.append(entry)
        functions[logical_id] = {"binary": binary, "events": events}
    return functions


def globals_of(sam):
    return sam.get("Globals", {}).get("Function", {})


# ---------------------------------------------------------------------------
# Intrinsic functions, resolved against a stack.
# ---------------------------------------------------------------------------

NO_VALUE = object()


class Resolver:
    def __init__(self, template, params, physical, get_att, pseudo):
        self.template = template
        self.params = params
        self.physical = physical
        self.get_att = get_att
        self.pseudo = pseudo
        self.conditions = {}

    def condition(self, name):
        if name not in self.conditions:
            spec = self.template.get("Conditions", {}).get(name)
            if spec is None:
                raise Failure(f"condition {name} is not declared")
            self.conditions[name] = bool(self(spec))
        return self.conditions[name]

    def ref(self, name):
        if name in self.pseudo:
            return self.pseudo[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.params:
            return self.params[name]
        if name in self.physical:
            return self.physical[name]
        raise Failure(f"Ref {name}: neither a parameter nor a resource this stack made")

    def sub(self, text, variables):
        out, rest = "", text
        while "${" in rest:
            start = rest.index("${")
            end = rest.index("}", start)
            out += rest[:start]
            name = rest[start + 2 : end]
            if name.startswith("!"):
                out += "${" + name[1:] + "}"
            elif name in variables:
                out += str(variables[name])
            elif "." in name and name.split(".", 1)[0] not in self.params:
                resource, attribute = name.split(".", 1)
                out += str(self.get_att(resource, attribute))
            else:
                out += str(self.ref(name))
            rest = rest[end + 1 :]
        return out + rest

    def __call__(self, value):
        if isinstance(value, list):
            return [v for v in (self(v) for v in value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                resource, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(resource, attribute)
            if key == "Fn::Sub":
                if isinstance(arg, list):
                    return self.sub(arg[0], {k: self(v) for k, v in arg[1].items()})
                return self.sub(arg, {})
            if key == "Fn::If":
                name, yes, no = arg
                return self(yes if self.condition(name) else no)
            if key == "Fn::Join":
                return arg[0].join(str(v) for v in self(arg[1]))
            if key == "Fn::Select":
                return self(arg[1])[int(self(arg[0]))]
            if key == "Fn::Equals":
                return str(self(arg[0])) == str(self(arg[1]))
            if key == "Fn::Not":
                return not self(arg[0])
            if key == "Fn::And":
                return all(self(a) for a in arg)
            if key == "Fn::Or":
                return any(self(a) for a in arg)
            if key == "Condition":
                return self.condition(arg)
            if key.startswith("Fn::"):
                raise Failure(f"{key} is not resolved here")
        return {k: v for k, v in ((k, self(v)) for k, v in value.items()) if v is not NO_VALUE}


def template_params(template, given):
    params = {}
    for name, spec in template.get("Parameters", {}).items():
        if name in given:
            params[name] = given[name]
        elif "Default" in spec:
            params[name] = str(spec["Default"])
    return params


def as_env_value(value):
    # Lambda's environment holds strings; moto keeps a number (a Ref to a
    # Number parameter) as a number.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------------------
# moto.
# ---------------------------------------------------------------------------


def session_for_account(endpoint, region, account):
    """Credentials in `account` (moto keeps each account apart, as AWS does:
    one stack per account, so stacks of parallel tests never share the
    bucket name the template derives from the account id). "current": the
    account of the credentials in the environment."""
    import boto3

    # The environment's credentials (moto takes any).
    sts = boto3.client("sts", endpoint_url=endpoint, region_name=region)
    if account == "current":
        account = sts.get_caller_identity()["Account"]
    creds = assume(sts, f"arn:aws:iam::{account}:role/tiktok-drafts-deployer")
    return boto3.session.Session(
        aws_access_key_id=creds["access_key_id"],
        aws_secret_access_key=creds["secret_access_key"],
        aws_session_token=creds["session_token"],
        region_name=region,
    ), creds


def assume(sts, role_arn):
    c = sts.assume_role(RoleArn=role_arn, RoleSessionName="tiktok-drafts-local")["Credentials"]
    return {
        "access_key_id": c["AccessKeyId"],
        "secret_access_key": c["SecretAccessKey"],
        "session_token": c["SessionToken"],
    }


def code_bucket_name(account):
    return f"tiktok-drafts-code-{account}"


def code_zip():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        # moto only stores it: the functions run as their real binaries
        # under the Lambda emulator, with the environment read back here.
        z.writestr("bootstrap", "#!/bin/sh\nexit 1\n")
    return buf.getvalue()


def wait_for(cfn, stack_name, verb):
    for _ in range(600):
        stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        status = stack["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            if status != f"{verb}_COMPLETE":
                failed = [
                    f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}"
                    for e in cfn.describe_stack_events(StackName=stack_name)["StackEvents"]
                    if e.get("ResourceStatus", "").endswith("FAILED")
                ]
                raise Failure(f"stack {stack_name}: {status} {stack.get('StackStatusReason') or ''} {failed}")
            return stack
        time.sleep(0.1)
    raise Failure(f"stack {stack_name}: still {status} after a minute")


def create(args):
    endpoint, region = args.endpoint, args.region
    account = args.account or f"{random.randrange(10**11, 10**12):012d}"
    session, deployer = session_for_account(endpoint, region, account)
    account = session.client("sts", endpoint_url=endpoint).get_caller_identity()["Account"]
    client = lambda name: session.client(name, endpoint_url=endpoint)  # noqa: E731
    s3, cfn, sm = client("s3"), client("cloudformation"), client("secretsmanager")
    lam, sqs, ddb, sts = client("lambda"), client("sqs"), client("dynamodb"), client("sts")
    iam = client("iam")

    sam = load_sam(args.template)
    given = parse_pairs(args.param, "--param")
    code_bucket = code_bucket_name(account)
    s3.create_bucket(Bucket=code_bucket)
    s3.put_object(Bucket=code_bucket, Key="code.zip", Body=code_zip())
    template = translate(sam, given, f"s3://{code_bucket}/code.zip", region)
    template = inline_event_bus_refs(template)
    cfn.create_stack(
        StackName=args.stack_name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in given.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
    )
    stack = wait_for(cfn, args.stack_name, "CREATE")
    summaries = cfn.list_stack_resources(StackName=args.stack_name)["StackResourceSummaries"]
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in summaries
        if r.get("LogicalResourceId") and r.get("PhysicalResourceId")
    }
    params = template_params(template, {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])})
    resources = template["Resources"]

    def get_att(logical_id, attribute):
        kind = resources.get(logical_id, {}).get("Type")
        name = physical.get(logical_id)
        if name is None:
            raise Failure(f"GetAtt {logical_id}.{attribute}: no such resource in the stack")
        if kind == "AWS::SQS::Queue":
            attrs = sqs.get_queue_attributes(QueueUrl=name, AttributeNames=["QueueArn"])["Attributes"]
            return {"Arn": attrs["QueueArn"], "QueueName": attrs["QueueArn"].rsplit(":", 1)[1], "QueueUrl": name}[attribute]
        if kind == "AWS::S3::Bucket":
            return {
                "Arn": f"arn:aws:s3:::{name}",
                "RegionalDomainName": f"{name}.s3.{region}.amazonaws.com",
                "DomainName": f"{name}.s3.amazonaws.com",
            }[attribute]
        if kind == "AWS::DynamoDB::Table":
            table = ddb.describe_table(TableName=name)["Table"]
            return {"Arn": table["TableArn"], "StreamArn": table.get("LatestStreamArn")}[attribute]
        if kind == "AWS::Lambda::Function":
            return {"Arn": lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]}[attribute]
        if kind == "AWS::IAM::Role":
            return {"Arn": f"arn:aws:iam::{account}:role/{name}"}[attribute]
        raise Failure(f"GetAtt {logical_id}.{attribute} ({kind}) is not resolved here")

    pseudo = {
        "AWS::Region": region,
        "AWS::AccountId": account,
        "AWS::Partition": "aws",
        "AWS::StackName": args.stack_name,
        "AWS::StackId": stack["StackId"],
        "AWS::URLSuffix": "amazonaws.com",
    }
    resolve = Resolver(template, params, physical, get_att, pseudo)

    # Filled in: see FILLED at the top.
    for logical_id, resource in resources.items():
        kind = resource.get("Type")
        if resource.get("Condition") and not resolve.condition(resource["Condition"]):
            continue
        if kind not in ("AWS::SecretsManager::Secret", "AWS::DynamoDB::Table", "AWS::S3::Bucket"):
            continue
        props = resolve(resource.get("Properties", {}))
        if kind == "AWS::SecretsManager::Secret":
            physical[logical_id] = fill_secret(sm, args.stack_name, logical_id, props)
        elif kind == "AWS::DynamoDB::Table" and "TimeToLiveSpecification" in props:
            ttl = props["TimeToLiveSpecification"]
            ddb.update_time_to_live(
                TableName=physical[logical_id],
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": bool(ttl["Enabled"])},
            )
        elif kind == "AWS::S3::Bucket":
            fill_bucket(s3, physical[logical_id], props)

    functions = {}
    described = sam_functions(sam)
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Lambda::Function" or logical_id not in physical:
            continue
        name = physical[logical_id]
        held = lam.get_function_configuration(FunctionName=name)
        env = dict((held.get("Environment") or {}).get("Variables") or {})
        declared = resolve(resource["Properties"].get("Environment", {})).get("Variables", {})
        # Only what moto dropped (a Ref to a resource it did not make) is
        # added: every value moto did set stays as it is.
        missing = {k: v for k, v in declared.items() if k not in env}
        if missing:
            env.update(missing)
            env = {k: as_env_value(v) for k, v in env.items()}
            lam.update_function_configuration(FunctionName=name, Environment={"Variables": env})
            env = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
        role_arn = held["Role"]
        events = described.get(logical_id, {}).get("events", [])
        for mapping in lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]:
            lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
            for event in events:
                if event["type"] == "SQS":
                    event["queue_arn"] = mapping["EventSourceArn"]
                    event["queue_url"] = sqs.get_queue_url(QueueName=mapping["EventSourceArn"].rsplit(":", 1)[1])["QueueUrl"]
                    event["batch_size"] = mapping.get("BatchSize", event["batch_size"])
                    event["function_response_types"] = mapping.get("FunctionResponseTypes", [])
        for event in events:
            if event["type"] in ("Schedule", "ScheduleV2"):
                rule = physical.get(f"{logical_id}{event['name']}")
                if rule:
                    event["rule_arn"] = f"arn:aws:events:{region}:{account}:rule/{rule}"
        functions[logical_id] = {
            "binary": described.get(logical_id, {}).get("binary"),
            "function_name": name,
            "memory_size": held.get("MemorySize"),
            "timeout": held.get("Timeout"),
            "role_arn": role_arn,
            # The statements its role holds in moto's IAM, as deployed
            # (moto enforces none of them; a test checks requests against them).
            "role_statements": role_statements(iam, role_arn),
            # The credentials Lambda would give it: its own role's.
            "credentials": assume(sts, role_arn),
            "environment": {k: as_env_value(v) for k, v in env.items()},
            "events": events,
        }

    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    for key, output in template.get("Outputs", {}).items():
        if key not in outputs and (not output.get("Condition") or resolve.condition(output["Condition"])):
            outputs[key] = as_env_value(resolve(output["Value"]))
    print(
        json.dumps(
            {
                "stack_name": args.stack_name,
                "account_id": account,
                "region": region,
                "credentials": deployer,
                "parameters": params,
                "outputs": outputs,
                "resources": {
                    k: {"type": resources[k]["Type"], "physical_id": v} for k, v in physical.items() if k in resources
                },
                "functions": functions,
                "filled": FILLED,
            },
            indent=1,
        )
    )


def inline_event_bus_refs(template):
    """Every `Ref` to an AWS::Events::EventBus replaced by the bus's `Name`,
    which is what CloudFormation's Ref gives. moto 5.2's CloudFormation puts
    the bus object itself where the Ref is (a function's environment then
    breaks moto's own GetFunctionConfiguration with a 500)."""
    buses = {
        logical_id: resource["Properties"]["Name"]
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == "AWS::Events::EventBus" and "Name" in resource.get("Properties", {})
    }

    def walk(value):
        if isinstance(value, dict):
            if set(value) == {"Ref"} and value["Ref"] in buses:
                return buses[value["Ref"]]
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(template)


def role_statements(iam, role_arn):
    """The statements of a role's inline policies and of the customer
    managed policies attached to it, as IAM holds them."""
    role = role_arn.rsplit("/", 1)[1]
    documents = [
        iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        for name in list_all(iam.get_paginator("list_role_policies"), "PolicyNames", RoleName=role)
    ]
    for attached in list_all(iam.get_paginator("list_attached_role_policies"), "AttachedPolicies", RoleName=role):
        if attached["PolicyArn"].startswith("arn:aws:iam::aws:policy/"):
            continue  # AWS's own (logs only); not modelled by moto
        version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
        documents.append(
            iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)["PolicyVersion"]["Document"]
        )
    statements = []
    for document in documents:
        if isinstance(document, str):
            text = urllib.parse.unquote(document)
            try:
                document = json.loads(text)
            except json.JSONDecodeError:
                # moto keeps a policy CloudFormation gave it as Python's
                # repr of the document.
                document = ast.literal_eval(text)
        found = document.get("Statement", [])
        statements.extend(found if isinstance(found, list) else [found])
    return statements


def fill_secret(sm, stack_name, logical_id, props):
    name = props.get("Name") or f"{logical_id}-{random.randrange(16**12):012x}"
    if "SecretString" in props:
        value = props["SecretString"]
    else:
        generate = props.get("GenerateSecretString", {})
        value = sm.get_random_password(
            PasswordLength=int(generate.get("PasswordLength", 32)),
            ExcludeCharacters=generate.get("ExcludeCharacters", ""),
            ExcludePunctuation=bool(generate.get("ExcludePunctuation", False)),
        )["RandomPassword"]
    request = {"Name": name, "SecretString": value}
    if props.get("Description"):
        request["Description"] = props["Description"]
    # CloudFormation tags what it makes with the stack's name.
    request["Tags"] = list(props.get("Tags", [])) + [{"Key": "aws:cloudformation:stack-name", "Value": stack_name}]
    return sm.create_secret(**request)["ARN"]


def lifecycle_rule(rule):
    """A CloudFormation lifecycle rule in S3's API shape. A property not
    mapped here fails, rather than being dropped unseen."""
    api = {"ID": rule["Id"], "Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    expiration = {}
    for key, value in rule.items():
        if key in ("Id", "Status", "Prefix"):
            continue
        if key == "ExpirationInDays":
            expiration["Days"] = int(value)
        elif key == "ExpiredObjectDeleteMarker":
            expiration["ExpiredObjectDeleteMarker"] = value in (True, "true", "True")
        elif key == "NoncurrentVersionExpiration":
            api["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(value["NoncurrentDays"])}
        elif key == "AbortIncompleteMultipartUpload":
            api["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(value["DaysAfterInitiation"])}
        else:
            raise Failure(f"lifecycle rule {rule['Id']}: {key} is not mapped to S3's API here")
    if expiration:
        api["Expiration"] = expiration
    return api


def fill_bucket(s3, bucket, props):
    lifecycle = props.get("LifecycleConfiguration")
    if lifecycle:
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": [lifecycle_rule(r) for r in lifecycle["Rules"]]}
        )
    if "VersioningConfiguration" in props:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]})
    notification = props.get("NotificationConfiguration")
    if notification:
        # CloudFormation's shape to S3's.
        def filter_of(c):
            rules = c.get("Filter", {}).get("S3Key", {}).get("Rules", [])
            return {"Filter": {"Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}}} if rules else {}

        config = {}
        for cfn_key, api_key, target, api_target in [
            ("QueueConfigurations", "QueueConfigurations", "Queue", "QueueArn"),
            ("TopicConfigurations", "TopicConfigurations", "Topic", "TopicArn"),
            ("LambdaConfigurations", "LambdaFunctionConfigurations", "Function", "LambdaFunctionArn"),
        ]:
            entries = [{api_target: c[target], "Events": [c["Event"]], **filter_of(c)} for c in notification.get(cfn_key, [])]
            if entries:
                config[api_key] = entries
        if "EventBridgeConfiguration" in notification:
            config["EventBridgeConfiguration"] = {}
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)


# ---------------------------------------------------------------------------
# Deleting, and what a deletion leaves.
# ---------------------------------------------------------------------------


def delete(args):
    session, _ = session_for_account(args.endpoint, args.region, args.account)
    client = lambda name: session.client(name, endpoint_url=args.endpoint)  # noqa: E731
    cfn, s3, sm, ddb = client("cloudformation"), client("s3"), client("secretsmanager"), client("dynamodb")
    deleted = []
    stack = cfn.describe_stacks(StackName=args.stack_name)["Stacks"][0]
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
    summaries = cfn.list_stack_resources(StackName=args.stack_name)["StackResourceSummaries"]
    kinds = {r.get("LogicalResourceId"): (r["ResourceType"], r.get("PhysicalResourceId")) for r in summaries}
    # CloudFormation refuses to delete a bucket with objects in it.
    for kind, name in kinds.values():
        if kind == "AWS::S3::Bucket" and name:
            count = empty_bucket(s3, name)
            deleted.append(f"{count} object version(s) in {name}")
    cfn.delete_stack(StackName=args.stack_name)
    for _ in range(600):
        stacks = [s for s in cfn.list_stacks()["StackSummaries"] if s["StackName"] == args.stack_name]
        if all(s["StackStatus"].endswith("_COMPLETE") or s["StackStatus"].endswith("_FAILED") for s in stacks):
            break
        time.sleep(0.1)
    deleted.append(f"stack {args.stack_name}")
    # Left by the deletion: the table (DeletionPolicy Retain) ...
    for kind, name in kinds.values():
        if kind == "AWS::DynamoDB::Table" and name:
            try:
                ddb.delete_table(TableName=name)
                deleted.append(f"retained table {name}")
            except ddb.exceptions.ResourceNotFoundException:
                pass
    # ... and the secrets: the stack's own (moto's CloudFormation never made
    # them; this script did, tagged as CloudFormation tags) and the account
    # token secrets under its SecretsPrefix (the login makes those). Only
    # these: other stacks' and tests' secrets may share the account.
    prefix = parameters.get("SecretsPrefix")
    for secret in list_all(sm.get_paginator("list_secrets"), "SecretList"):
        tags = {t["Key"]: t["Value"] for t in secret.get("Tags", [])}
        ours = args.stack_name in (tags.get("aws:cloudformation:stack-name"), tags.get("tiktok-drafts:stack")) or (
            prefix and secret["Name"].startswith(f"{prefix}/accounts/")
        )
        if ours:
            sm.delete_secret(SecretId=secret["ARN"], ForceDeleteWithoutRecovery=True)
            deleted.append(f"secret {secret['Name']}")
    code_bucket = code_bucket_name(args.account)
    empty_bucket(s3, code_bucket)
    try:
        s3.delete_bucket(Bucket=code_bucket)
    except s3.exceptions.NoSuchBucket:
        pass
    print(json.dumps({"deleted": deleted}, indent=1))


def list_all(paginator, key, **kwargs):
    for page in paginator.paginate(**kwargs):
        yield from page.get(key, [])


def empty_bucket(s3, bucket):
    count = 0
    try:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
                s3.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
                count += 1
    except s3.exceptions.NoSuchBucket:
        pass
    return count


# ---------------------------------------------------------------------------
# Offline: the functions, and their environment against other resources.
# ---------------------------------------------------------------------------


def describe(args):
    sam = load_sam(args.template)
    defaults = globals_of(sam)
    out = {}
    for logical_id, function in sam_functions(sam).items():
        props = sam["Resources"][logical_id].get("Properties", {})
        out[logical_id] = {
            **function,
            "memory_size": props.get("MemorySize", defaults.get("MemorySize", 128)),
            "timeout": props.get("Timeout", defaults.get("Timeout", 3)),
            # The variables it is given, its own and the Globals'.
            "environment": sorted(
                {
                    **defaults.get("Environment", {}).get("Variables", {}),
                    **props.get("Environment", {}).get("Variables", {}),
                }
            ),
        }
    print(json.dumps({"functions": out}, indent=1))


def resolve_env(args):
    sam = load_sam(args.template)
    given = parse_pairs(args.param, "--param")
    physical = parse_pairs(args.resource, "--resource")
    template = translate(sam, given, "s3://unused/code.zip", args.region)
    resources = template["Resources"]

    def get_att(logical_id, attribute):
        raise Failure(f"GetAtt {logical_id}.{attribute}: give the environment variable that uses it yourself")

    pseudo = {"AWS::Region": args.region, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
    resolve = Resolver(template, template_params(template, given), physical, get_att, pseudo)
    binaries = sam_functions(sam)
    out = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        declared = resource["Properties"].get("Environment", {}).get("Variables", {})
        entry = {"binary": binaries.get(logical_id, {}).get("binary")}
        try:
            entry["environment"] = {name: as_env_value(resolve(value)) for name, value in declared.items()}
        except Failure as e:
            # Only this function cannot run on these resources.
            entry["error"] = f"{logical_id}: {e}"
        out[logical_id] = entry
    print(json.dumps({"functions": out}, indent=1))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    d = commands.add_parser("describe")
    d.add_argument("--template", required=True)
    c = commands.add_parser("create")
    c.add_argument("--template", required=True)
    c.add_argument("--endpoint", required=True)
    c.add_argument("--region", default=REGION_DEFAULT)
    c.add_argument("--stack-name", required=True)
    c.add_argument("--account", help='12 digits, or "current" (the environment\'s); default: a new random one')
    c.add_argument("--param", action="append")
    x = commands.add_parser("delete")
    x.add_argument("--endpoint", required=True)
    x.add_argument("--region", default=REGION_DEFAULT)
    x.add_argument("--account", required=True)
    x.add_argument("--stack-name", required=True)
    r = commands.add_parser("resolve")
    r.add_argument("--template", required=True)
    r.add_argument("--region", default=REGION_DEFAULT)
    r.add_argument("--resource", action="append")
    r.add_argument("--param", action="append")
    args = parser.parse_args()
    try:
        {"describe": describe, "create": create, "delete": delete, "resolve": resolve_env}[args.command](args)
    except Failure as e:
        print(f"template-stack: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # botocore's errors name the call and the reason
        print(f"template-stack: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
