// Parsers and helpers for check-manifests.js: the binaries' env table, the Dockerfile,
// label selectors and a small NetworkPolicy evaluator.
'use strict';

// `reqrun-ingress --help`: "  REQRUN_X   default D [min..max]" then an indented help line
// ending in "(secret: never logged)" for secrets.
function parseEnvTable(helpText) {
  const table = new Map();
  const lines = helpText.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^ {2}(REQRUN_[A-Z0-9_]+)\s+default (\S+)(?: \[(-?\d+)\.\.(-?\d+)?\])?/.exec(lines[i]);
    if (!m) continue;
    const [, name, def, min, max] = m;
    let type = 'string';
    if (min !== undefined) type = 'int';
    else if (def === 'true' || def === 'false') type = 'bool';
    table.set(name, {
      type,
      def: def === '(unset)' ? undefined : def,
      min: min === undefined ? undefined : Number(min),
      max: max === undefined ? undefined : Number(max),
      secret: /\(secret: never logged\)/.test(lines[i + 1] || ''),
    });
  }
  return table;
}

const BOOLS = { 1: true, true: true, yes: true, on: true, 0: false, false: false, no: false, off: false };
function parseBool(v) {
  return BOOLS[String(v).toLowerCase()];
}

// Dockerfile: stages with FROM, COPY, USER, EXPOSE, LABEL and apt-get install packages.
function parseDockerfile(text) {
  const joined = text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ');
  const stages = [];
  for (const line of joined.split('\n')) {
    const m = /^\s*([A-Z]+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const [, op, rest] = m;
    if (op === 'FROM') {
      const [image, , alias] = rest.trim().split(/\s+/);
      stages.push({ image, alias, copies: [], packages: [], expose: [], labels: {}, user: undefined });
      continue;
    }
    const st = stages[stages.length - 1];
    if (!st) continue;
    if (op === 'COPY') {
      const words = rest.trim().split(/\s+/);
      const from = (words.find((w) => w.startsWith('--from=')) || '').slice('--from='.length);
      const args = words.filter((w) => !w.startsWith('--'));
      st.copies.push({ from: from || undefined, sources: args.slice(0, -1), dest: args[args.length - 1] });
    } else if (op === 'USER') {
      st.user = rest.trim();
    } else if (op === 'EXPOSE') {
      st.expose.push(
        ...rest
          .trim()
          .split(/\s+/)
          .map((p) => Number(p.split('/')[0])),
      );
    } else if (op === 'LABEL') {
      for (const l of rest.matchAll(/([\w.-]+)="([^"]*)"/g)) st.labels[l[1]] = l[2];
    } else if (op === 'RUN') {
      for (const cmd of rest.split(/&&|;/)) {
        const w = cmd.trim().split(/\s+/);
        const at = w.indexOf('install');
        if (w.includes('apt-get') && at >= 0) {
          st.packages.push(...w.slice(at + 1).filter((x) => x && !x.startsWith('-')));
        }
      }
    }
  }
  const final = stages[stages.length - 1];
  // Files the final image holds, from COPY: "<dest>/<basename of source>" or "<dest>".
  const files = new Set();
  for (const c of final.copies) {
    for (const s of c.sources) files.add(c.dest.endsWith('/') ? c.dest + s.split('/').pop() : c.dest);
  }
  return { stages, final, files };
}

// .dockerignore with Docker's rule that a pattern also matches everything below it and
// the last matching pattern wins. Enough for plain names and '*'.
function dockerignoreAllows(lines, file) {
  let allowed = true;
  for (let raw of lines) {
    raw = raw.trim();
    if (!raw || raw.startsWith('#')) continue;
    const negate = raw.startsWith('!');
    const pat = (negate ? raw.slice(1) : raw).replace(/\/+$/, '').replace(/^\.\//, '');
    const clean = file.replace(/\/+$/, '').replace(/^\.\//, '');
    if (pat === '*' || clean === pat || clean.startsWith(pat + '/')) allowed = negate;
  }
  return allowed;
}

// Kubernetes label selector semantics; an empty selector selects everything.
function selects(sel, labels = {}) {
  if (!sel) return false;
  for (const [k, v] of Object.entries(sel.matchLabels || {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions || []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    const ok = {
      In: has && e.values.includes(labels[e.key]),
      NotIn: !has || !e.values.includes(labels[e.key]),
      Exists: has,
      DoesNotExist: !has,
    }[e.operator];
    if (!ok) return false;
  }
  return true;
}

function ipToInt(ip) {
  return ip.split('.').reduce((a, b) => a * 256 + Number(b), 0);
}
function cidrContains(cidr, ip) {
  if (!ip || cidr.includes(':') || ip.includes(':')) return false;
  const [base, bits] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ipToInt(ip) / size) === Math.floor(ipToInt(base) / size);
}

// An endpoint of a flow: a pod in some namespace ({ns, labels}) or an address ({ip}).
function peerMatches(peer, policyNs, who) {
  if (peer.ipBlock) {
    return (
      cidrContains(peer.ipBlock.cidr, who.ip) &&
      !(peer.ipBlock.except || []).some((c) => cidrContains(c, who.ip))
    );
  }
  if (who.ns === undefined) return false;
  const nsOk = peer.namespaceSelector
    ? selects(peer.namespaceSelector, { 'kubernetes.io/metadata.name': who.ns })
    : who.ns === policyNs;
  return nsOk && (!peer.podSelector || selects(peer.podSelector, who.labels));
}

function portMatches(ports, port, protocol) {
  if (!ports || ports.length === 0) return true;
  return ports.some(
    (p) =>
      (p.protocol || 'TCP') === protocol &&
      (p.port === undefined || p.port === port || (p.endPort && port >= p.port && port <= p.endPort)),
  );
}

// Whether `policies` (all in namespace ns) let `pod` send (egress) to or receive
// (ingress) from `other` on port/protocol. A pod no policy selects is not isolated.
function policyAllows(policies, ns, direction, pod, other, port, protocol = 'TCP') {
  const type = direction === 'egress' ? 'Egress' : 'Ingress';
  const peersKey = direction === 'egress' ? 'to' : 'from';
  const applicable = policies.filter(
    (p) => (p.spec.policyTypes || ['Ingress']).includes(type) && selects(p.spec.podSelector, pod.labels),
  );
  if (applicable.length === 0) return true;
  return applicable.some((p) =>
    (p.spec[direction] || []).some(
      (rule) =>
        portMatches(rule.ports, port, protocol) &&
        (!rule[peersKey] ||
          rule[peersKey].length === 0 ||
          rule[peersKey].some((peer) => peerMatches(peer, ns, other))),
    ),
  );
}

// A flow from src to dst: egress checked when src lives in ns, ingress when dst does.
function flowAllowed(policies, ns, src, dst, port, protocol = 'TCP') {
  const out = src.ns !== ns || policyAllows(policies, ns, 'egress', src, dst, port, protocol);
  const inn = dst.ns !== ns || policyAllows(policies, ns, 'ingress', dst, src, port, protocol);
  return out && inn;
}

module.exports = {
  parseEnvTable,
  parseBool,
  parseDockerfile,
  dockerignoreAllows,
  selects,
  flowAllowed,
};
