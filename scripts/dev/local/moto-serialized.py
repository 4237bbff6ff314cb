"""
moto's server with DynamoDB requests serialized (agent-fleet's local stand-in for AWS).

moto 5.2's TransactWriteItems snapshots every table it touches with copy.deepcopy and, when the
transaction fails a condition, puts the snapshot back: any write another server thread made to
those tables in between is silently undone. The chaos suite lost a freshly put task record that
way (the submitter's next UpdateItem then failed `attribute_exists(task_id)`). Real DynamoDB has
no such window, so DynamoDB calls are taken one at a time here; everything else (SQS long polls
above all) stays concurrent.

The same TransactWriteItems is also why a long run slowed down and grew moto to tens of GB:
its rollback snapshot deep-copies each table it touches, items, indexes and the table's whole
stream history (moto never trims a stream), on every call, failed or not. A fleet transaction
touches the tasks table (streamed) and the events table, so each claim, heartbeat and terminal
write cost time and garbage in proportion to everything written before it: the chaos suite's
three seeds left moto at 12 GB, and the bench's 300-task leak check once swapped the machine.
Since DynamoDB calls are serialized here anyway, the snapshot is taken per item instead (the
items the transaction names, and each streamed table's stream length), and a failed transaction
puts exactly those back. The table-wide copy in moto's own code is made an identity for Table
objects only (every other deepcopy is untouched), so its rollback assignment is a no-op.

Usage: python3 moto-serialized.py -H 127.0.0.1 -p PORT   (the arguments of moto_server)
"""
import copy
import sys
import threading
import types

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
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


def _deepcopy_except_tables(value, memo=None):
    return value if isinstance(value, Table) else copy.deepcopy(value, memo)


# moto's dynamodb models module calls `copy.deepcopy`; only its table-wide snapshot is a Table.
dynamodb_models.copy = types.SimpleNamespace(**{**vars(copy), "deepcopy": _deepcopy_except_tables})

_transact_write_items = DynamoDBBackend.transact_write_items


def _item_key(table, op_type, op):
    if op_type != "Put":
        return op.get("Key")
    attrs = op.get("Item") or {}
    names = [n for n in (table.hash_key_attr, table.range_key_attr) if n is not None]
    return {n: attrs[n] for n in names if n in attrs}


def _snapshot(backend, transact_items):
    """(table, hash, range, deep copy of the item or None) per named item; stream lengths."""
    items, streams = [], {}
    for entry in transact_items if isinstance(transact_items, list) else []:
        try:
            op_type, op = next(iter(entry.items()))
            table = backend.tables[op["TableName"]]
            hash_key, range_key = backend.get_keys_value(table, _item_key(table, op_type, op))
        except Exception:  # malformed: moto's own validation answers it, and writes nothing
            continue
        current = table.get_item(hash_key, range_key)
        items.append((table, hash_key, range_key, copy.deepcopy(current)))
        if table.stream_shard is not None:
            streams.setdefault(id(table), (table.stream_shard, len(table.stream_shard.items)))
    return items, streams


def _restore(items, streams):
    for table, hash_key, range_key, original in reversed(items):
        if range_key is not None:
            if original is None:
                table.items.get(hash_key, {}).pop(range_key, None)
            else:
                table.items[hash_key][range_key] = original
        elif original is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = original
    for shard, length in streams.values():
        del shard.items[length:]


def _transact_write_items_item_snapshot(self, transact_items):
    items, streams = _snapshot(self, transact_items)
    try:
        return _transact_write_items(self, transact_items)
    except Exception:
        _restore(items, streams)
        raise


DynamoDBBackend.transact_write_items = _transact_write_items_item_snapshot

if __name__ == "__main__":
    main(sys.argv[1:])
