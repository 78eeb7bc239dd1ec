// Proves each check of check-manifests.js can fail: every mutation below breaks one
// thing in a copy of the rendered overlay (or of the facts) and expects its check to
// report it. A check that stops catching its mutation fails the test.
'use strict';
const { runChecks } = require('./check-manifests');
const { find } = require('./objects');

const dep = (objs, name) => find(objs, 'Deployment', name);
const pod = (objs, name) => dep(objs, name).spec.template.spec;
const ctr = (objs, name) => pod(objs, name).containers[0];
const cm = (objs) => objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('reqrun-config'));
const np = (objs, name) => find(objs, 'NetworkPolicy', name);
const so = (objs) => objs.find((o) => o.kind === 'ScaledObject');
const envVar = (c, name) => c.env.find((e) => e.name === name);

// [check, overlay (null: the facts), what, mutation]
const MUTATIONS = [
  ['schema', 'prod', 'containerPort as a string', (o) => { ctr(o, 'reqrun-ingress').ports[0].containerPort = '8080'; }],
  ['schema', 'prod', 'a kind without schema', (o) => { o.push({ apiVersion: 'example.com/v1', kind: 'Thing', metadata: { name: 'x' } }); }],
  ['containers', 'prod', 'no readiness probe', (o) => { delete ctr(o, 'reqrun-ingress').readinessProbe; }],
  ['containers', 'prod', 'liveness on /readyz', (o) => { ctr(o, 'reqrun-executor').livenessProbe.httpGet.path = '/readyz'; }],
  ['containers', 'dev', 'probe on a port the container lacks', (o) => { ctr(o, 'reqrun-mockllm').startupProbe.httpGet.port = 9999; }],
  ['containers', 'prod', 'no memory limit', (o) => { delete ctr(o, 'reqrun-executor').resources.limits.memory; }],
  ['containers', 'prod', 'writable root fs', (o) => { ctr(o, 'reqrun-ingress').securityContext.readOnlyRootFilesystem = false; }],
  ['containers', 'prod', 'capabilities kept', (o) => { ctr(o, 'reqrun-executor').securityContext.capabilities.drop = []; }],
  ['containers', 'prod', 'no seccomp', (o) => { delete pod(o, 'reqrun-ingress').securityContext.seccompProfile; }],
  ['containers', 'prod', 'runAsNonRoot off', (o) => { pod(o, 'reqrun-ingress').securityContext.runAsNonRoot = false; delete ctr(o, 'reqrun-ingress').securityContext.runAsNonRoot; }],
  ['containers', 'prod', 'Job without securityContext', (o) => { delete find(o, 'Job', 'reqrun-provision').spec.template.spec.containers[0].securityContext; }],
  ['selectors', 'prod', 'Service selector typo', (o) => { find(o, 'Service', 'reqrun-ingress').spec.selector['app.kubernetes.io/name'] = 'reqrun-ingres'; }],
  ['selectors', 'prod', 'PDB selecting every pod of ReqRun', (o) => { find(o, 'PodDisruptionBudget', 'reqrun-executor').spec.selector = { matchLabels: { 'app.kubernetes.io/part-of': 'reqrun' } }; }],
  ['selectors', 'prod', 'Deployment selector not matching its template', (o) => { dep(o, 'reqrun-executor').spec.selector.matchLabels['app.kubernetes.io/name'] = 'x'; }],
  ['selectors', 'prod', 'HPA target missing', (o) => { find(o, 'HorizontalPodAutoscaler', 'reqrun-ingress').spec.scaleTargetRef.name = 'ingress'; }],
  ['selectors', 'prod', 'ScaledObject target missing', (o) => { so(o).spec.scaleTargetRef.name = 'executor'; }],
  ['selectors', 'prod', 'replicas on an autoscaled Deployment', (o) => { dep(o, 'reqrun-ingress').spec.replicas = 3; }],
  ['env', 'prod', 'unknown variable in the ConfigMap', (o) => { cm(o).data.REQRUN_UPSTREAM_TIMEOUT = '300'; }],
  ['env', 'prod', 'unknown variable in a container', (o) => { ctr(o, 'reqrun-ingress').env.push({ name: 'REQRUN_API_KEYS', value: '/x' }); }],
  ['env', 'prod', 'integer out of bounds', (o) => { cm(o).data.REQRUN_REPLICAS = '7'; }],
  ['env', 'prod', 'not a boolean', (o) => { cm(o).data.REQRUN_PROVISION = 'maybe'; }],
  ['env', 'prod', 'secret with a literal value', (o) => { envVar(ctr(o, 'reqrun-ingress'), 'REQRUN_NATS_PASSWORD').value = 'x'; delete envVar(ctr(o, 'reqrun-ingress'), 'REQRUN_NATS_PASSWORD').valueFrom; }],
  ['env', 'prod', 'provisioning on in a Deployment', (o) => { ctr(o, 'reqrun-executor').env.push({ name: 'REQRUN_PROVISION', value: '1' }); }],
  ['env', 'prod', 'executor with other stream settings', (o) => { ctr(o, 'reqrun-executor').env.push({ name: 'REQRUN_MAX_ATTEMPTS', value: '3' }); }],
  ['env', 'prod', 'missing ConfigMap', (o) => { ctr(o, 'reqrun-ingress').envFrom[0].configMapRef.name = 'nope'; }],
  ['ports', 'prod', 'Service targetPort name typo', (o) => { find(o, 'Service', 'reqrun-ingress').spec.ports[0].targetPort = 'htp'; }],
  ['ports', 'prod', 'listen address on loopback', (o) => { cm(o).data.REQRUN_EXECUTOR_LISTEN = '127.0.0.1:8081'; }],
  ['ports', 'dev', 'listen port not the containerPort', (o) => { envVar(ctr(o, 'reqrun-mockllm'), 'REQRUN_MOCK_LISTEN').value = '0.0.0.0:9090'; }],
  ['shutdown', 'prod', 'executor grace below the upstream timeout', (o) => { pod(o, 'reqrun-executor').terminationGracePeriodSeconds = 120; }],
  ['shutdown', 'dev', 'drain shorter than an upstream call', (o) => { cm(o).data.REQRUN_DRAIN_TIMEOUT_S = '10'; }],
  ['shutdown', 'prod', 'ingress without preStop', (o) => { delete ctr(o, 'reqrun-ingress').lifecycle; }],
  ['secrets', 'prod', 'a rendered Secret', (o) => { o.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'reqrun-upstream' }, stringData: { 'api-key': 'x' } }); }],
  ['secrets', 'prod', 'upstream key mounted in the ingress', (o) => { pod(o, 'reqrun-ingress').volumes.push({ name: 'up', secret: { secretName: 'reqrun-upstream' } }); }],
  ['secrets', 'prod', 'key file outside its mount', (o) => { envVar(ctr(o, 'reqrun-executor'), 'REQRUN_UPSTREAM_API_KEY_FILE').value = '/etc/upstream/api-key'; }],
  ['secrets', 'prod', 'key file name the Secret lacks', (o) => { envVar(ctr(o, 'reqrun-ingress'), 'REQRUN_API_KEYS_FILE').value = '/etc/reqrun/api-keys/keys'; }],
  ['secrets', 'prod', 'undocumented Secret', (o) => { envVar(ctr(o, 'reqrun-ingress'), 'REQRUN_NATS_PASSWORD').valueFrom.secretKeyRef.name = 'nats-secret'; }],
  ['image', 'prod', 'command not in the image', (o) => { ctr(o, 'reqrun-executor').command = ['/usr/bin/reqrun-executor']; }],
  ['image', 'prod', 'preStop binary not in the image', (o) => { ctr(o, 'reqrun-ingress').lifecycle.preStop.exec.command = ['/bin/sh', '-c', 'sleep 5']; }],
  ['image', 'prod', 'another uid', (o) => { pod(o, 'reqrun-executor').securityContext.runAsUser = 1000; }],
  ['image', 'prod', 'port not EXPOSEd', (o) => { ctr(o, 'reqrun-ingress').ports.push({ name: 'x', containerPort: 9000 }); }],
  ['image', 'prod', 'another image', (o) => { ctr(o, 'reqrun-ingress').image = 'nginx:1.27'; }],
  ['netpol', 'prod', 'no default deny', (o) => { o.splice(o.indexOf(np(o, 'default-deny')), 1); }],
  ['netpol', 'prod', 'executor egress to NATS lost', (o) => { np(o, 'reqrun-executor').spec.egress.shift(); }],
  ['netpol', 'prod', 'NATS open to everyone', (o) => { np(o, 'nats').spec.ingress[0].from = []; }],
  ['netpol', 'prod', 'executor egress to private ranges', (o) => { delete np(o, 'reqrun-executor').spec.egress[1].to[0].ipBlock.except; }],
  ['netpol', 'prod', 'cloud metadata reachable', (o) => { const b = np(o, 'reqrun-executor').spec.egress[1].to[0].ipBlock; b.except = b.except.filter((c) => c !== '169.254.0.0/16'); }],
  ['netpol', 'prod', 'KEDA cannot reach monitoring', (o) => { np(o, 'nats').spec.ingress[2].ports[0].port = 8223; }],
  ['netpol', 'prod', 'ingress may reach the internet', (o) => { np(o, 'reqrun-ingress').spec.egress.push({ ports: [{ protocol: 'TCP', port: 443 }] }); }],
  ['netpol', 'prod', 'policy selecting no pod', (o) => { np(o, 'reqrun-provision').spec.podSelector.matchLabels['app.kubernetes.io/name'] = 'reqrun-provisioner'; }],
  ['netpol', 'prod', 'no DNS', (o) => { o.splice(o.indexOf(np(o, 'allow-dns')), 1); }],
  ['netpol', 'dev', 'executor cannot reach the mock', (o) => { o.splice(o.indexOf(np(o, 'reqrun-executor-to-mockllm')), 1); }],
  ['scaling', 'prod', 'wrong consumer', (o) => { so(o).spec.triggers[0].metadata.consumer = 'executor'; }],
  ['scaling', 'dev', 'monitoring endpoint in another namespace', (o) => { so(o).spec.triggers[0].metadata.natsServerMonitoringEndpoint = 'nats-headless.reqrun.svc.cluster.local:8222'; }],
  ['scaling', 'prod', 'lag target above concurrency', (o) => { so(o).spec.triggers[0].metadata.lagThreshold = '1000'; }],
  ['scaling', 'prod', 'scale to zero', (o) => { so(o).spec.minReplicaCount = 0; }],
  ['scaling', 'prod', 'unknown account', (o) => { so(o).spec.triggers[0].metadata.account = '$G'; }],
  ['natsUsers', 'prod', 'unknown NATS user', (o) => { envVar(ctr(o, 'reqrun-executor'), 'REQRUN_NATS_USER').value = 'executor'; }],
  ['natsUsers', 'prod', "another user's password", (o) => { envVar(ctr(o, 'reqrun-executor'), 'REQRUN_NATS_PASSWORD').valueFrom.secretKeyRef.key = 'ingress'; }],
  ['natsUsers', 'prod', 'default inbox prefix', (o) => { const w = ctr(o, 'reqrun-executor'); w.env = w.env.filter((e) => e.name !== 'REQRUN_NATS_INBOX_PREFIX'); }],
  ['natsUsers', 'prod', "another user's inbox prefix", (o) => { envVar(ctr(o, 'reqrun-executor'), 'REQRUN_NATS_INBOX_PREFIX').value = '_INBOX_reqrun-ingress'; }],
  ['natsUsers', 'prod', 'a user reads every inbox', (o, g) => { g.values.config.merge.accounts.REQRUN.users[3].permissions.subscribe.allow.push('_INBOX.>'); }],
  ['natsUsers', 'prod', 'prod with R1 streams', (o) => { cm(o).data.REQRUN_REPLICAS = '1'; }],
  ['natsValues', null, 'no sync_interval', (g) => { delete g.values.config.jetstream.merge.sync_interval; }],
  ['natsValues', null, 'max_payload too small', (g) => { g.values.config.merge.max_payload = '<< 1MB >>'; }],
  ['natsValues', null, 'literal password', (g) => { g.values.config.merge.accounts.REQRUN.users[0].password = 'hunter2'; }],
  ['natsValues', null, 'server 2.9', (g) => { g.values.container.image.tag = '2.9.25-alpine'; }],
  ['natsValues', null, 'single server', (g) => { g.values.config.cluster.replicas = 1; }],
  ['dockerfile', null, 'runtime lib missing', (g) => { g.docker.final.packages = g.docker.final.packages.filter((p) => p !== 'libnats3.4'); }],
  ['dockerfile', null, 'misspelt package', (g) => { g.docker.final.packages.push('libjansson5'); g.docker.stages[0].packages.push('libjansson5'); }],
  ['dockerfile', null, 'a directory the build reads is not copied', (g) => { g.docker.stages[0].copies = g.docker.stages[0].copies.filter((c) => !c.sources.includes('proto/')); }],
  ['dockerfile', null, 'root user', (g) => { g.docker.final.user = 'root'; }],
  ['dockerfile', null, 'COPY of an ignored path', (g) => { g.docker.stages[0].copies.push({ sources: ['tests/'], dest: 'tests/' }); }],
];

function run(overlays, g) {
  let failed = 0;
  for (const [check, overlay, what, mutate] of MUTATIONS) {
    const ovs = structuredClone(overlays);
    const facts = structuredClone(g);
    const target = ovs.find((o) => o.name === overlay);
    if (overlay && !target) throw new Error(`self-test: no overlay ${overlay}`);
    mutate(overlay ? target.objs : facts, facts);
    const errors = runChecks(overlay ? [target] : [], facts, check);
    if (errors.length === 0) {
      failed++;
      console.log(`FAIL self-test: [${check}] did not catch: ${what}`);
    }
  }
  console.log(`${failed ? 'FAILED' : 'ok'}: self-test, ${MUTATIONS.length - failed}/${MUTATIONS.length} mutations caught`);
  return failed;
}

module.exports = { run };
