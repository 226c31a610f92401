//! `/api/v1`: reads (`inspect`: repositories, tags, images, blobs,
//! settings, quota usage; `contents`: what layers and images contain),
//! writes (`write`: rollbacks, immutability,
//! lifecycle policies), collections (`gc`) and lifecycle policies
//! (`lifecycle`).

pub mod contents;
pub mod gc;
pub mod inspect;
pub mod lifecycle;
pub mod write;
