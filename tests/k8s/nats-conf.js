// Prints a nats-server config for a local test with the accounts, users, permissions and
// max_payload of k8s/nats/values.yaml, on loopback with a temporary store, plus a client
// user for NATS-native submits of one tenant (password from $NATS_PASSWORD_CLIENT) shaped
// as k8s/nats/README.md tells operators to add them.
// Usage: node nats-conf.js VALUES.yaml PORT STORE_DIR TENANT
'use strict';
const fs = require('fs');
const YAML = require('yaml');

const [valuesFile, port, storeDir, tenant] = process.argv.slice(2);
const values = YAML.parse(fs.readFileSync(valuesFile, 'utf8'));
const merge = values.config.merge;
merge.accounts.REQRUN.users.push({
  user: `client-${tenant}`,
  password: '<< $NATS_PASSWORD_CLIENT >>',
  permissions: { publish: { allow: [`reqrun.submit.${tenant}`] }, subscribe: { allow: [`_INBOX_client-${tenant}.>`] } },
});
// The chart's jetstream.merge (sync_interval) is left out: the local server is Debian's
// 2.9.10, which lacks it (PLATFORM.md).
const conf = { listen: `127.0.0.1:${port}`, jetstream: { store_dir: storeDir }, ...merge };
// The chart writes "<< x >>" unquoted: sizes and $ENV references.
const text = JSON.stringify(conf, null, 2).replace(/"<<\s*(.*?)\s*>>"/g, '$1');
process.stdout.write(text + '\n');
