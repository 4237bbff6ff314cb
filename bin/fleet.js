#!/bin/sh
':' //; # sh reads the lines that start with ':' //; and node skips them as comments.
':' //; # Node parses NODE_EXTRA_CA_CERTS as it starts (~45 ms); the CLI reads it at its first
':' //; # TLS connection instead (scripts/cli/deferred-ca.ts), unless NODE_OPTIONS picks another store.
':' //; case " ${NODE_OPTIONS-} " in *--use-openssl-ca*|*--use-system-ca*) ;; *) if [ -n "${NODE_EXTRA_CA_CERTS-}" ]; then FLEET_DEFERRED_NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS; export FLEET_DEFERRED_NODE_EXTRA_CA_CERTS; unset NODE_EXTRA_CA_CERTS; fi ;; esac
':' //; exec node "$0" "$@"
// fleet CLI entry; see bin/launch.js.
require('./launch').launch('scripts/fleet.ts', 'fleet.mjs', { dynamicImports: true });
