"""moto in server mode on loopback, with DynamoDB requests taken one at a time.

moto 5.2's TransactWriteItems rolls a failed transaction back by restoring a
copy of the whole table taken when it started, which erases writes that other
requests made meanwhile. Real DynamoDB never does that, and the project's
tests race transactions on purpose (two logins for one invitation, claims of
one upload). Serialising DynamoDB requests makes moto's transactions atomic
as DynamoDB's are; S3 and Secrets Manager stay concurrent.

moto 5.2 also hands every stream record to each Lambda event source mapping
of the table, disabled or not, and then drops the shard's records. Lambda
never polls a disabled mapping, and a stream keeps its records for 24 hours
whoever reads them: the local stack disables the template's mappings and
runs the functions itself, reading the stream as Lambda would, so disabled
mappings are left out here.

Tests may also ask for AWS requests to fail, to prove that the code survives
a service that errs (real AWS does, now and then). `POST /_faults` with
`{"target": "secretsmanager.PutSecretValue", "contains": "<text in the
request body, e.g. a secret name>", "times": 2, "status": 500, "code":
"InternalServiceError"}` makes the next `times` matching requests answer that
error without reaching moto; with `"stale": true` instead, a matching
`GetSecretValue` is answered with the secret's previous version, as Secrets
Manager's eventually consistent reads may do right after a write. `GET
/_faults` lists what is left, `DELETE /_faults` clears them. Only requests
with an `X-Amz-Target` (JSON protocol services such as Secrets Manager and
DynamoDB) can be matched.

    python moto_server.py HOST PORT
"""

import json
import signal
import sys
import threading
from io import BytesIO

from werkzeug.serving import run_simple

from moto.dynamodb.models.table import StreamShard
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def serialise_dynamodb(app):
    lock = threading.Lock()

    def wrapped(environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with lock:
                # The body is produced inside the lock too: moto builds it eagerly.
                return list(app(environ, start_response))
        return app(environ, start_response)

    return wrapped


class Faults:
    """Scripted AWS errors (see the module's doc)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []

    def control(self, environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET")
        with self.lock:
            if method == "POST":
                try:
                    length = int(environ.get("CONTENT_LENGTH") or 0)
                    rule = json.loads(environ["wsgi.input"].read(length) or b"{}")
                    rule = {
                        "target": str(rule["target"]),
                        "contains": str(rule.get("contains", "")),
                        "times": int(rule.get("times", 1)),
                        "status": int(rule.get("status", 500)),
                        "code": str(rule.get("code", "InternalServiceError")),
                        "stale": bool(rule.get("stale", False)),
                    }
                except (KeyError, TypeError, ValueError) as err:
                    return respond(start_response, 400, {"error": f"bad fault rule: {err}"})
                self.rules.append(rule)
            elif method == "DELETE":
                self.rules.clear()
            return respond(start_response, 200, {"faults": self.rules})

    def take(self, environ):
        """The fault for this request, if one matches; reads and restores the body."""
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        with self.lock:
            if not target or not any(r["target"] == target for r in self.rules):
                return None
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = BytesIO(body)
            text = body.decode("utf-8", "replace")
            for rule in self.rules:
                if rule["target"] == target and rule["contains"] in text:
                    rule["times"] -= 1
                    if rule["times"] <= 0:
                        self.rules.remove(rule)
                    return rule
        return None


def respond(start_response, status, body):
    data = json.dumps(body).encode()
    start_response(
        f"{status} {'OK' if status == 200 else 'Error'}",
        [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(data)))],
    )
    return [data]


def inject_faults(app):
    faults = Faults()

    def wrapped(environ, start_response):
        if environ.get("PATH_INFO") == "/_faults":
            return faults.control(environ, start_response)
        rule = faults.take(environ)
        if rule is not None and rule["stale"]:
            body = json.loads(environ["wsgi.input"].read() or b"{}")
            body.pop("VersionId", None)
            body["VersionStage"] = "AWSPREVIOUS"
            data = json.dumps(body).encode()
            environ["wsgi.input"] = BytesIO(data)
            environ["CONTENT_LENGTH"] = str(len(data))
            return app(environ, start_response)
        if rule is not None:
            error = {"__type": rule["code"], "message": "Injected fault (tests)."}
            return respond(start_response, rule["status"], error)
        return app(environ, start_response)

    return wrapped


def honour_disabled_stream_mappings():
    add = StreamShard.add

    def add_skipping_disabled(self, old, new):
        mappings = self.table.lambda_event_source_mappings
        disabled = {arn: m for arn, m in mappings.items() if not getattr(m, "enabled", True)}
        for arn in disabled:
            del mappings[arn]
        try:
            add(self, old, new)
        finally:
            mappings.update(disabled)

    StreamShard.add = add_skipping_disabled


def main():
    honour_disabled_stream_mappings()
    host, port = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        host,
        port,
        inject_faults(serialise_dynamodb(app)),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
