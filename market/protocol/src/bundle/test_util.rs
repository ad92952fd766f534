//! Helpers for building hostile archives in tests.

use std::io::Write;

use flate2::{Compression, write::GzEncoder};
use tar::EntryType;

use super::append_entry;

pub(super) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// An uncompressed tar of raw entries, with names written as-is (`..`, `/` and all).
pub(super) fn raw_tar(entries: &[(&str, EntryType, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, kind, data) in entries {
        append_entry(&mut tar, name.as_bytes(), *kind, data).unwrap();
    }
    tar.into_inner().unwrap()
}

/// Writes bits least-significant first, as deflate does.
#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    len: u32,
}

impl BitWriter {
    fn bits(&mut self, value: u64, count: u32) {
        self.acc |= value << self.len;
        self.len += count;
        while self.len >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.len -= 8;
        }
    }

    /// A Huffman code, which deflate stores most-significant bit first.
    fn code(&mut self, code: u32, count: u32) {
        self.bits(u64::from(code.reverse_bits() >> (32 - count)), count);
    }

    /// A literal byte in the fixed Huffman code.
    fn literal(&mut self, byte: u8) {
        match byte {
            0..=143 => self.code(0x30 + u32::from(byte), 8),
            _ => self.code(0x190 + u32::from(byte - 144), 9),
        }
    }
}

/// A gzip stream of `prefix` then `zeros` zero bytes, written straight as one fixed-Huffman
/// deflate block (a literal zero, then length-258 distance-1 copies): a 2 GiB bomb is ~13 MB
/// and takes milliseconds to make. The CRC is left zero: a reader that stops at its limit
/// never reaches it.
pub(super) fn gzip_bomb(prefix: &[u8], zeros: u64) -> Vec<u8> {
    let mut w = BitWriter::default();
    w.out
        .extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    w.bits(1, 1); // BFINAL
    w.bits(1, 2); // BTYPE = fixed Huffman
    for &byte in prefix {
        w.literal(byte);
    }
    w.literal(0);
    let mut left = zeros - 1;
    while left >= 258 {
        w.code(0b1100_0101, 8); // length code 285 = 258 bytes
        w.code(0, 5); // distance code 0 = 1 byte back
        left -= 258;
    }
    for _ in 0..left {
        w.literal(0);
    }
    w.code(0, 7); // end of block (256)
    w.bits(0, 7); // flush the last partial byte
    w.out.extend_from_slice(&[0; 4]);
    w.out
        .extend_from_slice(&((prefix.len() as u64 + zeros) as u32).to_le_bytes());
    w.out
}
