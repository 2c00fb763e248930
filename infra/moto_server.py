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

    python moto_server.py HOST PORT
"""

import signal
import sys
import threading

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
        serialise_dynamodb(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
