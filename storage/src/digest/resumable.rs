//! SHA-256 whose running state can be saved and resumed elsewhere: an
//! upload started on one registry node continues on another, and the hash
//! of its bytes so far travels in the database (a few dozen bytes) instead
//! of being recomputed from storage. The compression is `sha2`'s own (with
//! its SHA-NI code path); only the padding of FIPS 180-4 §5.1.1 is here.

use super::{Algorithm, Digest};
use sha2::digest::generic_array::GenericArray;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumableSha256 {
    state: [u32; 8],
    /// Bytes hashed so far (compressed or buffered).
    len: u64,
    /// The partial block not yet compressed.
    buf: [u8; 64],
    buf_len: usize,
}

const INIT: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

type Block = GenericArray<u8, sha2::digest::consts::U64>;

/// `data` (a whole number of 64-byte blocks) as blocks, without a copy.
fn as_blocks(data: &[u8]) -> &[Block] {
    debug_assert_eq!(data.len() % 64, 0);
    // SAFETY: `GenericArray<u8, U64>` is a `[u8; 64]` (repr(transparent),
    // alignment 1), and `data` holds exactly `len / 64` of them.
    unsafe { std::slice::from_raw_parts(data.as_ptr().cast::<Block>(), data.len() / 64) }
}

impl Default for ResumableSha256 {
    fn default() -> Self {
        ResumableSha256 {
            state: INIT,
            len: 0,
            buf: [0; 64],
            buf_len: 0,
        }
    }
}

impl ResumableSha256 {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.buf_len > 0 {
            let n = (64 - self.buf_len).min(data.len());
            self.buf[self.buf_len..self.buf_len + n].copy_from_slice(&data[..n]);
            self.buf_len += n;
            data = &data[n..];
            if self.buf_len < 64 {
                return;
            }
            sha2::compress256(&mut self.state, as_blocks(&self.buf));
            self.buf_len = 0;
        }
        let whole = data.len() / 64 * 64;
        if whole > 0 {
            sha2::compress256(&mut self.state, as_blocks(&data[..whole]));
        }
        let rest = &data[whole..];
        self.buf[..rest.len()].copy_from_slice(rest);
        self.buf_len = rest.len();
    }

    pub fn finish(mut self) -> Digest {
        let bits = self.len.wrapping_mul(8);
        let mut tail = [0u8; 128];
        tail[..self.buf_len].copy_from_slice(&self.buf[..self.buf_len]);
        tail[self.buf_len] = 0x80;
        let total = if self.buf_len < 56 { 64 } else { 128 };
        tail[total - 8..total].copy_from_slice(&bits.to_be_bytes());
        sha2::compress256(&mut self.state, as_blocks(&tail[..total]));
        let mut out = [0u8; 32];
        for (i, w) in self.state.iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
        }
        Digest::from_parts(Algorithm::Sha256, hex::encode(out))
    }

    /// The state as bytes: 8 words, the length, the partial block.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(32 + 8 + 1 + self.buf_len);
        for w in self.state {
            v.extend_from_slice(&w.to_be_bytes());
        }
        v.extend_from_slice(&self.len.to_be_bytes());
        v.push(self.buf_len as u8);
        v.extend_from_slice(&self.buf[..self.buf_len]);
        v
    }

    pub fn from_bytes(b: &[u8]) -> Option<ResumableSha256> {
        if b.len() < 41 {
            return None;
        }
        let mut state = [0u32; 8];
        for (i, w) in state.iter_mut().enumerate() {
            *w = u32::from_be_bytes(b[i * 4..i * 4 + 4].try_into().ok()?);
        }
        let len = u64::from_be_bytes(b[32..40].try_into().ok()?);
        let buf_len = b[40] as usize;
        if buf_len >= 64 || b.len() != 41 + buf_len || len % 64 != buf_len as u64 % 64 {
            return None;
        }
        let mut buf = [0u8; 64];
        buf[..buf_len].copy_from_slice(&b[41..]);
        Some(ResumableSha256 {
            state,
            len,
            buf,
            buf_len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_sha256_for_any_split_and_survives_a_round_trip() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 251) as u8).collect();
        for len in [0usize, 1, 55, 56, 63, 64, 65, 119, 128, 1000, 5000] {
            let want = Digest::sha256_of(&data[..len]);
            for split in [0usize, 1, 7, 63, 64, 65, 500] {
                let split = split.min(len);
                let mut h = ResumableSha256::new();
                h.update(&data[..split]);
                let h = ResumableSha256::from_bytes(&h.to_bytes()).expect("round trip");
                let mut h = h;
                for piece in data[split..len].chunks(17) {
                    h.update(piece);
                }
                assert_eq!(h.len(), len as u64);
                assert_eq!(h.finish(), want, "len {len} split {split}");
            }
        }
    }

    #[test]
    fn corrupt_states_are_refused() {
        let mut h = ResumableSha256::new();
        h.update(b"hello");
        let b = h.to_bytes();
        assert!(ResumableSha256::from_bytes(&b[..20]).is_none());
        let mut bad = b.clone();
        bad[40] = 70;
        assert!(ResumableSha256::from_bytes(&bad).is_none());
    }
}
