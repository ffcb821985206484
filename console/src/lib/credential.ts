/** What the signed-in credential is, as far as the console can tell before asking the service. */
export type Credential = { kind: 'jwt'; subject: string | null; roles: string[] } | { kind: 'apiKey' };

/** What the console shows or hides; the service decides in the end (a 403 is said in words). */
export interface Capabilities {
  /** Admin actions: reverse, release, sync, replay, packages, keys, webhooks. */
  admin: boolean;
  /** Reverse debits and release holds (admin, or an API key with credits:debit). */
  debit: boolean;
  /** Create and edit packages (admin, or an API key with packages:write). */
  packagesWrite: boolean;
}

function base64UrlDecode(part: string): string {
  const base64 = part.replace(/-/g, '+').replace(/_/g, '/');
  const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
  const binary = atob(padded);
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/**
 * Reads a JWT's claims without verifying it (only the service can): enough to say who is signed in and to
 * hide what the roles cannot do. Anything that is not a three-part JWT with a JSON payload is taken for an
 * API key.
 */
export function describeCredential(token: string): Credential {
  const parts = token.trim().split('.');
  if (parts.length !== 3 || !parts[1]) return { kind: 'apiKey' };
  try {
    const claims = JSON.parse(base64UrlDecode(parts[1])) as { sub?: unknown; roles?: unknown };
    const roles = Array.isArray(claims.roles)
      ? claims.roles.filter((r): r is string => typeof r === 'string')
      : [];
    return { kind: 'jwt', subject: typeof claims.sub === 'string' ? claims.sub : null, roles };
  } catch {
    return { kind: 'apiKey' };
  }
}

/** Capabilities of a JWT from its roles; an API key's come from probing its scopes (`probedScopes`). */
export function capabilitiesOf(credential: Credential, probedScopes: readonly string[] = []): Capabilities {
  if (credential.kind === 'jwt') {
    const admin = credential.roles.includes('admin');
    return { admin, debit: admin, packagesWrite: admin };
  }
  return {
    admin: false,
    debit: probedScopes.includes('credits:debit'),
    packagesWrite: probedScopes.includes('packages:write'),
  };
}
