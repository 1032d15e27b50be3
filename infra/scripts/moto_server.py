"""moto's DynamoDB/SNS server for the test suite, one request at a time.

moto's server answers requests on many threads without a lock around an operation, so
two concurrent TransactWriteItems can both pass their conditions before either writes.
Real DynamoDB never lets that happen (transactions are serializable). Serializing the
requests here gives the emulator DynamoDB's isolation, so the concurrency tests test our
code and not the emulator's races.

Usage: moto_server.py PORT [--exit-with-parent]
"""

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
            return list(app(environ, start_response))

    run_simple("127.0.0.1", port, serialized, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
