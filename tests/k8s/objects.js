// Accessors for rendered Kubernetes objects, shared by the checks.
'use strict';
const path = require('path');
const F = require('./facts');

function find(objs, kind, name) {
  return objs.find((o) => o.kind === kind && o.metadata.name === name);
}

function workloads(objs) {
  return objs
    .filter((o) => ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'].includes(o.kind))
    .map((o) => ({
      obj: o,
      name: o.metadata.name,
      ns: o.metadata.namespace,
      pod: o.spec.template.spec,
      labels: o.spec.template.metadata.labels || {},
      annotations: o.spec.template.metadata.annotations || {},
    }));
}

function containersOf(w) {
  return [...(w.pod.initContainers || []), ...w.pod.containers];
}

function binaryOf(c) {
  return path.basename((c.command || [])[0] || '');
}

// The container's environment: name -> {value} | {secret: {name, key}} | {ref}.
function envOf(objs, c) {
  const env = new Map();
  const missing = [];
  for (const src of c.envFrom || []) {
    const ref = src.configMapRef || src.secretRef;
    const cm = src.configMapRef && find(objs, 'ConfigMap', ref.name);
    if (!cm) {
      missing.push(ref.name);
      continue;
    }
    for (const [k, v] of Object.entries(cm.data || {})) env.set(k, { value: v, configMap: ref.name });
  }
  for (const e of c.env || []) {
    if (e.value !== undefined) env.set(e.name, { value: e.value });
    else if (e.valueFrom && e.valueFrom.secretKeyRef) env.set(e.name, { secret: e.valueFrom.secretKeyRef });
    else env.set(e.name, { ref: e.valueFrom });
  }
  return { env, missing };
}

// The value a binary runs with: the manifest's, else the table's default.
function setting(g, env, name) {
  const e = env.get(name);
  if (e && e.value !== undefined) return e.value;
  return (g.table.get(name) || {}).def;
}

function servicesSelecting(objs, w) {
  return objs.filter(
    (o) => o.kind === 'Service' && o.spec.selector && F.selects({ matchLabels: o.spec.selector }, w.labels),
  );
}

function containerPort(c, ref) {
  return (c.ports || []).find((p) => p.containerPort === ref || p.name === ref);
}

module.exports = {
  find,
  workloads,
  containersOf,
  binaryOf,
  envOf,
  setting,
  servicesSelecting,
  containerPort,
};
