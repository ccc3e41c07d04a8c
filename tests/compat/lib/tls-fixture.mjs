// TLS material for the compat suite: a private CA and a leaf certificate for 127.0.0.1 and
// localhost, made with the openssl command line in a temp dir (the commands of
// docs/OPERATIONS.md, "TLS"), and the leaf's SPKI hash for Chromium's
// --ignore-certificate-errors-spki-list.
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

function openssl(args, cwd) {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr?.toString() ?? e.message}`);
  }
}

/**
 * Makes a CA and a leaf signed by it. Returns { dir, caFile, certFile, keyFile, caPem,
 * spkiSha256 (base64 of the leaf's SubjectPublicKeyInfo SHA-256), remove() }.
 */
export function makeCertificates() {
  const dir = mkdtempSync(path.join(tmpdir(), 'herald-compat-tls-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-days', '30', '-subj', '/CN=herald compat CA', '-keyout', 'ca.key', '-out', 'ca.pem'], dir);
  openssl(['req', ...ec, '-subj', '/CN=localhost', '-keyout', 'key.pem', '-out', 'leaf.csr'], dir);
  writeFileSync(path.join(dir, 'leaf.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  openssl(['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '30',
    '-extfile', 'leaf.ext', '-out', 'cert.pem'], dir);
  const certFile = path.join(dir, 'cert.pem');
  const spki = new X509Certificate(readFileSync(certFile)).publicKey.export({ type: 'spki', format: 'der' });
  return {
    dir,
    caFile: path.join(dir, 'ca.pem'),
    certFile,
    keyFile: path.join(dir, 'key.pem'),
    caPem: readFileSync(path.join(dir, 'ca.pem'), 'utf8'),
    spkiSha256: createHash('sha256').update(spki).digest('base64'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
