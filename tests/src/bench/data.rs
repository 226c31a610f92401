//! Blob contents from a counter-based PRNG: any 8-byte-aligned slice of a
//! blob can be generated on its own, so bodies stream straight from the
//! generator (nothing stored on disk) and chunked uploads need no state.
//!
//! Big blobs are windows of one 32 MiB PRNG pool, starting at an offset
//! that depends on the seed, and sent as slices of it: the load generator
//! then costs one socket copy per byte and no generation, which leaves the
//! CPU to the server (on 2 cores the client competes with it). The server
//! cannot tell: it hashes and stores every byte whatever the content.

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use sha2::{Digest as _, Sha256};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Bytes per body frame.
pub const FRAME: usize = 1 << 20;

/// splitmix64 of `seed + index`: fast, and position-addressable.
#[inline]
fn word(seed: u64, index: u64) -> u64 {
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(index.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A pseudo-random number for operation `n` (offsets, choices).
pub fn word_at(n: u64) -> u64 {
    word(0x5eed, n)
}

/// Fill `buf` with the bytes of blob `seed` starting at byte `offset`
/// (a multiple of 8).
pub fn fill(seed: u64, offset: u64, buf: &mut [u8]) {
    debug_assert_eq!(offset % 8, 0);
    let first = offset / 8;
    let words = buf.len() / 8;
    let mut chunks = buf.chunks_exact_mut(8);
    for (i, c) in (&mut chunks).enumerate() {
        c.copy_from_slice(&word(seed, first + i as u64).to_le_bytes());
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let w = word(seed, first + words as u64).to_le_bytes();
        let len = rest.len();
        rest.copy_from_slice(&w[..len]);
    }
}

const POOL_LEN: u64 = 32 << 20;

fn pool() -> &'static Bytes {
    static POOL: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let mut v = vec![0u8; POOL_LEN as usize];
        fill(0x9001, 0, &mut v);
        Bytes::from(v)
    })
}

/// Up to `max` bytes of big blob `seed` at `offset`, without copying.
pub fn stream_frame(seed: u64, offset: u64, max: usize) -> Bytes {
    // An odd multiplier: distinct seeds start at distinct pool offsets.
    let at = (offset + seed.wrapping_mul(8 * 1237)) % POOL_LEN;
    let n = (max as u64).min(POOL_LEN - at) as usize;
    pool().slice(at as usize..at as usize + n)
}

/// `len` bytes of blob `seed` from `offset`, in memory (small blobs).
pub fn bytes(seed: u64, offset: u64, len: usize) -> Bytes {
    let mut v = vec![0u8; len];
    fill(seed, offset, &mut v);
    Bytes::from(v)
}

/// `sha256:<hex>` of `len` bytes of big blob `seed`.
pub fn digest(seed: u64, len: u64) -> String {
    let mut h = Sha256::new();
    let mut off = 0u64;
    while off < len {
        let frame = stream_frame(seed, off, (len - off).min(FRAME as u64) as usize);
        h.update(&frame);
        off += frame.len() as u64;
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// `sha256:<hex>` of an in-memory value.
pub fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// A request body streaming bytes `[offset, offset+len)` of big blob `seed`.
pub struct PrngBody {
    seed: u64,
    pos: u64,
    end: u64,
}

impl PrngBody {
    pub fn new(seed: u64, offset: u64, len: u64) -> PrngBody {
        PrngBody {
            seed,
            pos: offset,
            end: offset + len,
        }
    }
}

impl Body for PrngBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.pos >= self.end {
            return Poll::Ready(None);
        }
        let n = (self.end - self.pos).min(FRAME as u64) as usize;
        let chunk = stream_frame(self.seed, self.pos, n);
        self.pos += chunk.len() as u64;
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.pos >= self.end
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.end - self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_agree_with_the_whole() {
        let whole = bytes(7, 0, 1000);
        assert_eq!(&bytes(7, 16, 100)[..], &whole[16..116]);
        assert_eq!(&bytes(7, 8, 13)[..], &whole[8..21]);
        assert_ne!(bytes(8, 0, 64), bytes(7, 0, 64));
        let big: Vec<u8> = (0..3)
            .flat_map(|i| stream_frame(7, i * 16, 16).to_vec())
            .collect();
        assert_eq!(&big[..], &stream_frame(7, 0, 48)[..]);
        assert_eq!(digest(7, 48), digest_of(&big));
    }
}
