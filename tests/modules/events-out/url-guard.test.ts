import { describe, expect, it } from 'vitest';
import {
  checkWebhookUrl,
  guardedLookup,
  isPrivateAddress,
  RefusedUrlError,
} from '../../../src/modules/events-out/url-guard.ts';

/** Every form an address can take to reach a host webhooks must not reach (no Postgres needed). */
const REFUSED: [string, string][] = [
  ['127.0.0.1', 'IPv4 loopback'],
  ['10.1.2.3', 'IPv4 private'],
  ['169.254.169.254', 'IPv4 link-local (cloud metadata)'],
  ['::1', 'IPv6 loopback'],
  ['::', 'IPv6 unspecified'],
  ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
  ['::ffff:a9fe:a9fe', 'IPv4-mapped metadata, hex'],
  ['::ffff:0:169.254.169.254', 'IPv4-translated (::ffff:0:0:0/96) metadata'],
  ['::ffff:0:a00:1', 'IPv4-translated 10.0.0.1, hex'],
  ['::10.0.0.1', 'IPv4-compatible private'],
  ['::8.8.8.8', 'IPv4-compatible (deprecated, never a public host)'],
  ['64:ff9b::a9fe:a9fe', 'NAT64 well-known prefix, metadata'],
  ['64:ff9b::10.0.0.1', 'NAT64 well-known prefix, dotted private'],
  ['64:ff9b::7f00:1', 'NAT64 well-known prefix, loopback'],
  ['64:ff9b:1::a9fe:a9fe', 'NAT64 local-use prefix (64:ff9b:1::/48), metadata'],
  ['64:ff9b:1:ffff::8.8.8.8', 'NAT64 local-use prefix, any address'],
  ['2002:a9fe:a9fe::1', '6to4 of the metadata address'],
  ['2002:c0a8:0101::', '6to4 of 192.168.1.1'],
  ['2002:7f00:1::', '6to4 of 127.0.0.1'],
  ['2001:0:a9fe:a9fe::1', 'Teredo, server 169.254.169.254'],
  ['2001:0:808:808:0:0:f5ff:fffe', 'Teredo, client 10.0.0.1 (obfuscated)'],
  ['fc00::1', 'unique-local fc00::/7'],
  ['fd12:3456:789a::1', 'unique-local fd00::/8'],
  ['fe80::1', 'link-local'],
  ['fe80::1%eth0', 'link-local with a zone'],
  ['febf:ffff::1', 'link-local, top of fe80::/10'],
  ['fec0::1', 'site-local (deprecated)'],
  ['ff02::1', 'multicast'],
  ['2001:db8::1', 'documentation'],
  ['not-an-address', 'not an address'],
];

const ALLOWED: [string, string][] = [
  ['8.8.8.8', 'public IPv4'],
  ['2606:4700:4700::1111', 'public IPv6'],
  ['::ffff:8.8.8.8', 'IPv4-mapped public'],
  ['::ffff:0:8.8.8.8', 'IPv4-translated public'],
  ['64:ff9b::8.8.8.8', 'NAT64 of a public address'],
  ['2002:808:808::1', '6to4 of a public address'],
  ['2001:0:808:808:0:0:f7f7:f7f7', 'Teredo, public server and client'],
];

const production = { allowPrivateUrls: false, httpsOnly: true };

/** The delivery-time check: the lookup the delivery's socket connects with. */
function deliveryLookup(host: string): Promise<string> {
  return new Promise((resolve) => {
    guardedLookup(false)(host, { all: true }, (err) => resolve(err ? (err.code ?? 'error') : 'ok'));
  });
}

describe('the webhook URL guard', () => {
  describe.each(REFUSED)('refuses %s (%s)', (address) => {
    it('as an address', () => expect(isPrivateAddress(address)).toBe(true));
    it.skipIf(address === 'not-an-address' || address.includes('%'))('at save', async () => {
      const url = `https://[${address}]/hook`;
      const host = address.includes(':') ? url : url.replace(/\[|\]/g, '');
      const err = await checkWebhookUrl(host, production).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RefusedUrlError);
      expect((err as RefusedUrlError).reason.key).toBe('webhook_url.private_address');
    });
    it.skipIf(address === 'not-an-address' || address.includes('%'))('at delivery', async () => {
      expect(await deliveryLookup(address)).toBe('EPRIVATEADDRESS');
    });
  });

  describe.each(ALLOWED)('allows %s (%s)', (address) => {
    it('as an address', () => expect(isPrivateAddress(address)).toBe(false));
    it('at save', async () => {
      const url = address.includes(':') ? `https://[${address}]/hook` : `https://${address}/hook`;
      await expect(checkWebhookUrl(url, production)).resolves.toBeInstanceOf(URL);
    });
    it('at delivery', async () => {
      expect(await deliveryLookup(address)).toBe('ok');
    });
  });

  it('refuses a host name that resolves to an embedded private address', async () => {
    const lookup = async () => [{ address: '64:ff9b:1::a9fe:a9fe', family: 6 }];
    const err = await checkWebhookUrl('https://hooks.example.com/', production, lookup).catch((e) => e);
    expect((err as RefusedUrlError).reason.key).toBe('webhook_url.resolves_private');
  });
});
