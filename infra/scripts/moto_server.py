"""moto's DynamoDB/SNS server for the test suite, one request at a time.

moto's server answers requests on many threads without a lock around an operation, so
two concurrent TransactWriteItems can both pass their conditions before either writes.
Real DynamoDB never lets that happen (transactions are serializable). Serializing the
requests here gives the emulator DynamoDB's isolation, so the concurrency tests test our
code and not the emulator's races.

It also answers GET /_fund-account-test/sns with what SNS has "sent" (SMS and topic
notifications). moto's own /moto-api/data.json dumps every tracked model, DynamoDB items
included, and under the lock above it stalls every other test's request for as long as
the dump takes: with the suite's tables, minutes.

Usage: moto_server.py PORT [--exit-with-parent]
"""

import json

import os
import sys
import threading
import time

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def sns_sent() -> dict:
    """What SNS has published, shaped as /moto-api/data.json shows it under "sns"."""
    from moto.sns.models import sns_backends

    topics, sms = [], []
    for account, regions in sns_backends.items():
        for region, backend in regions.items():
            for arn, topic in backend.topics.items():
                topics.append({"arn": arn, "sent_notifications": [list(n) for n in topic.sent_notifications]})
            for phone, message in backend.sms_messages.values():
                sms.append({"phone_number": phone, "message": message})
    return {"sns": {"Topic": topics, "SMS": sms}}


# Stream records a shard keeps, newest last. DynamoDB keeps a stream's records for 24
# hours and drops older ones (reading past the trim horizon is an error); moto keeps every
# record of every table for the life of the server, and with the table's stream on, the
# suite's writes grew it past this machine's memory. The tests read a stream within
# moments of writing it, a few hundred records at most.
STREAM_RECORDS_KEPT = 1000


def trim_stream_shards() -> None:
    """Bounds each stream shard to its newest STREAM_RECORDS_KEPT records, as DynamoDB's
    retention bounds it by age: the trim horizon (`starting_sequence_number`) moves up
    with what is dropped, so sequence numbers and iterators stay valid, and an iterator
    older than the horizon reads from the horizon (DynamoDB would refuse it)."""
    from moto.dynamodb.models.table import StreamShard

    add = StreamShard.add

    def add_and_trim(self, old, new) -> None:  # type: ignore[no-untyped-def]
        add(self, old, new)
        excess = len(self.items) - STREAM_RECORDS_KEPT
        if excess > 0:
            del self.items[:excess]
            self.starting_sequence_number += excess

    def get(self, start, quantity):  # type: ignore[no-untyped-def]
        start = max(start - self.starting_sequence_number, 0)
        return [i.to_json() for i in self.items[start : start + quantity]]

    StreamShard.add = add_and_trim
    StreamShard.get = get


def back_up_each_table_once() -> None:
    """moto's TransactWriteItems backs the table up (a deep copy, for the rollback) once
    per *item* of the transaction, not once per table: a settlement batch of 98 items
    copied its table 98 times, minutes and gigabytes on a table of a few thousand items.
    One copy per table per transaction is the same rollback. Requests are serialised
    (see main), so swapping `copy.deepcopy` for the call is safe."""
    import copy

    from moto.dynamodb import models

    transact_write_items = models.DynamoDBBackend.transact_write_items
    deepcopy = copy.deepcopy

    def once_per_table(self, transact_items):  # type: ignore[no-untyped-def]
        backups: dict[int, object] = {}

        def backup(obj, memo=None):  # type: ignore[no-untyped-def]
            if isinstance(obj, models.Table):
                if id(obj) not in backups:
                    backups[id(obj)] = deepcopy(obj)
                return backups[id(obj)]
            return deepcopy(obj, memo)

        copy.deepcopy = backup
        try:
            return transact_write_items(self, transact_items)
        finally:
            copy.deepcopy = deepcopy

    models.DynamoDBBackend.transact_write_items = once_per_table


def main() -> None:
    port = int(sys.argv[1])
    trim_stream_shards()
    back_up_each_table_once()
    os.environ.setdefault("MOTO_PORT", str(port))
    if "--exit-with-parent" in sys.argv:
        parent = os.getppid()

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(0)

        threading.Thread(target=watch, daemon=True).start()

    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialized(environ, start_response):
        with lock:
            if environ.get("PATH_INFO") == "/_fund-account-test/sns":
                body = json.dumps(sns_sent()).encode()
                start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
                return [body]
            return list(app(environ, start_response))

    run_simple("127.0.0.1", port, serialized, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
