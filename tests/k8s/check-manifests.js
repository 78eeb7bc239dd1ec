// ReqRun's checks of the rendered overlays, k8s/nats/values.yaml and the Dockerfile, on
// top of the kubernetes-models schemas (checks-workloads.js, checks-platform.js); the
// facts they compare against come from the repository and this machine (loadFacts).
// tests/k8s/validate.sh runs it.
// Usage: node check-manifests.js --root DIR --help-file FILE --bin-dir DIR [--self-test]
//        NAME=RENDERED.yaml...
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const YAML = require('yaml');
const F = require('./facts');
const platform = require('./checks-platform');

const OVERLAY_CHECKS = { ...require('./checks-workloads'), ...platform.overlay };
const GLOBAL_CHECKS = platform.global;

function runChecks(overlays, g, only) {
  const errors = [];
  for (const [name, fn] of Object.entries(GLOBAL_CHECKS)) {
    if (!only || only === name) fn(g, (m) => errors.push(`[${name}] ${m}`));
  }
  for (const ov of overlays) {
    for (const [name, fn] of Object.entries(OVERLAY_CHECKS)) {
      if (!only || only === name) fn(ov, g, (m) => errors.push(`[${name}] ${ov.name}: ${m}`));
    }
  }
  return errors;
}

// ---- facts from the machine ----

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.error ? null : r.stdout;
}

// Debian packages of the shared libraries the freshly built binaries link directly.
function neededPackages(binDir) {
  const pkgs = new Set();
  for (const bin of ['reqrun-ingress', 'reqrun-executor', 'reqrun-mockllm']) {
    const file = path.join(binDir, bin);
    const needed = [...(run('readelf', ['-d', file]) || '').matchAll(/\(NEEDED\).*\[(.+)\]/g)].map(
      (m) => m[1],
    );
    const paths = new Map(
      [...(run('ldd', [file]) || '').matchAll(/^\s*(\S+) => (\S+)/gm)].map((m) => [m[1], m[2]]),
    );
    for (const so of needed) {
      if (!paths.has(so)) throw new Error(`${bin}: cannot resolve ${so}`);
      // dpkg records a file under the path its package ships (/lib or /usr/lib: usrmerge).
      const real = fs.realpathSync(paths.get(so));
      const candidates = [paths.get(so), real, real.replace(/^\/usr\/lib\//, '/lib/')];
      const owner = candidates.map((f) => run('dpkg', ['-S', f])).find(Boolean);
      if (!owner) throw new Error(`${bin}: no Debian package owns ${so}`);
      const pkg = owner.split(':')[0];
      if (pkg !== 'libc6') pkgs.add(pkg); // part of every Debian base image
    }
  }
  return [...pkgs];
}

// Packages apt knows (a candidate version), for the Dockerfile's install lines.
function aptCandidates(pkgs) {
  const out = run('apt-cache', ['policy', ...pkgs]) || '';
  const known = new Set();
  for (const block of out.split(/\n(?=\S)/)) {
    const m = /^(\S+):\n[\s\S]*Candidate: (\S+)/.exec(block);
    if (m && m[2] !== '(none)') known.add(m[1]);
  }
  return known;
}

// Top-level directories the CMake build reads: add_subdirectory() of the root
// CMakeLists.txt and ${CMAKE_SOURCE_DIR}/<dir> in the CMakeLists.txt below those.
function cmakeDirs(root) {
  const dirs = new Set();
  const rootText = fs.readFileSync(path.join(root, 'CMakeLists.txt'), 'utf8');
  for (const m of rootText.matchAll(/add_subdirectory\(\s*([\w./-]+)/g)) dirs.add(m[1].split('/')[0]);
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name === 'CMakeLists.txt') {
        const text = fs.readFileSync(p, 'utf8');
        for (const m of text.matchAll(/\$\{CMAKE_SOURCE_DIR\}\/([\w.-]+)/g)) dirs.add(m[1]);
      }
    }
  };
  for (const d of [...dirs].filter((x) => x !== 'tests')) walk(path.join(root, d));
  return [...dirs];
}

function loadFacts(root, helpFile, binDir) {
  const docker = F.parseDockerfile(fs.readFileSync(path.join(root, 'Dockerfile'), 'utf8'));
  return {
    root,
    table: F.parseEnvTable(fs.readFileSync(helpFile, 'utf8')),
    docker,
    dockerignore: fs.readFileSync(path.join(root, '.dockerignore'), 'utf8').split('\n'),
    values: YAML.parse(fs.readFileSync(path.join(root, 'k8s/nats/values.yaml'), 'utf8')),
    readme: fs.readFileSync(path.join(root, 'k8s/README.md'), 'utf8'),
    natsReadme: fs.readFileSync(path.join(root, 'k8s/nats/README.md'), 'utf8'),
    secretKeys: [
      ...fs
        .readFileSync(path.join(root, 'k8s/create-secrets.sh'), 'utf8')
        .matchAll(/--from-(?:file|literal)=([\w.-]+)=/g),
    ].map((m) => m[1]),
    cmakeDirs: cmakeDirs(root),
    neededPackages: neededPackages(binDir),
    aptCandidates: aptCandidates(docker.stages.flatMap((s) => s.packages)),
  };
}

module.exports = { runChecks, loadFacts };

if (require.main === module) {
  const argv = process.argv.slice(2);
  const opt = (k) => argv[argv.indexOf(k) + 1];
  const files = argv.filter((a) => /^\w+=/.test(a));
  const overlays = files.map((a) => {
    const [name, file] = a.split('=');
    const objs = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'))
      .map((d) => d.toJSON())
      .filter(Boolean);
    return { name, objs };
  });
  const g = loadFacts(path.resolve(opt('--root')), opt('--help-file'), opt('--bin-dir'));
  if (g.table.size < 20) throw new Error(`only ${g.table.size} variables parsed from --help`);
  if (!g.aptCandidates.size) console.log('note: apt-cache knows no packages here; package names not checked');
  const errors = runChecks(overlays, g);
  for (const e of errors) console.log(`FAIL ${e}`);
  const counts = overlays.map((o) => `${o.name}: ${o.objs.length} objects`).join(', ');
  console.log(
    `${errors.length ? 'FAILED' : 'ok'}: ${Object.keys(OVERLAY_CHECKS).length + Object.keys(GLOBAL_CHECKS).length} checks, ${counts}`,
  );
  if (argv.includes('--self-test')) {
    const failed = require('./self-test').run(overlays, g);
    process.exitCode = errors.length || failed ? 1 : 0;
  } else {
    process.exitCode = errors.length ? 1 : 0;
  }
}
