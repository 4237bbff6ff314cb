"""
moto's server with DynamoDB requests serialized (agent-fleet's local stand-in for AWS).

moto 5.2's TransactWriteItems snapshots every table it touches with copy.deepcopy and, when the
transaction fails a condition, puts the snapshot back: any write another server thread made to
those tables in between is silently undone. The chaos suite lost a freshly put task record that
way (the submitter's next UpdateItem then failed `attribute_exists(task_id)`). Real DynamoDB has
no such window, so DynamoDB calls are taken one at a time here; everything else (SQS long polls
above all) stays concurrent.

Usage: python3 moto-serialized.py -H 127.0.0.1 -p PORT   (the arguments of moto_server)
"""
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.server import main

_dynamodb_lock = threading.Lock()
_dispatch = DomainDispatcherApplication.__call__


def _serialized_call(self, environ, start_response):
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
        with _dynamodb_lock:
            # moto builds the whole response inside the call; materialize it under the lock.
            return list(_dispatch(self, environ, start_response))
    return _dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = _serialized_call

if __name__ == "__main__":
    main(sys.argv[1:])
