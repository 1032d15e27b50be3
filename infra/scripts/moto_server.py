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


def main() -> None:
    port = int(sys.argv[1])
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
