// Checks of the platform around the workloads: NetworkPolicies, autoscaling, NATS users
// (per overlay: fn(overlay, facts, err)), the NATS chart values and the Dockerfile (once:
// fn(facts, err)).
'use strict';
const fs = require('fs');
const path = require('path');
const F = require('./facts');
const {
  find,
  workloads,
  containersOf,
  binaryOf,
  envOf,
  setting,
  servicesSelecting,
  containerPort,
} = require('./objects');

// The NATS chart's pod labels for release "nats" (k8s/nats/values.yaml), which the
// NetworkPolicies select; the chart is not rendered here.
const NATS_POD = {
  'app.kubernetes.io/name': 'nats',
  'app.kubernetes.io/instance': 'nats',
  'app.kubernetes.io/component': 'nats',
};
const NATS_RELEASE = 'nats';

function checkNetworkPolicies(ov, g, err) {
  const pols = ov.objs.filter((o) => o.kind === 'NetworkPolicy');
  const ns = ov.objs.find((o) => o.metadata.namespace)?.metadata.namespace;
  const pods = workloads(ov.objs).map((w) => ({ name: w.name, ns, labels: w.labels, w }));
  const nats = { name: 'nats', ns, labels: NATS_POD };
  const all = [...pods, nats];
  if (
    !pols.some(
      (p) =>
        Object.keys(p.spec.podSelector).length === 0 &&
        !p.spec.ingress &&
        !p.spec.egress &&
        ['Ingress', 'Egress'].every((t) => (p.spec.policyTypes || []).includes(t)),
    )
  ) {
    err('no default-deny NetworkPolicy (podSelector {}, Ingress and Egress, no rules)');
  }
  for (const p of pols) {
    const sel = p.spec.podSelector;
    if (Object.keys(sel).length && !all.some((x) => F.selects(sel, x.labels))) {
      err(`NetworkPolicy ${p.metadata.name}: podSelector matches no pod`);
    }
    for (const rule of [...(p.spec.ingress || []), ...(p.spec.egress || [])]) {
      for (const peer of [...(rule.from || []), ...(rule.to || [])]) {
        if (
          peer.podSelector &&
          !peer.namespaceSelector &&
          !all.some((x) => F.selects(peer.podSelector, x.labels))
        ) {
          err(`NetworkPolicy ${p.metadata.name}: peer podSelector matches no pod`);
        }
      }
    }
  }
  const outside = {
    dns: { ns: 'kube-system', labels: { 'k8s-app': 'kube-dns' } },
    keda: { ns: 'keda', labels: { 'app.kubernetes.io/name': 'keda-operator' } },
    prometheus: { ns: 'monitoring', labels: { 'app.kubernetes.io/name': 'prometheus' } },
    other: { ns: 'elsewhere', labels: {} },
    client: { ip: '203.0.113.10' },
    publicHost: { ip: '162.159.140.245' },
    privateHost: { ip: '10.1.2.3' },
    metadata: { ip: '169.254.169.254' },
  };
  const want = (ok, src, dst, port, proto, what) => {
    if (F.flowAllowed(pols, ns, src, dst, port, proto) !== ok)
      err(`${what} on ${port}/${proto} must be ${ok ? 'allowed' : 'denied'}`);
  };
  const so = ov.objs.find((o) => o.kind === 'ScaledObject');
  const monitorPort = so
    ? Number(so.spec.triggers[0].metadata.natsServerMonitoringEndpoint.split(':').pop())
    : 8222;
  want(true, nats, nats, 6222, 'TCP', 'NATS -> NATS routes');
  want(true, outside.keda, nats, monitorPort, 'TCP', 'KEDA -> NATS monitoring');
  want(false, outside.client, nats, 4222, 'TCP', 'outside client -> NATS');
  want(false, outside.other, nats, 4222, 'TCP', 'another namespace -> NATS');
  for (const p of all) want(true, p, outside.dns, 53, 'UDP', `${p.name} -> DNS`);
  const upstreamOf = (p) => {
    const c = p.w.pod.containers[0];
    if (binaryOf(c) !== 'reqrun-executor') return {};
    const url = new URL(setting(g, envOf(ov.objs, c).env, 'REQRUN_UPSTREAM_URL'));
    return { url, svc: find(ov.objs, 'Service', url.hostname.split('.')[0]) };
  };
  const upstreamSvcs = pods.map((p) => upstreamOf(p).svc).filter(Boolean);
  for (const p of pods) {
    const c = p.w.pod.containers[0];
    const { env } = envOf(ov.objs, c);
    if (env.has('REQRUN_NATS_URL')) want(true, p, nats, 4222, 'TCP', `${p.name} -> NATS`);
    if (p.w.annotations['prometheus.io/scrape'] === 'true') {
      want(
        true,
        outside.prometheus,
        p,
        Number(p.w.annotations['prometheus.io/port']),
        'TCP',
        `Prometheus -> ${p.name}`,
      );
    }
    const { url: upstream, svc: upstreamSvc } = upstreamOf(p);
    for (const svc of servicesSelecting(ov.objs, p.w)) {
      if (upstreamSvcs.includes(svc)) continue; // reached by the executors, checked below
      for (const sp of svc.spec.ports) {
        const cp = containerPort(c, sp.targetPort === undefined ? sp.port : sp.targetPort);
        if (cp) want(true, outside.client, p, cp.containerPort, 'TCP', `clients -> ${p.name}`);
      }
    }
    if (upstreamSvc) {
      const target = pods.find((x) => servicesSelecting(ov.objs, x.w).includes(upstreamSvc));
      const sp =
        upstreamSvc.spec.ports.find((x) => x.port === Number(upstream.port)) || upstreamSvc.spec.ports[0];
      const cp = containerPort(
        target.w.pod.containers[0],
        sp.targetPort === undefined ? sp.port : sp.targetPort,
      );
      want(true, p, target, cp.containerPort, 'TCP', `${p.name} -> in-cluster upstream ${target.name}`);
    } else if (upstream) {
      const port = Number(upstream.port) || (upstream.protocol === 'https:' ? 443 : 80);
      want(true, p, outside.publicHost, port, 'TCP', `${p.name} -> upstream ${upstream.host}`);
    }
    if (binaryOf(c) === 'reqrun-executor') {
      want(true, p, outside.publicHost, 443, 'TCP', `${p.name} -> webhook receivers`);
      want(false, p, outside.privateHost, 443, 'TCP', `${p.name} -> private address`);
      want(false, p, outside.metadata, 443, 'TCP', `${p.name} -> cloud metadata`);
    } else {
      want(false, p, outside.publicHost, 443, 'TCP', `${p.name} -> internet`);
    }
  }
}

function checkKeda(ov, g, err) {
  for (const so of ov.objs.filter((o) => o.kind === 'ScaledObject')) {
    const name = `ScaledObject ${so.metadata.name}`;
    if (!(so.spec.minReplicaCount >= 1)) {
      err(
        `${name}: minReplicaCount must be >= 1 (executors also serve cancels and webhooks, which lag does not show)`,
      );
    }
    const t = so.spec.triggers.find((x) => x.type === 'nats-jetstream');
    if (!t) {
      err(`${name}: no nats-jetstream trigger`);
      continue;
    }
    const m = t.metadata;
    if (m.stream !== 'REQRUN_REQUESTS' || m.consumer !== 'executors')
      err(`${name}: must watch REQRUN_REQUESTS/executors`);
    if (!g.values.config.merge.accounts[m.account])
      err(`${name}: account ${m.account} is not in k8s/nats/values.yaml`);
    const [host, port] = m.natsServerMonitoringEndpoint.split(':');
    const wantHost = `${NATS_RELEASE}-headless.${so.metadata.namespace}.svc.cluster.local`;
    if (host !== wantHost)
      err(`${name}: endpoint host ${host}, want ${wantHost} (per-server DNS for leader lookup)`);
    if (Number(port) !== g.values.config.monitor.port)
      err(`${name}: endpoint port ${port} is not the NATS monitor port`);
    const target = find(ov.objs, 'Deployment', so.spec.scaleTargetRef.name);
    const c = target && target.spec.template.spec.containers[0];
    const concurrency = c && Number(setting(g, envOf(ov.objs, c).env, 'REQRUN_EXECUTOR_CONCURRENCY'));
    if (!(Number(m.lagThreshold) > 0 && Number(m.lagThreshold) <= concurrency)) {
      err(
        `${name}: lagThreshold ${m.lagThreshold} must be in 1..REQRUN_EXECUTOR_CONCURRENCY (${concurrency})`,
      );
    }
  }
  for (const h of ov.objs.filter((o) => o.kind === 'HorizontalPodAutoscaler')) {
    if (!(h.spec.metrics || []).some((m) => m.type === 'Resource' && m.resource.name === 'cpu')) {
      err(`HPA ${h.metadata.name}: no CPU metric`);
    }
    if (!(h.spec.minReplicas >= 1 && h.spec.maxReplicas >= h.spec.minReplicas))
      err(`HPA ${h.metadata.name}: bad bounds`);
  }
}

// Every ReqRun process logs in as a NATS user of values.yaml with the password the
// server reads from the same Secret key.
function checkNatsUsers(ov, g, err) {
  const accounts = g.values.config.merge.accounts;
  const users = new Map();
  for (const a of Object.values(accounts)) for (const u of a.users || []) users.set(u.user, u);
  const serverEnv = g.values.container.env || {};
  for (const w of workloads(ov.objs)) {
    for (const c of containersOf(w)) {
      const { env } = envOf(ov.objs, c);
      if (!env.has('REQRUN_NATS_URL')) continue;
      const where = `${w.name}/${c.name}`;
      const url = new URL(setting(g, env, 'REQRUN_NATS_URL').split(',')[0]);
      if (url.hostname.split('.')[0] !== NATS_RELEASE)
        err(`${where}: REQRUN_NATS_URL host is not the "${NATS_RELEASE}" release`);
      const user = users.get(setting(g, env, 'REQRUN_NATS_USER'));
      if (!user) {
        err(`${where}: NATS user ${setting(g, env, 'REQRUN_NATS_USER')} is not in k8s/nats/values.yaml`);
        continue;
      }
      // Replies come to "<REQRUN_NATS_INBOX_PREFIX>.>", which only this user may read.
      const prefix = env.has('REQRUN_NATS_INBOX_PREFIX') ? setting(g, env, 'REQRUN_NATS_INBOX_PREFIX') : '_INBOX';
      const subs = ((user.permissions || {}).subscribe || {}).allow || [];
      if (prefix === '_INBOX' || !subs.includes(`${prefix}.>`))
        err(`${where}: REQRUN_NATS_INBOX_PREFIX ${prefix} is not a subscribe permission of ${user.user} of its own`);
      for (const other of users.values()) {
        const theirs = ((other.permissions || {}).subscribe || {}).allow || [];
        if (other !== user && theirs.some((s) => s === '>' || s === '_INBOX.>' || s === `${prefix}.>`))
          err(`${where}: NATS user ${other.user} may read the replies of ${user.user}`);
      }
      const v = /^<<\s*\$(\w+)\s*>>$/.exec(user.password || '');
      const serverRef = v && serverEnv[v[1]]?.valueFrom?.secretKeyRef;
      const ours = (env.get('REQRUN_NATS_PASSWORD') || {}).secret;
      if (!serverRef || !ours || serverRef.name !== ours.name || serverRef.key !== ours.key) {
        err(`${where}: REQRUN_NATS_PASSWORD is not the Secret key the server uses for ${user.user}`);
      }
    }
    const replicas = Number(setting(g, envOf(ov.objs, w.pod.containers[0]).env, 'REQRUN_REPLICAS'));
    if (replicas > g.values.config.cluster.replicas)
      err(`${w.name}: REQRUN_REPLICAS ${replicas} > NATS servers`);
    if (
      ov.name === 'prod' &&
      envOf(ov.objs, w.pod.containers[0]).env.has('REQRUN_NATS_URL') &&
      replicas !== 3
    ) {
      err(`${w.name}: prod needs REQRUN_REPLICAS=3, has ${replicas}`);
    }
  }
}

function checkNatsValues(g, err) {
  const c = g.values.config;
  if (!(c.cluster.enabled && c.cluster.replicas >= 3)) err('NATS: needs a cluster of 3 servers');
  if (!(c.jetstream.enabled && c.jetstream.fileStore.enabled && c.jetstream.fileStore.pvc.enabled)) {
    err('NATS: JetStream must use file storage on PVCs');
  }
  if ((c.jetstream.merge || {}).sync_interval !== 'always')
    err('NATS: jetstream sync_interval must be always');
  if (!(c.monitor.enabled && c.monitor.port === 8222)) err('NATS: monitoring must be on 8222');
  const mp = /^<<\s*(\d+)\s*MB\s*>>$/i.exec(String(c.merge.max_payload));
  const body = Number(g.table.get('REQRUN_MAX_BODY_BYTES').def);
  if (!mp || Number(mp[1]) * 1024 * 1024 < body + 65536)
    err(`NATS: max_payload ${c.merge.max_payload} < body + 64 KiB`);
  const [maj, min] = String(g.values.container.image.tag).split(/[.-]/).map(Number);
  if (!(maj > 2 || (maj === 2 && min >= 10)))
    err(`NATS: server ${g.values.container.image.tag} < 2.10 (sync_interval)`);
  if (!/--version \d+\.\d+\.\d+/.test(g.natsReadme)) err('NATS: k8s/nats/README.md pins no chart version');
  for (const a of Object.values(c.merge.accounts)) {
    for (const u of a.users || []) {
      const ref = /^<<\s*\$(\w+)\s*>>$/.exec(u.password || '');
      if (!ref && !String(u.password).startsWith('$2a$')) err(`NATS: user ${u.user} has a literal password`);
      if (ref && !g.values.container.env?.[ref[1]]?.valueFrom?.secretKeyRef) {
        err(`NATS: ${ref[1]} (user ${u.user}) does not come from a Secret`);
      }
    }
  }
}

function checkDockerfile(g, err) {
  const d = g.docker;
  const [uid, gid] = (d.final.user || '').split(':');
  if (!/^[1-9]\d*$/.test(uid) || !/^[1-9]\d*$/.test(gid || ''))
    err(`Dockerfile: USER ${d.final.user} must be numeric uid:gid, not root`);
  for (const st of d.stages) {
    for (const cp of st.copies.filter((x) => !x.from)) {
      for (const s of cp.sources) {
        if (!fs.existsSync(path.join(g.root, s))) err(`Dockerfile: COPY ${s}: no such path`);
        if (!F.dockerignoreAllows(g.dockerignore, s))
          err(`Dockerfile: COPY ${s} is excluded by .dockerignore`);
      }
    }
  }
  // The image build sees only what the build stage copies: every directory CMake reads.
  // tests/ is the exception: the Dockerfile stubs its CMakeLists.txt.
  const copied = d.stages[0].copies.flatMap((c) => c.sources.map((x) => x.replace(/\/.*$/, '')));
  for (const dir of g.cmakeDirs) {
    if (dir !== 'tests' && !copied.includes(dir))
      err(`Dockerfile: the build reads ${dir}/ but does not COPY it`);
  }
  const pkgs = d.stages.flatMap((s) => s.packages);
  const missing = pkgs.filter((p) => !g.aptCandidates.has(p));
  if (g.aptCandidates.size && missing.length) err(`Dockerfile: no such Debian package: ${missing.join(' ')}`);
  for (const p of g.neededPackages) {
    if (!d.final.packages.includes(p))
      err(`Dockerfile: the runtime stage lacks ${p}, which the binaries link`);
  }
  for (const bin of ['reqrun-ingress', 'reqrun-executor', 'reqrun-mockllm']) {
    if (!d.files.has(`/usr/local/bin/${bin}`)) err(`Dockerfile: ${bin} is not copied to /usr/local/bin`);
  }
}

module.exports = {
  overlay: { netpol: checkNetworkPolicies, scaling: checkKeda, natsUsers: checkNatsUsers },
  global: { natsValues: checkNatsValues, dockerfile: checkDockerfile },
};
