// Checks of the workloads in one rendered overlay: schemas, containers, selectors, env
// table, ports, shutdown, secrets and the image. Each is fn(overlay, facts, err).
'use strict';
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

// Each Secret file may be mounted only into these pods (app.kubernetes.io/name).
const SECRET_SCOPE = {
  'reqrun-upstream': ['reqrun-executor', 'reqrun-mockllm'], // the mock plays the provider
  'reqrun-api-keys': ['reqrun-ingress'],
  'reqrun-webhook-secrets': ['reqrun-ingress', 'reqrun-executor'],
};
// The address each binary listens on, by env var; probes and Services reach it there.
const LISTEN_VAR = {
  'reqrun-ingress': 'REQRUN_LISTEN',
  'reqrun-executor': 'REQRUN_EXECUTOR_LISTEN',
  'reqrun-mockllm': 'REQRUN_MOCK_LISTEN',
};
// Settings every process must agree on, or verification (REQRUN_PROVISION=0) refuses.
const SHARED_SETTINGS = [
  'REQRUN_NATS_URL',
  'REQRUN_REPLICAS',
  'REQRUN_DEDUP_WINDOW_S',
  'REQRUN_DEADLINE_S',
  'REQRUN_ACK_WAIT_S',
  'REQRUN_MAX_ATTEMPTS',
  'REQRUN_MAX_ACK_PENDING',
  'REQRUN_RECORD_TTL_S',
  'REQRUN_TENANT_MAX_PENDING',
  'REQRUN_STREAM_MAX_BYTES',
  'REQRUN_MAX_BODY_BYTES',
];
// The executor's hand-back (NAK) and NATS drain after REQRUN_DRAIN_TIMEOUT_S, and the
// ingress's drain after its preStop sleep.
const SHUTDOWN_MARGIN_S = 15;

function checkSchema(ov, g, err) {
  for (const o of ov.objs) {
    const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
    const mod =
      group === ''
        ? `kubernetes-models/${version}`
        : group === 'keda.sh'
          ? `@kubernetes-models/keda/keda.sh/${version}`
          : `kubernetes-models/${group}/${version}`;
    let Model;
    try {
      Model = require(mod)[o.kind];
    } catch (e) {
      Model = undefined;
    }
    if (!Model) {
      err(`${o.kind} ${o.metadata.name}: no schema for ${o.apiVersion} ${o.kind}`);
      continue;
    }
    try {
      new Model(o).validate();
    } catch (e) {
      err(`${o.kind} ${o.metadata.name}: ${e.message}`);
    }
  }
}

function checkContainers(ov, g, err) {
  for (const w of workloads(ov.objs)) {
    const psc = w.pod.securityContext || {};
    const sa = find(ov.objs, 'ServiceAccount', w.pod.serviceAccountName || 'default');
    if (w.pod.automountServiceAccountToken !== false && !(sa && sa.automountServiceAccountToken === false)) {
      err(`${w.name}: mounts a ServiceAccount token it does not need`);
    }
    for (const c of containersOf(w)) {
      const where = `${w.name}/${c.name}`;
      if (w.obj.kind !== 'Job') {
        for (const p of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
          if (!c[p]) err(`${where}: no ${p}`);
          else if (c[p].httpGet && !containerPort(c, c[p].httpGet.port)) {
            err(`${where}: ${p} port ${c[p].httpGet.port} is not a containerPort`);
          }
        }
        if (['reqrun-ingress', 'reqrun-executor'].includes(binaryOf(c))) {
          if (c.readinessProbe?.httpGet?.path !== '/readyz') err(`${where}: readiness must use /readyz`);
          if (c.livenessProbe?.httpGet?.path !== '/healthz') err(`${where}: liveness must use /healthz`);
        }
      }
      const r = c.resources || {};
      for (const [kind, res] of [
        ['requests', 'cpu'],
        ['requests', 'memory'],
        ['limits', 'memory'],
      ]) {
        if (!(r[kind] && r[kind][res])) err(`${where}: no resources.${kind}.${res}`);
      }
      const sc = c.securityContext;
      if (!sc) {
        err(`${where}: no securityContext`);
        continue;
      }
      const eff = (k) => (sc[k] !== undefined ? sc[k] : psc[k]);
      if (eff('runAsNonRoot') !== true) err(`${where}: runAsNonRoot is not true`);
      if (!eff('runAsUser')) err(`${where}: no non-zero runAsUser`);
      if (sc.readOnlyRootFilesystem !== true) err(`${where}: root filesystem is writable`);
      if (sc.allowPrivilegeEscalation !== false) err(`${where}: allowPrivilegeEscalation is not false`);
      if (sc.privileged) err(`${where}: privileged`);
      if (!((sc.capabilities || {}).drop || []).includes('ALL'))
        err(`${where}: capabilities not dropped (ALL)`);
      if (((sc.capabilities || {}).add || []).length) err(`${where}: adds capabilities`);
      if ((eff('seccompProfile') || {}).type !== 'RuntimeDefault')
        err(`${where}: seccomp is not RuntimeDefault`);
    }
  }
}

function checkSelectors(ov, g, err) {
  const ws = workloads(ov.objs);
  const matching = (sel) => ws.filter((w) => F.selects(sel, w.labels));
  for (const w of ws) {
    if (w.obj.kind !== 'Job' && !F.selects(w.obj.spec.selector, w.labels)) {
      err(`${w.obj.kind} ${w.name}: selector does not match its pod template labels`);
    }
    for (const t of w.pod.topologySpreadConstraints || []) {
      if (!F.selects(t.labelSelector, w.labels))
        err(`${w.name}: topology spread selector misses its own pods`);
    }
  }
  for (const o of ov.objs) {
    const name = `${o.kind} ${o.metadata.name}`;
    if (o.kind === 'Service') {
      const n = o.spec.selector ? matching({ matchLabels: o.spec.selector }).length : 0;
      if (n !== 1) err(`${name}: selects ${n} workloads (want exactly 1)`);
    }
    if (o.kind === 'PodDisruptionBudget') {
      const n = matching(o.spec.selector).length;
      if (n !== 1) err(`${name}: selects ${n} workloads (want exactly 1)`);
    }
  }
  const targets = new Map();
  for (const o of ov.objs) {
    let ref;
    if (o.kind === 'HorizontalPodAutoscaler') ref = o.spec.scaleTargetRef;
    else if (o.kind === 'ScaledObject') ref = { kind: 'Deployment', ...o.spec.scaleTargetRef };
    else continue;
    const target = find(ov.objs, ref.kind, ref.name);
    if (!target) {
      err(`${o.kind} ${o.metadata.name}: target ${ref.kind} ${ref.name} does not exist`);
      continue;
    }
    if (targets.has(ref.name)) err(`${ref.kind} ${ref.name}: scaled by two autoscalers`);
    targets.set(ref.name, o);
    // Applying a replica count would reset the autoscaler's choice on every apply.
    if (target.spec.replicas !== undefined) err(`${ref.kind} ${ref.name}: sets replicas but is autoscaled`);
  }
}

function checkEnv(ov, g, err) {
  for (const o of ov.objs.filter((x) => x.kind === 'ConfigMap')) {
    for (const [k, v] of Object.entries(o.data || {}))
      checkVar(g, `ConfigMap ${o.metadata.name}`, k, { value: v }, err);
  }
  const shared = new Map();
  for (const w of workloads(ov.objs)) {
    for (const c of containersOf(w)) {
      const where = `${w.name}/${c.name}`;
      const { env, missing } = envOf(ov.objs, c);
      for (const m of missing) err(`${where}: envFrom ${m} does not exist`);
      for (const [k, e] of env) if (!e.configMap) checkVar(g, where, k, e, err);
      if (!env.has('REQRUN_NATS_URL')) continue;
      const provision =
        F.parseBool(setting(g, env, 'REQRUN_PROVISION')) || (c.command || []).includes('--provision');
      if (provision !== (w.obj.kind === 'Job')) {
        err(`${where}: REQRUN_PROVISION must be on in the provisioning Job only`);
      }
      for (const k of SHARED_SETTINGS) {
        const v = setting(g, env, k);
        if (shared.has(k) && shared.get(k).v !== v) {
          err(`${k}: ${where} has ${v}, ${shared.get(k).where} has ${shared.get(k).v}`);
        }
        shared.set(k, { v, where });
      }
    }
  }
}

function checkVar(g, where, name, e, err) {
  const t = g.table.get(name);
  if (!t) return err(`${where}: ${name} is not in the binaries' config table`);
  if (t.secret && e.value !== undefined) err(`${where}: secret ${name} has a literal value`);
  if (e.value === undefined) return;
  if (t.type === 'int') {
    const n = Number(e.value);
    if (!/^-?\d+$/.test(e.value) || n < t.min || (t.max !== undefined && n > t.max)) {
      err(`${where}: ${name}=${e.value} is outside [${t.min}..${t.max === undefined ? '' : t.max}]`);
    }
  } else if (t.type === 'bool' && F.parseBool(e.value) === undefined) {
    err(`${where}: ${name}=${e.value} is not a boolean`);
  }
}

function checkPorts(ov, g, err) {
  for (const w of workloads(ov.objs)) {
    for (const c of w.pod.containers) {
      const listenVar = LISTEN_VAR[binaryOf(c)];
      if (listenVar && !(c.command || []).includes('--provision')) {
        const listen = setting(g, envOf(ov.objs, c).env, listenVar);
        const [host, port] = [listen.slice(0, listen.lastIndexOf(':')), Number(listen.split(':').pop())];
        if (/^(127\.|localhost$|\[::1\])/.test(host))
          err(`${w.name}/${c.name}: ${listenVar}=${listen} is loopback`);
        if (!(c.ports || []).some((p) => p.containerPort === port)) {
          err(`${w.name}/${c.name}: ${listenVar} port ${port} is not a containerPort`);
        }
      }
    }
    for (const svc of servicesSelecting(ov.objs, w)) {
      for (const p of svc.spec.ports) {
        const target = p.targetPort === undefined ? p.port : p.targetPort;
        if (!w.pod.containers.some((c) => containerPort(c, target))) {
          err(`Service ${svc.metadata.name}: targetPort ${target} is no containerPort of ${w.name}`);
        }
      }
    }
  }
}

function checkShutdown(ov, g, err) {
  for (const w of workloads(ov.objs)) {
    const grace =
      w.pod.terminationGracePeriodSeconds === undefined ? 30 : w.pod.terminationGracePeriodSeconds;
    for (const c of w.pod.containers) {
      const { env } = envOf(ov.objs, c);
      if (binaryOf(c) === 'reqrun-executor') {
        const upstream = Number(setting(g, env, 'REQRUN_UPSTREAM_TIMEOUT_S'));
        const drain = Number(setting(g, env, 'REQRUN_DRAIN_TIMEOUT_S'));
        if (drain < upstream)
          err(`${w.name}: REQRUN_DRAIN_TIMEOUT_S ${drain} < REQRUN_UPSTREAM_TIMEOUT_S ${upstream}`);
        if (grace < Math.max(upstream, drain) + SHUTDOWN_MARGIN_S) {
          err(
            `${w.name}: terminationGracePeriodSeconds ${grace} < max(upstream timeout ${upstream}, drain ${drain}) + ${SHUTDOWN_MARGIN_S}`,
          );
        }
      }
      if (servicesSelecting(ov.objs, w).length) {
        const cmd = c.lifecycle?.preStop?.exec?.command || [];
        const sleep =
          c.lifecycle?.preStop?.sleep?.seconds ??
          (path.basename(cmd[0] || '') === 'sleep' ? Number(cmd[1]) : NaN);
        // The ingress keeps serving REQRUN_SHUTDOWN_DELAY_S after SIGTERM.
        const delay =
          binaryOf(c) === 'reqrun-ingress' ? Number(setting(g, env, 'REQRUN_SHUTDOWN_DELAY_S') || 0) : 0;
        if (!(sleep > 0)) err(`${w.name}/${c.name}: behind a Service but no preStop sleep`);
        else if (grace < sleep + delay + SHUTDOWN_MARGIN_S) {
          err(
            `${w.name}: terminationGracePeriodSeconds ${grace} < preStop ${sleep} + shutdown delay ${delay} + ${SHUTDOWN_MARGIN_S}`,
          );
        }
      }
    }
  }
}

function checkSecrets(ov, g, err) {
  for (const o of ov.objs.filter((x) => x.kind === 'Secret')) {
    err(`Secret ${o.metadata.name}: secrets are created outside git (k8s/create-secrets.sh), not rendered`);
  }
  for (const w of workloads(ov.objs)) {
    const app = w.labels['app.kubernetes.io/name'];
    const secretVolumes = new Map(
      (w.pod.volumes || []).filter((v) => v.secret).map((v) => [v.name, v.secret.secretName]),
    );
    const used = [...secretVolumes.values()];
    for (const c of containersOf(w)) {
      const { env } = envOf(ov.objs, c);
      for (const [k, e] of env) {
        if (e.secret) used.push(e.secret.name);
        if (!k.endsWith('_FILE') || e.value === undefined) continue;
        const mount = (c.volumeMounts || []).find((m) =>
          e.value.startsWith(m.mountPath.replace(/\/$/, '') + '/'),
        );
        if (!mount || !secretVolumes.has(mount.name)) {
          err(`${w.name}/${c.name}: ${k}=${e.value} is not inside a Secret volume mount`);
        } else if (!g.secretKeys.includes(path.basename(e.value))) {
          err(`${w.name}/${c.name}: ${k}: k8s/create-secrets.sh creates no key ${path.basename(e.value)}`);
        }
      }
    }
    for (const s of used) {
      if (!g.readme.includes(s)) err(`${w.name}: Secret ${s} is not documented in k8s/README.md`);
      if (SECRET_SCOPE[s] && !SECRET_SCOPE[s].includes(app)) err(`${w.name}: must not see Secret ${s}`);
    }
  }
}

function checkImage(ov, g, err) {
  const d = g.docker;
  const title = d.final.labels['org.opencontainers.image.title'];
  const [uid, gid] = (d.final.user || '').split(':').map(Number);
  const baseFiles = /^debian:(12|bookworm)-slim(@|$)/.test(d.final.image)
    ? ['/bin/sleep', '/usr/bin/sleep']
    : [];
  for (const w of workloads(ov.objs)) {
    const psc = w.pod.securityContext || {};
    for (const c of containersOf(w)) {
      const where = `${w.name}/${c.name}`;
      const repo = c.image.replace(/[@:][^/]*$/, '');
      if (repo.split('/').pop() !== title)
        err(`${where}: image ${c.image} is not the Dockerfile's "${title}"`);
      if (!c.command || !d.files.has(c.command[0]))
        err(`${where}: command ${c.command} is not a file the Dockerfile copies`);
      const pre = c.lifecycle?.preStop?.exec?.command;
      if (pre && !d.files.has(pre[0]) && !baseFiles.includes(pre[0]))
        err(`${where}: preStop runs ${pre[0]}, absent from the image`);
      const sc = c.securityContext || {};
      if ((sc.runAsUser ?? psc.runAsUser) !== uid)
        err(`${where}: runAsUser is not the Dockerfile's USER ${uid}`);
      if ((sc.runAsGroup ?? psc.runAsGroup) !== gid)
        err(`${where}: runAsGroup is not the Dockerfile's group ${gid}`);
      for (const p of c.ports || []) {
        if (!d.final.expose.includes(p.containerPort))
          err(`${where}: port ${p.containerPort} is not EXPOSEd`);
      }
    }
  }
}

module.exports = {
  schema: checkSchema,
  containers: checkContainers,
  selectors: checkSelectors,
  env: checkEnv,
  ports: checkPorts,
  shutdown: checkShutdown,
  secrets: checkSecrets,
  image: checkImage,
};
