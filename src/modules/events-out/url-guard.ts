import { type LookupAddress, lookup as dnsLookup } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { type Message, msg, render } from '../../messages.ts';

/**
 * Where webhooks may go. Loopback, private, link-local, carrier-grade NAT, multicast and reserved ranges are
 * refused unless WEBHOOK_ALLOW_PRIVATE_URLS: the check runs when an endpoint is saved and again at each
 * delivery, on the addresses the name resolves to then (the connection uses exactly the addresses checked, so
 * a name that changes its answer between the check and the connect gains nothing).
 */
const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 3], // multicast, reserved and broadcast
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 96], // unspecified, loopback and the IPv4-compatible range (deprecated; never a public host)
  ['64:ff9b:1::', 48], // local-use NAT64 (RFC 8215): translates to this network's own IPv4 space
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7], // unique-local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8],
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv6');
}

/** The 8 groups of an IPv6 address, or null when it is not one. */
function ipv6Groups(address: string): number[] | null {
  if (isIP(address) !== 6) return null;
  let text = address.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted?.[1]) {
    const [a = 0, b = 0, c = 0, d = 0] = dotted[1].split('.').map(Number);
    text = `${text.slice(0, -dotted[1].length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array(8 - headGroups.length - tailGroups.length).fill('0');
  return [...headGroups, ...fill, ...tailGroups].map((g) => Number.parseInt(g, 16));
}

const ipv4Of = (high: number, low: number) => [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');

/**
 * The IPv4 addresses an IPv6 address embeds or is translated to, by the forms that reach IPv4 hosts:
 * IPv4-mapped `::ffff:a.b.c.d`, IPv4-translated `::ffff:0:a.b.c.d` (SIIT), IPv4-compatible `::a.b.c.d`,
 * NAT64 `64:ff9b::a.b.c.d` (and `64:ff9b:1::/48`, refused whole above), 6to4 `2002:AABB:CCDD::` and
 * Teredo `2001:0:SSSS:SSSS::` (server, and the client's address XOR-obfuscated in the last 32 bits).
 * A private one among them makes the IPv6 address private: a gateway would carry the request there.
 */
export function embeddedIpv4(groups: readonly number[]): string[] {
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = groups;
  const zeroTo3 = g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0;
  if (zeroTo3 && g4 === 0 && (g5 === 0xffff || g5 === 0)) return [ipv4Of(g6, g7)]; // mapped, compatible
  if (zeroTo3 && g4 === 0xffff && g5 === 0) return [ipv4Of(g6, g7)]; // IPv4-translated
  if (g0 === 0x64 && g1 === 0xff9b) return [ipv4Of(g6, g7)]; // NAT64, well-known and local-use prefixes
  if (g0 === 0x2002) return [ipv4Of(g1, g2)]; // 6to4
  if (g0 === 0x2001 && g1 === 0) return [ipv4Of(g2, g3), ipv4Of(g6 ^ 0xffff, g7 ^ 0xffff)]; // Teredo
  return [];
}

/** True for an address webhooks may not reach unless private URLs are allowed. */
export function isPrivateAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(bare);
  if (family === 4) return PRIVATE.check(bare, 'ipv4');
  if (family !== 6) return true; // not an address at all: refuse
  if (PRIVATE.check(bare, 'ipv6')) return true;
  const groups = ipv6Groups(bare);
  if (!groups) return true;
  return embeddedIpv4(groups).some((v4) => PRIVATE.check(v4, 'ipv4'));
}

/** A URL the policy refuses; `reason` says why (a catalogue message, completing "body.url ..."). */
export class RefusedUrlError extends Error {
  readonly reason: Message;
  constructor(reason: Message) {
    super(render(reason, 'en'));
    this.name = 'RefusedUrlError';
    this.reason = reason;
  }
}

export interface UrlPolicy {
  allowPrivateUrls: boolean;
  httpsOnly: boolean;
}

export type Lookup = (hostname: string) => Promise<LookupAddress[]>;

export const systemLookup: Lookup = (hostname) =>
  new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) =>
      err ? reject(err) : resolve(addresses),
    );
  });

/** The URL's host without IPv6 brackets. */
export const hostOf = (url: URL) => url.hostname.replace(/^\[|\]$/g, '');

/**
 * Checks a webhook URL against the policy: scheme, no credentials-free surprises, and (private URLs refused)
 * every address the host is or resolves to. Throws RefusedUrlError with the reason, for the API.
 */
export async function checkWebhookUrl(
  raw: string,
  policy: UrlPolicy,
  lookup: Lookup = systemLookup,
): Promise<URL> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new RefusedUrlError(msg('webhook_url.invalid'));
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new RefusedUrlError(msg('webhook_url.scheme'));
  if (policy.httpsOnly && url.protocol !== 'https:') throw new RefusedUrlError(msg('webhook_url.https_only'));
  if (policy.allowPrivateUrls) return url;
  const host = hostOf(url);
  if (isIP(host)) {
    if (isPrivateAddress(host)) throw new RefusedUrlError(msg('webhook_url.private_address', { host }));
    return url;
  }
  let addresses: LookupAddress[];
  try {
    addresses = await lookup(host);
  } catch {
    throw new RefusedUrlError(msg('webhook_url.unresolvable', { host }));
  }
  const refused = addresses.find((a) => isPrivateAddress(a.address));
  if (addresses.length === 0 || refused) {
    throw new RefusedUrlError(
      msg('webhook_url.resolves_private', { host, address: refused?.address ?? 'none' }),
    );
  }
  return url;
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * A `lookup` for http.request that refuses private addresses (unless allowed): the socket connects to the
 * addresses checked here, so DNS rebinding between a check and the connect is not possible.
 */
export function guardedLookup(allowPrivateUrls: boolean) {
  return (
    hostname: string,
    options: { all?: boolean; family?: number | string },
    callback: LookupCallback,
  ) => {
    dnsLookup(
      hostname,
      { family: options.family as 0 | 4 | 6 | undefined, all: true, verbatim: true },
      (err, addresses) => {
        if (err) return callback(err, []);
        const refused = addresses.find((a) => isPrivateAddress(a.address));
        if (!allowPrivateUrls && (refused || addresses.length === 0)) {
          // An attempt's error, recorded on the delivery (last_error); never an API answer.
          const e: NodeJS.ErrnoException = new Error(
            `${hostname} resolves to a private or loopback address (${refused?.address ?? 'none'})`,
          );
          e.code = 'EPRIVATEADDRESS';
          return callback(e, []);
        }
        const [first] = addresses;
        if (options.all) return callback(null, addresses);
        if (!first)
          return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), []);
        return callback(null, first.address, first.family);
      },
    );
  };
}
