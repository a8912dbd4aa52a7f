// Mints the JWT test matrix with an implementation independent of the server's: the `jose`
// package (and, for tokens jose refuses to produce, Node's own crypto module).
//
//   node mint.mjs <output-dir>
//
// Writes into <output-dir>:
//   jwks.json          the public verification keys, each with kid and alg (RFC 7517)
//   rs-main.pem, es-main.pem   the same RS256 and ES256 public keys as PEM (kid = file stem)
//   weak.jwks.json     a JWKS whose only key is a 1024-bit RSA key (the server must refuse it)
//   weak.pem           the same key as PEM
//   matrix.json        {leeway_seconds, issuer, audience, cases: [{name, token, expect, why, jwks_only}]}
//                      (`why`: the server's problem detail for a refusal, so that a token refused
//                      for another reason than the one it was made to test fails the test)
//
// Times are relative to the moment of minting; the test gives the server the leeway written in
// matrix.json, which is wide enough for the server to start before "within leeway" lapses.

import { Buffer } from 'node:buffer';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  CompactSign,
  SignJWT,
  UnsecuredJWT,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  jwtVerify,
  createLocalJWKSet,
} from 'jose';

const out = process.argv[2];
if (!out) {
  console.error('usage: node mint.mjs <output-dir>');
  process.exit(2);
}
fs.mkdirSync(out, { recursive: true });

const ISSUER = 'boxoffice';
const AUDIENCE = 'boxoffice';
const LEEWAY_SECONDS = 120;
const now = Math.floor(Date.now() / 1000);

const b64u = (bytes) => Buffer.from(bytes).toString('base64url');
const json64 = (obj) => b64u(JSON.stringify(obj));

// --- keys -----------------------------------------------------------------------------------------

const rsMain = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
const esMain = await generateKeyPair('ES256', { extractable: true });
// Unrelated pairs: they sign tokens that claim the main keys' kids, or kids nobody knows.
const rsOther = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
const esOther = await generateKeyPair('ES256', { extractable: true });
const hsSecret = crypto.randomBytes(32);
// jose refuses RSA keys under 2048 bits, so Node's crypto makes this one.
const weak = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 });

const publicJwk = async (key, kid, alg) => ({ ...(await exportJWK(key)), kid, alg, use: 'sig' });
const jwks = {
  keys: [
    await publicJwk(rsMain.publicKey, 'rs-main', 'RS256'),
    await publicJwk(esMain.publicKey, 'es-main', 'ES256'),
    { kty: 'oct', kid: 'hs-main', alg: 'HS256', use: 'sig', k: b64u(hsSecret) },
  ],
};
fs.writeFileSync(path.join(out, 'jwks.json'), JSON.stringify(jwks, null, 2));
const rsPem = await exportSPKI(rsMain.publicKey);
fs.writeFileSync(path.join(out, 'rs-main.pem'), rsPem);
fs.writeFileSync(path.join(out, 'es-main.pem'), await exportSPKI(esMain.publicKey));
const weakJwk = weak.publicKey.export({ format: 'jwk' });
fs.writeFileSync(
  path.join(out, 'weak.jwks.json'),
  JSON.stringify({ keys: [{ ...weakJwk, kid: 'rs-weak', alg: 'RS256' }] }, null, 2),
);
fs.writeFileSync(path.join(out, 'weak.pem'), weak.publicKey.export({ type: 'spki', format: 'pem' }));

// --- tokens ---------------------------------------------------------------------------------------

const goodClaims = () => ({
  sub: 'alice',
  roles: ['buyer'],
  iss: ISSUER,
  aud: AUDIENCE,
  iat: now,
  exp: now + 3600,
});

// jose's JWT builder, with exactly the header and claims given.
const jwt = (header, claims, key) => new SignJWT(claims).setProtectedHeader(header).sign(key);
const rs = (claims = goodClaims(), header = {}) =>
  jwt({ alg: 'RS256', kid: 'rs-main', typ: 'JWT', ...header }, claims, rsMain.privateKey);
const es = (claims = goodClaims(), header = {}) =>
  jwt({ alg: 'ES256', kid: 'es-main', typ: 'JWT', ...header }, claims, esMain.privateKey);
const without = (name) => {
  const claims = goodClaims();
  delete claims[name];
  return claims;
};

// Node's crypto for what jose will not write: DER ECDSA signatures, PSS under an RS256 header,
// 1024-bit RSA.
const nodeSigned = (header, claims, sign) => {
  const input = `${json64(header)}.${json64(claims)}`;
  return `${input}.${b64u(sign(Buffer.from(input)))}`;
};
const esPrivateNode = crypto.createPrivateKey({
  key: await exportJWK(esMain.privateKey),
  format: 'jwk',
});
const rsPrivateNode = crypto.createPrivateKey({
  key: await exportJWK(rsMain.privateKey),
  format: 'jwk',
});

const parts = (token) => token.split('.');
const flipFirstSignatureChar = (token) => {
  const [h, p, s] = parts(token);
  return `${h}.${p}.${s[0] === 'A' ? 'B' : 'A'}${s.slice(1)}`;
};

const validRs = await rs();
const validEs = await es();

const cases = [];
const add = (name, token, expect, extra = {}) => cases.push({ name, token, expect, ...extra });

// Accepted.
add('RS256 valid', validRs, 200);
add('ES256 valid', validEs, 200);
add('RS256 typ at+jwt', await rs(goodClaims(), { typ: 'at+jwt' }), 200);
add('ES256 without typ', await jwt({ alg: 'ES256', kid: 'es-main' }, goodClaims(), esMain.privateKey), 200);
add('RS256 expired within leeway', await rs({ ...goodClaims(), exp: now - 30 }), 200);
add('ES256 nbf within leeway', await es({ ...goodClaims(), nbf: now + 30 }), 200);
add('RS256 aud array containing the audience', await rs({ ...goodClaims(), aud: ['billing', AUDIENCE] }), 200);
add('HS256 JWKS oct key by kid', await jwt({ alg: 'HS256', kid: 'hs-main', typ: 'JWT' }, goodClaims(), hsSecret), 200, { jwks_only: true });

// Refused: algorithm and key selection.
add('alg none, unsigned', new UnsecuredJWT(goodClaims()).encode(), 401, { why: 'alg not allowed' });
add('alg none with the RS kid', `${json64({ alg: 'none', kid: 'rs-main' })}.${json64(goodClaims())}.`, 401, { why: 'alg not allowed' });
add('alg none carrying a valid RS256 signature', `${json64({ alg: 'none', kid: 'rs-main' })}.${parts(validRs)[1]}.${parts(validRs)[2]}`, 401, { why: 'alg not allowed' });
add('HS256 signed with the RSA public key PEM, RS kid', await jwt({ alg: 'HS256', kid: 'rs-main', typ: 'JWT' }, goodClaims(), new TextEncoder().encode(rsPem)), 401, { why: 'alg not allowed for this key' });
add('HS256 signed with the RSA public key PEM, no kid', await jwt({ alg: 'HS256', typ: 'JWT' }, goodClaims(), new TextEncoder().encode(rsPem)), 401, { why: 'bad signature' });
add('HS384 with the oct key kid', await jwt({ alg: 'HS384', kid: 'hs-main' }, goodClaims(), hsSecret), 401, { why: 'alg not allowed' });
add('unknown kid', await jwt({ alg: 'RS256', kid: 'nobody' }, goodClaims(), rsOther.privateKey), 401, { why: 'unknown kid' });
add('kid is not a string', await jwt({ alg: 'RS256', kid: 7 }, goodClaims(), rsMain.privateKey), 401, { why: 'bad kid' });
add('RS kid with alg ES256', await jwt({ alg: 'ES256', kid: 'rs-main' }, goodClaims(), esMain.privateKey), 401, { why: 'alg not allowed for this key' });
add('ES kid with alg RS256', await jwt({ alg: 'RS256', kid: 'es-main' }, goodClaims(), rsMain.privateKey), 401, { why: 'alg not allowed for this key' });
add('RS kid with alg PS256', nodeSigned({ alg: 'PS256', kid: 'rs-main' }, goodClaims(), (d) => crypto.sign('sha256', d, { key: rsPrivateNode, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })), 401, { why: 'alg not allowed' });
add('RS256 without kid', await jwt({ alg: 'RS256', typ: 'JWT' }, goodClaims(), rsMain.privateKey), 401, { why: 'alg not allowed without kid' });
add('RS256 header, RSA-PSS signature', nodeSigned({ alg: 'RS256', kid: 'rs-main' }, goodClaims(), (d) => crypto.sign('sha256', d, { key: rsPrivateNode, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })), 401, { why: 'bad signature' });
add('RS256 signed by a 1024-bit key, RS kid', nodeSigned({ alg: 'RS256', kid: 'rs-main' }, goodClaims(), (d) => crypto.sign('sha256', d, weak.privateKey)), 401, { why: 'bad signature' });

// Refused: signatures.
add('signature of another RSA key with the same kid', await jwt({ alg: 'RS256', kid: 'rs-main' }, goodClaims(), rsOther.privateKey), 401, { why: 'bad signature' });
add('signature of another EC key with the same kid', await jwt({ alg: 'ES256', kid: 'es-main' }, goodClaims(), esOther.privateKey), 401, { why: 'bad signature' });
add('tampered payload', `${parts(validRs)[0]}.${json64({ ...goodClaims(), sub: 'mallory', roles: ['admin'] })}.${parts(validRs)[2]}`, 401, { why: 'bad signature' });
add('RS256 flipped signature bits', flipFirstSignatureChar(validRs), 401, { why: 'bad signature' });
add('ES256 flipped signature bits', flipFirstSignatureChar(validEs), 401, { why: 'bad signature' });
add('ES256 DER-encoded signature', nodeSigned({ alg: 'ES256', kid: 'es-main' }, goodClaims(), (d) => crypto.sign('sha256', d, { key: esPrivateNode, dsaEncoding: 'der' })), 401, { why: 'bad signature' });
add('ES256 signature one byte short', (() => { const [h, p, s] = parts(validEs); return `${h}.${p}.${b64u(Buffer.from(s, 'base64url').subarray(0, 63))}`; })(), 401, { why: 'bad signature' });
add('empty signature', `${parts(validRs)[0]}.${parts(validRs)[1]}.`, 401, { why: 'bad signature' });

// Refused: shape.
add('truncated token', validRs.slice(0, validRs.length - 10), 401, { why: 'bad signature' });
add('two-part token', `${parts(validRs)[0]}.${parts(validRs)[1]}`, 401, { why: 'malformed token' });
add('four-part token', `${validRs}.${parts(validRs)[2]}`, 401, { why: 'malformed token' });
add('non-base64url characters', `${parts(validRs)[0]}.${parts(validRs)[1]}.${parts(validRs)[2].slice(0, -4)}+/+/`, 401, { why: 'bad signature' });
add('padded base64', `${parts(validEs)[0]}.${parts(validEs)[1]}.${parts(validEs)[2]}==`, 401, { why: 'bad signature' });
add('header is not JSON', `${b64u('not json')}.${parts(validRs)[1]}.${parts(validRs)[2]}`, 401, { why: 'bad header' });
add('payload is not JSON, signed', await new CompactSign(new TextEncoder().encode('not json')).setProtectedHeader({ alg: 'RS256', kid: 'rs-main' }).sign(rsMain.privateKey), 401, { why: 'bad payload' });
add('huge header', await jwt({ alg: 'RS256', kid: 'rs-main', pad: 'x'.repeat(3000) }, goodClaims(), rsMain.privateKey), 401, { why: 'header too long' });
add('typ JWE', await rs(goodClaims(), { typ: 'JWE' }), 401, { why: 'typ not allowed' });
add('typ not a string', await rs(goodClaims(), { typ: 1 }), 401, { why: 'typ not allowed' });
add('crit with an unknown extension', await new SignJWT(goodClaims()).setProtectedHeader({ alg: 'RS256', kid: 'rs-main', crit: ['urn:example:ext'], 'urn:example:ext': true }).sign(rsMain.privateKey, { crit: { 'urn:example:ext': true } }), 401, { why: 'crit not supported' });

// Refused: claims.
add('expired beyond leeway', await rs({ ...goodClaims(), exp: now - 600 }), 401, { why: 'token expired' });
add('nbf in the future beyond leeway', await es({ ...goodClaims(), nbf: now + 600 }), 401, { why: 'token not yet valid' });
add('wrong iss', await rs({ ...goodClaims(), iss: 'someone-else' }), 401, { why: 'wrong issuer' });
add('missing iss', await rs(without('iss')), 401, { why: 'wrong issuer' });
add('wrong aud', await es({ ...goodClaims(), aud: 'other-api' }), 401, { why: 'wrong audience' });
add('aud array without the audience', await rs({ ...goodClaims(), aud: ['billing', 'other-api'] }), 401, { why: 'wrong audience' });
add('missing exp', await rs(without('exp')), 401, { why: 'missing exp' });
add('exp is a string', await rs({ ...goodClaims(), exp: String(now + 3600) }), 401, { why: 'bad exp' });
add('missing sub', await es(without('sub')), 401, { why: 'bad sub' });
add('roles not an array', await rs({ ...goodClaims(), roles: 'admin' }), 401, { why: 'roles must be an array of strings' });

// The accepted tokens also pass jose's own verification, so both implementations agree on them.
const localKeys = createLocalJWKSet({ keys: jwks.keys.filter((k) => k.kty !== 'oct') });
for (const c of cases.filter((c) => c.expect === 200 && !c.jwks_only)) {
  await jwtVerify(c.token, localKeys, { issuer: ISSUER, audience: AUDIENCE, clockTolerance: LEEWAY_SECONDS });
}

fs.writeFileSync(
  path.join(out, 'matrix.json'),
  JSON.stringify({ leeway_seconds: LEEWAY_SECONDS, issuer: ISSUER, audience: AUDIENCE, cases }, null, 2),
);
console.log(`minted ${cases.length} tokens into ${out}`);
