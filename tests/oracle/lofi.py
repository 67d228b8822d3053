#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Independent illumos lofi encrypted-image oracle for the blockcrypt tests.

Written from docs/blockcrypt-lofi.7.md alone, built only on
python3-cryptography, sharing no code with blockcrypt. Run it with
/usr/bin/python3.

  lofi.py create  KEY [--cipher NAME] [--data-sector N] [--no-header]
                  [--image-size BYTES] PLAIN IMAGE
  lofi.py decrypt KEY [--cipher NAME] [--data-sector N] IMAGE OUTPUT
  lofi.py iv      KEY SECTOR
  lofi.py selftest

KEY is --key-hex HEX, --key-file FILE (raw key, as lofiadm -k) or
--passphrase TEXT (lofiadm without -k: PBKDF2-HMAC-SHA1, the passphrase as
salt, 1000 iterations, 32 bytes). OUTPUT '-' means stdout.

The format:
  * at byte 8192, a 512-byte header: b'CFLOFI', version 0 (2 bytes, big
    endian), 96 reserved zero bytes, the data sector (4 bytes, big
    endian, 512-byte units, 16 as lofi writes it), 404 zero bytes;
  * the data area starts at data sector * 512 (8192: over the header, so
    device sector 0 is the header's block) and runs to the end;
  * device sector n (512 bytes) = AES-CBC_K(plaintext, IV(n)) with
    IV(n) = AES-ECB_K(8 zero bytes || n as 64-bit little endian).

create writes IMAGE = 8192 zero bytes, the header, then the encryption of
PLAIN from device sector 1 on (PLAIN is padded with zeros to whole
sectors; device sector 0 is left as the header, as lofi leaves it until
someone writes it).  With a data sector above 16 the header stands alone
at byte 8192 and PLAIN starts at device sector 0. --no-header instead encrypts PLAIN from device sector
0 on, as a write of the whole device does (it replaces the header).
decrypt writes the whole device, sector 0 included, decrypted; without
--data-sector it reads the data sector from the header.
"""

import argparse
import hashlib
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

SECTOR = 512
HEADER_OFFSET = 8192
MAGIC = b'CFLOFI'
NAMES = {'aes-128-cbc': 16, 'aes-192-cbc': 24, 'aes-256-cbc': 32}


def header(data_sector=16, version=0):
    h = MAGIC + version.to_bytes(2, 'big') + bytes(96) + data_sector.to_bytes(4, 'big')
    h += bytes(SECTOR - len(h))
    assert len(h) == SECTOR
    return h


def parse_header(block):
    if block[:6] != MAGIC:
        raise SystemExit('lofi.py: no CFLOFI header at byte 8192')
    version = int.from_bytes(block[6:8], 'big')
    if version != 0:
        raise SystemExit('lofi.py: header version %d' % version)
    return int.from_bytes(block[104:108], 'big')


def iv(key, n):
    block = bytes(8) + n.to_bytes(8, 'little')
    return Cipher(algorithms.AES(key), modes.ECB()).encryptor().update(block)


def crypt_sector(key, n, data, encrypt):
    c = Cipher(algorithms.AES(key), modes.CBC(iv(key, n)))
    c = c.encryptor() if encrypt else c.decryptor()
    return c.update(data) + c.finalize()


def get_key(args):
    if args.key_hex:
        key = bytes.fromhex(args.key_hex)
    elif args.key_file:
        with open(args.key_file, 'rb') as f:
            key = f.read()
    elif args.passphrase is not None:
        p = args.passphrase.encode()
        key = hashlib.pbkdf2_hmac('sha1', p, p, 1000, 32)
    else:
        raise SystemExit('lofi.py: give --key-hex, --key-file or --passphrase')
    if len(key) not in (16, 24, 32):
        raise SystemExit('lofi.py: key of %d bytes' % len(key))
    if args.cipher and NAMES[args.cipher.lower()] != len(key) and args.passphrase is None:
        raise SystemExit('lofi.py: %s with a %d-byte key' % (args.cipher, len(key)))
    return key


def create(args, key):
    with open(args.input, 'rb') as f:
        plain = f.read()
    plain += bytes(-len(plain) % SECTOR)
    ds = args.data_sector
    if ds < 16:
        raise SystemExit('lofi.py: data sector below 16')
    out = bytearray(ds * SECTOR)
    first = 0
    if not args.no_header:
        if ds * SECTOR == HEADER_OFFSET:
            out += header(ds)  # device sector 0 is the header's block
            first = 1
        else:
            out[HEADER_OFFSET:HEADER_OFFSET + SECTOR] = header(ds)
    for i in range(len(plain) // SECTOR):
        out += crypt_sector(key, first + i, plain[i * SECTOR:(i + 1) * SECTOR], True)
    if args.image_size:
        if args.image_size < len(out) or args.image_size % SECTOR:
            raise SystemExit('lofi.py: --image-size too small or not whole sectors')
        out += bytes(args.image_size - len(out))
    with open(args.output, 'wb') as f:
        f.write(out)


def decrypt(args, key):
    with open(args.input, 'rb') as f:
        img = f.read()
    ds = args.data_sector
    if ds is None:
        ds = parse_header(img[HEADER_OFFSET:HEADER_OFFSET + SECTOR])
    data = img[ds * SECTOR:]
    data = data[:len(data) - len(data) % SECTOR]
    out = bytearray()
    for n in range(len(data) // SECTOR):
        out += crypt_sector(key, n, data[n * SECTOR:(n + 1) * SECTOR], False)
    if args.output == '-':
        sys.stdout.buffer.write(out)
    else:
        with open(args.output, 'wb') as f:
            f.write(out)


def selftest():
    # The vectors of docs/blockcrypt-lofi.7.md.
    key = bytes(range(32))
    vec = [(0, 'f29000b62a499fd0a9f39a6add2e7780', 'd4e96925c0bfcffb52f8a187ee774aab'),
           (1, '90f10a18df1dcf11647a2a929dd45c78', '78daf2af99803094627289bd8eca7385'),
           (0x0102030405060708, '760f4edcfa60f140e8e8e258cfde8cd2',
            'dfe5fefe0d676b878393da2e49544eec')]
    for n, want_iv, want_ct in vec:
        assert iv(key, n).hex() == want_iv, n
        ct = crypt_sector(key, n, bytes(SECTOR), True)
        assert ct[:16].hex() == want_ct, n
        assert crypt_sector(key, n, ct, False) == bytes(SECTOR)
    assert crypt_sector(key, 1, bytes(SECTOR), True)[-16:].hex() == \
        'c93c572e509b5b57548878bf3dc07788'
    p = b'password1'
    assert hashlib.pbkdf2_hmac('sha1', p, p, 1000, 32).hex() == \
        '4c352f2761a79f684093ada9286b7fae3dae33b80b3973729777567d2e2d7bb0'
    h = header()
    assert len(h) == 512 and h[:8] == b'CFLOFI\0\0' and h[104:108] == b'\0\0\0\x10'
    print('lofi.py selftest: ok')


def main():
    p = argparse.ArgumentParser(description='lofi encrypted image oracle')
    p.add_argument('command', choices=('create', 'decrypt', 'iv', 'selftest'))
    p.add_argument('--key-hex')
    p.add_argument('--key-file')
    p.add_argument('--passphrase')
    p.add_argument('--cipher', choices=sorted(NAMES), type=str.lower)
    p.add_argument('--data-sector', type=int, default=None)
    p.add_argument('--no-header', action='store_true')
    p.add_argument('--image-size', type=int, default=0)
    p.add_argument('input', nargs='?')
    p.add_argument('output', nargs='?')
    args = p.parse_intermixed_args()
    if args.command == 'selftest':
        selftest()
        return
    key = get_key(args)
    if args.command == 'iv':
        print(iv(key, int(args.input, 0)).hex())
        return
    if not args.input or not args.output:
        p.error('INPUT and OUTPUT are needed')
    if args.command == 'create':
        if args.data_sector is None:
            args.data_sector = 16
        create(args, key)
    else:
        decrypt(args, key)


if __name__ == '__main__':
    main()
