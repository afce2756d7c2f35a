// The oidc-provider peer (panva's certified OpenID provider): client_credentials
// with private_key_jwt, issuing RFC 9068 JWT access tokens signed ES256, set up for
// production as its docs say: NODE_ENV=production, its own keys (no development
// keys), a shared adapter (Redis, so that the client assertions' `jti` replay
// detection holds across workers; the bundled memory adapter is for development
// only and keeps 1,000 entries), one worker per core with node:cluster.
//
// Configured by the environment: PEER_ISSUER, PEER_PORT, PEER_CLIENT_ID,
// PEER_CLIENT_JWK (a file with the client's public JWK), PEER_SCOPES,
// PEER_REDIS_URL, PEER_WORKERS (default: one per core). The provider's signing keys
// (ES256 for the access tokens, RS256 which it wants for ID tokens) are generated
// by the primary and handed to every worker.
import cluster from 'node:cluster';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

import Redis from 'ioredis';
import Provider from 'oidc-provider';

const workers = Number(process.env.PEER_WORKERS || availableParallelism());

if (cluster.isPrimary) {
  const jwk = (type, options, alg) => ({
    ...generateKeyPairSync(type, options).privateKey.export({ format: 'jwk' }),
    alg,
    use: 'sig',
    kid: randomUUID(),
  });
  const jwks = JSON.stringify({
    keys: [
      jwk('ec', { namedCurve: 'P-256' }, 'ES256'),
      jwk('rsa', { modulusLength: 2048 }, 'RS256'),
    ],
  });
  for (let i = 0; i < workers; i += 1) cluster.fork({ PEER_JWKS: jwks });
  cluster.on('exit', (worker, code) => {
    console.error(`worker ${worker.process.pid} exited with ${code}`);
    process.exit(1);
  });
} else {
  const issuer = process.env.PEER_ISSUER.replace(/\/$/, '');
  const scopes = (process.env.PEER_SCOPES || 'signature impersonation').split(' ');
  const clientJwk = JSON.parse(readFileSync(process.env.PEER_CLIENT_JWK, 'utf8'));
  const jwks = JSON.parse(process.env.PEER_JWKS);
  const redis = new Redis(process.env.PEER_REDIS_URL || 'redis://127.0.0.1:6379/0', {
    keyPrefix: 'oidc-provider-peer:',
  });

  // The Redis adapter of oidc-provider's example/adapters/redis.js, reduced to
  // what client_credentials and replay detection use.
  class RedisAdapter {
    constructor(name) { this.name = name; }

    key(id) { return `${this.name}:${id}`; }

    async upsert(id, payload, expiresIn) {
      const key = this.key(id);
      if (expiresIn) await redis.set(key, JSON.stringify(payload), 'EX', expiresIn);
      else await redis.set(key, JSON.stringify(payload));
    }

    async find(id) {
      const data = await redis.get(this.key(id));
      return data ? JSON.parse(data) : undefined;
    }

    async findByUid() { return undefined; }

    async findByUserCode() { return undefined; }

    async consume(id) {
      const data = await this.find(id);
      if (data) await this.upsert(id, { ...data, consumed: Math.floor(Date.now() / 1000) });
    }

    async destroy(id) { await redis.del(this.key(id)); }

    async revokeByGrantId() {}
  }

  const provider = new Provider(issuer, {
    adapter: RedisAdapter,
    jwks,
    cookies: { keys: [process.env.PEER_COOKIE_KEY || 'peer-bench-cookie-key-not-a-secret'] },
    clients: [{
      client_id: process.env.PEER_CLIENT_ID,
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'RS256',
      jwks: { keys: [clientJwk] },
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: scopes.join(' '),
    }],
    scopes,
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: false },
      revocation: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => `${issuer}/api`,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: scopes.join(' '),
          audience: `${issuer}/api`,
          accessTokenTTL: 3600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
    enabledJWA: { clientAuthSigningAlgValues: ['RS256', 'ES256'] },
  });
  provider.on('server_error', (ctx, error) => console.error(error));
  provider.listen(Number(process.env.PEER_PORT), '127.0.0.1');
}
