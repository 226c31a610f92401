//! `/api/v1`: reads (`inspect`: repositories, tags, images, blobs,
//! settings, quota usage), writes (`write`: rollbacks, immutability,
//! lifecycle policies), collections (`gc`) and lifecycle policies
//! (`lifecycle`).

pub mod gc;
pub mod inspect;
pub mod lifecycle;
pub mod write;
