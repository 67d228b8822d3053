#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Independent dm-crypt sector encryption oracle for the blockcrypt tests.

Built only on python3-cryptography (OpenSSL), sharing no code with
blockcrypt. Run it with /usr/bin/python3.

  dmcrypt.py decrypt|encrypt --cipher SPEC --key-hex HEX --sector-size N
             [--iv-large-sectors] [--iv-offset SECTORS512] [--offset BYTES]
             [--length BYTES] [--zero-rule] INPUT OUTPUT
  dmcrypt.py selftest

SPEC is one of aes-xts-plain64, aes-xts-plain, aes-cbc-essiv:sha256,
aes-cbc-plain64, aes-cbc-plain. OUTPUT '-' means stdout.

Semantics are those of Linux dm-crypt (drivers/md/dm-crypt.c):
  * The data area (INPUT from --offset, --length bytes; by default to the
    end, rounded down to whole sectors) is cut into sectors of N bytes.
  * Sector i of the area has IV sector s = i * (N / 512) + iv_offset, and
    with --iv-large-sectors s = s >> log2(N / 512) (dm-crypt's
    iv_large_sectors: only plain volumes opened with --iv-large-sectors
    use it; LUKS1 and LUKS2 count 512-byte units whatever N is, and
    512-byte sectors never shift).
  * plain64: IV = s as 64-bit little-endian, zero-padded to 16 bytes.
    plain:   IV = s truncated to 32 bits, little-endian, zero-padded.
    essiv:sha256: IV = AES-256-ECB(key = SHA256(volume key), plain64 IV).
  * XTS: each sector is one XTS data unit, tweak = IV, XTS key = the whole
    volume key (32 bytes: AES-128-XTS, 64 bytes: AES-256-XTS).
    CBC: each sector is CBC-encrypted on its own with that IV, no padding,
    AES key = the whole volume key (16, 24 or 32 bytes).

--zero-rule (decrypt only) adds blockcrypt's one departure from dm-crypt:
a sector whose ciphertext is all zero bytes reads as all-zero plaintext
(dm-crypt decrypts it into pseudo-random bytes).  Real ciphertext is never
all zero (probability 2^-(8 * sector size)), so this changes only areas
never written (or trimmed) through the device; a test that reads such
areas through blockcrypt compares with --zero-rule, one that reads written
data compares without it.
"""

import argparse
import hashlib
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

CIPHERS = ('aes-xts-plain64', 'aes-xts-plain', 'aes-cbc-essiv:sha256',
           'aes-cbc-plain64', 'aes-cbc-plain')
CHUNK = 1 << 20  # bytes read at a time; a multiple of every sector size


def ecb(key):
    return Cipher(algorithms.AES(key), modes.ECB()).encryptor()


def xts_by_ecb(key, tweak, data, encrypt):
    """IEEE 1619 XTS built from AES-ECB. Only used when key1 == key2, which
    dm-crypt accepts (outside FIPS mode) but OpenSSL 3 refuses."""
    half = len(key) // 2
    block = Cipher(algorithms.AES(key[:half]), modes.ECB())
    block = block.encryptor() if encrypt else block.decryptor()
    t = int.from_bytes(ecb(key[half:]).update(tweak), 'little')
    mask = bytearray()
    for _ in range(len(data) // 16):
        mask += t.to_bytes(16, 'little')
        t <<= 1
        if t >> 128:
            t = (t & ((1 << 128) - 1)) ^ 0x87
    xor = lambda a, b: (int.from_bytes(a, 'little') ^
                        int.from_bytes(b, 'little')).to_bytes(len(a), 'little')
    return xor(block.update(xor(data, mask)), mask)


class SectorCipher:
    def __init__(self, spec, key, sector_size, iv_large_sectors, iv_offset, zero_rule=False):
        if spec not in CIPHERS:
            raise ValueError('unsupported cipher %r' % spec)
        if sector_size not in (512, 1024, 2048, 4096):
            raise ValueError('sector size must be 512, 1024, 2048 or 4096')
        _, self.mode, self.ivgen = spec.split('-', 2)
        if self.mode == 'xts' and len(key) not in (32, 64):
            raise ValueError('aes-xts needs a 32 or 64 byte key')
        if self.mode == 'cbc' and len(key) not in (16, 24, 32):
            raise ValueError('aes-cbc needs a 16, 24 or 32 byte key')
        self.key = key
        self.aes = algorithms.AES(key)
        self.dup_xts_key = self.mode == 'xts' and key[:len(key) // 2] == key[len(key) // 2:]
        self.sector_size = sector_size
        self.step = sector_size // 512
        self.shift = self.step.bit_length() - 1 if iv_large_sectors else 0
        self.iv_offset = iv_offset
        self.zero_rule = zero_rule
        if self.ivgen == 'essiv:sha256':
            self.essiv = ecb(hashlib.sha256(key).digest())

    def iv(self, i):
        """IV of sector i (0-based) of the data area."""
        s = (i * self.step + self.iv_offset) >> self.shift
        if self.ivgen == 'plain':
            return (s & 0xffffffff).to_bytes(4, 'little') + bytes(12)
        iv = (s & 0xffffffffffffffff).to_bytes(8, 'little') + bytes(8)
        if self.ivgen == 'essiv:sha256':
            iv = self.essiv.update(iv)
        return iv

    def sector(self, i, data, encrypt):
        if self.zero_rule and not encrypt and not any(data):
            return bytes(len(data))
        iv = self.iv(i)
        if self.dup_xts_key:
            return xts_by_ecb(self.key, iv, data, encrypt)
        mode = modes.XTS(iv) if self.mode == 'xts' else modes.CBC(iv)
        c = Cipher(self.aes, mode)
        ctx = c.encryptor() if encrypt else c.decryptor()
        return ctx.update(data) + ctx.finalize()

    def area(self, data, encrypt, first_sector=0):
        """En/decrypt whole sectors; data[0] is the start of sector first_sector."""
        n = self.sector_size
        if len(data) % n:
            raise ValueError('data is not a whole number of sectors')
        return b''.join(self.sector(first_sector + k, data[k * n:(k + 1) * n], encrypt)
                        for k in range(len(data) // n))


def run(args):
    sc = SectorCipher(args.cipher, bytes.fromhex(args.key_hex), args.sector_size,
                      args.iv_large_sectors, args.iv_offset, args.zero_rule)
    encrypt = args.command == 'encrypt'
    if encrypt and args.zero_rule:
        raise ValueError('--zero-rule is for decrypt only')
    with open(args.input, 'rb') as fin:
        size = fin.seek(0, 2)
        if args.offset > size:
            raise ValueError('--offset %d is past the end of %s (%d bytes)'
                             % (args.offset, args.input, size))
        if args.length is None:
            length = (size - args.offset) // args.sector_size * args.sector_size
        else:
            length = args.length
            if length % args.sector_size:
                raise ValueError('--length is not a multiple of the sector size')
            if args.offset + length > size:
                raise ValueError('%s is too short for --offset + --length' % args.input)
        fin.seek(args.offset)
        fout = sys.stdout.buffer if args.output == '-' else open(args.output, 'wb')
        try:
            done = 0
            while done < length:
                buf = fin.read(min(CHUNK, length - done))
                if not buf or len(buf) % args.sector_size:
                    raise IOError('short read from %s' % args.input)
                fout.write(sc.area(buf, encrypt, done // args.sector_size))
                done += len(buf)
        finally:
            if fout is not sys.stdout.buffer:
                fout.close()
            else:
                fout.flush()


# IEEE P1619-2007 Annex B vectors. Vectors 4 and 5 share key and sector
# numbers 0 and 1, and vector 5's plaintext is vector 4's ciphertext, so
# together they form a two-sector aes-xts-plain64 device.
K128 = '27182818284590452353602874713526' '31415926535897932384626433832795'
K256 = ('2718281828459045235360287471352662497757247093699959574966967627'
        '3141592653589793238462643383279502884197169399375105820974944592')
PT_0_255_X2 = bytes(range(256)) * 2
CT4 = bytes.fromhex(
    '27a7479befa1d476489f308cd4cfa6e2a96e4bbe3208ff25287dd3819616e89c'
    'c78cf7f5e543445f8333d8fa7f56000005279fa5d8b5e4ad40e736ddb4d35412'
    '328063fd2aab53e5ea1e0a9f332500a5df9487d07a5c92cc512c8866c7e860ce'
    '93fdf166a24912b422976146ae20ce846bb7dc9ba94a767aaef20c0d61ad0265'
    '5ea92dc4c4e41a8952c651d33174be51a10c421110e6d81588ede82103a252d8'
    'a750e8768defffed9122810aaeb99f9172af82b604dc4b8e51bcb08235a6f434'
    '1332e4ca60482a4ba1a03b3e65008fc5da76b70bf1690db4eae29c5f1badd03c'
    '5ccf2a55d705ddcd86d449511ceb7ec30bf12b1fa35b913f9f747a8afd1b130e'
    '94bff94effd01a91735ca1726acd0b197c4e5b03393697e126826fb6bbde8ecc'
    '1e08298516e2c9ed03ff3c1b7860f6de76d4cecd94c8119855ef5297ca67e9f3'
    'e7ff72b1e99785ca0a7e7720c5b36dc6d72cac9574c8cbbc2f801e23e56fd344'
    'b07f22154beba0f08ce8891e643ed995c94d9a69c9f1b5f499027a78572aeebd'
    '74d20cc39881c213ee770b1010e4bea718846977ae119f7a023ab58cca0ad752'
    'afe656bb3c17256a9f6e9bf19fdd5a38fc82bbe872c5539edb609ef4f79c203e'
    'bb140f2e583cb2ad15b4aa5b655016a8449277dbd477ef2c8d6c017db738b18d'
    'eb4a427d1923ce3ff262735779a418f20a282df920147beabe421ee5319d0568')
CT5_HEAD = bytes.fromhex('264d3ca8512194fec312c8c9891f279fefdd608d0c027b60483a3fa811d65ee5')
CT5_TAIL = bytes.fromhex('6ad12c39f1e867a4b7b1d7818a4b753dfd2a89ccb45e001a03a867b187f225dd')
CT10 = bytes.fromhex(
    '1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b'
    '5d31e276f8fe4a8d66b317f9ac683f44680a86ac35adfc3345befecb4bb188fd'
    '5776926c49a3095eb108fd1098baec70aaa66999a72a82f27d848b21d4a741b0'
    'c5cd4d5fff9dac89aeba122961d03a757123e9870f8acf1000020887891429ca'
    '2a3e7a7d7df7b10355165c8b9a6d0a7de8b062c4500dc4cd120c0f7418dae3d0'
    'b5781c34803fa75421c790dfe1de1834f280d7667b327f6c8cd7557e12ac3a0f'
    '93ec05c52e0493ef31a12d3d9260f79a289d6a379bc70c50841473d1a8cc81ec'
    '583e9645e07b8d9670655ba5bbcfecc6dc3966380ad8fecb17b6ba02469a020a'
    '84e18e8f84252070c13e9f1f289be54fbc481457778f616015e1327a02b140f1'
    '505eb309326d68378f8374595c849d84f4c333ec4423885143cb47bd71c5edae'
    '9be69a2ffeceb1bec9de244fbe15992b11b77c040f12bd8f6a975a44a0f90c29'
    'a9abc3d4d893927284c58754cce294529f8614dcd2aba991925fedc4ae74ffac'
    '6e333b93eb4aff0479da9a410e4450e0dd7ae4c6e2910900575da401fc07059f'
    '645e8b7e9bfdef33943054ff84011493c27b3429eaedb4ed5376441a77ed4385'
    '1ad77f16f541dfd269d50d6a5f14fb0aab1cbb4c1550be97f7ab4066193c4caa'
    '773dad38014bd2092fa755c824bb5e54c4f36ffda9fcea70b9c6e693e148c151')


def selftest():
    failures = []

    def check(name, ok):
        print('%-60s %s' % (name, 'ok' if ok else 'FAIL'))
        if not ok:
            failures.append(name)

    # Vector 10 (AES-256-XTS, data unit 0xff): sector 0 with iv_offset 0xff.
    sc = SectorCipher('aes-xts-plain64', bytes.fromhex(K256), 512, False, 0xff)
    ct = sc.area(PT_0_255_X2, True)
    check('IEEE 1619 vector 10 encrypt (aes-xts-plain64, AES-256)', ct == CT10)
    check('IEEE 1619 vector 10 decrypt', sc.area(ct, False) == PT_0_255_X2)
    # Same vector as sector 0xff of a 4096-byte-sector device with
    # iv_large_sectors: 0xff * 8 >> 3 == 0xff.
    sc = SectorCipher('aes-xts-plain64', bytes.fromhex(K256), 4096, True, 0xff * 8)
    big = sc.area(PT_0_255_X2 * 8, True)
    check('vector 10 in a 4096-byte sector, --iv-large-sectors',
          big[:512] == CT10)

    # Vectors 4 + 5: a two-sector AES-128-XTS area, sectors 0 and 1.
    sc = SectorCipher('aes-xts-plain64', bytes.fromhex(K128), 512, False, 0)
    ct = sc.area(PT_0_255_X2 + CT4, True)
    check('IEEE 1619 vectors 4+5 as a 2-sector area (AES-128)',
          ct[:512] == CT4 and ct[512:544] == CT5_HEAD and ct[-32:] == CT5_TAIL)
    check('vectors 4+5 decrypt', sc.area(ct, False) == PT_0_255_X2 + CT4)
    # plain and plain64 agree below 2^32.
    sc = SectorCipher('aes-xts-plain', bytes.fromhex(K128), 512, False, 0)
    check('aes-xts-plain == plain64 for small sectors', sc.area(PT_0_255_X2 + CT4, True) == ct)

    # Vector 1: identical key halves (OpenSSL 3 refuses them; dm-crypt does not).
    # XTS works block by block, so vector 1 (32 zero bytes, data unit 0) is
    # the start of sector 0 of an all-zero area.
    sc = SectorCipher('aes-xts-plain64', bytes(32), 512, False, 0)
    ct1 = sc.area(bytes(512), True)
    check('IEEE 1619 vector 1 (duplicate XTS key halves, ECB-built XTS)',
          sc.area(ct1, False) == bytes(512) and ct1[:32] == bytes.fromhex('917cf69ebd68b2ec9b9fe9a3eadda692'
                               'cd43d2f59598ed858c02c2652fbf922e'))
    # The ECB-built XTS also agrees with OpenSSL's XTS on vector 4.
    check('ECB-built XTS == OpenSSL XTS on vector 4',
          xts_by_ecb(bytes.fromhex(K128), bytes(16), PT_0_255_X2, True) == CT4 and
          xts_by_ecb(bytes.fromhex(K128), bytes(16), CT4, False) == PT_0_255_X2)

    # IV generators, checked by hand-built IVs.
    key = bytes(range(32))
    sc = SectorCipher('aes-cbc-plain64', key, 4096, True, 16)
    check('iv: plain64, 4096 sectors, large, offset 16 -> 2 + i',
          sc.iv(1) == (3).to_bytes(16, 'little'))
    sc = SectorCipher('aes-cbc-plain64', key, 4096, False, 16)
    check('iv: plain64, 4096 sectors, not large -> 16 + 8 i',
          sc.iv(1) == (24).to_bytes(16, 'little'))
    sc = SectorCipher('aes-cbc-plain', key, 512, False, (1 << 32) + 5)
    check('iv: plain truncates to 32 bits', sc.iv(2) == (7).to_bytes(16, 'little'))
    sc = SectorCipher('aes-cbc-essiv:sha256', key, 512, False, 0)
    salt = hashlib.sha256(key).digest()
    want = Cipher(algorithms.AES(salt), modes.ECB()).encryptor().update((9).to_bytes(16, 'little'))
    check('iv: essiv:sha256 = AES-256(sha256(key), plain64)', sc.iv(9) == want)
    # CBC: one independent CBC chain per sector.
    data = bytes(range(256)) * 4
    ct = sc.area(data, True)
    want = b''.join(Cipher(algorithms.AES(key), modes.CBC(sc.iv(k))).encryptor()
                    .update(data[512 * k:512 * (k + 1)]) for k in range(2))
    check('aes-cbc-essiv:sha256 per-sector CBC', ct == want)

    # Round trips for every cipher and sector size.
    for spec in CIPHERS:
        for n in (512, 4096):
            sc = SectorCipher(spec, bytes(range(64 if 'xts' in spec else 32)), n, n > 512, 8)
            data = bytes(range(256)) * (3 * n // 256)
            ct = sc.area(data, True)
            check('round trip %s sector %d' % (spec, n),
                  ct != data and sc.area(ct, False) == data and ct[:n] != ct[n:2 * n])

    print('selftest: %s' % ('FAILED (%d)' % len(failures) if failures else 'passed'))
    return 1 if failures else 0


def main():
    if len(sys.argv) == 2 and sys.argv[1] == 'selftest':
        return selftest()
    p = argparse.ArgumentParser(description='dm-crypt sector en/decryption oracle '
                                '(see the module docstring; also: "selftest")')
    p.add_argument('command', choices=('decrypt', 'encrypt'))
    p.add_argument('--cipher', required=True, choices=CIPHERS)
    p.add_argument('--key-hex', required=True)
    p.add_argument('--sector-size', type=int, default=512)
    p.add_argument('--iv-large-sectors', action='store_true')
    p.add_argument('--iv-offset', type=int, default=0, help='in 512-byte sectors')
    p.add_argument('--offset', type=int, default=0, help='data area start, bytes')
    p.add_argument('--length', type=int, default=None, help='bytes (default: to end)')
    p.add_argument('--zero-rule', action='store_true',
                   help="blockcrypt's reading: all-zero ciphertext sectors are zeros")
    p.add_argument('input')
    p.add_argument('output')
    args = p.parse_args()
    try:
        run(args)
    except (ValueError, OSError) as e:
        print('dmcrypt.py: %s' % e, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
