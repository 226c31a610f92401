//! Storage for the registry: the content-addressed blob store, the metadata
//! database, and the domain operations over both. Nothing here speaks HTTP.

pub mod accounts;
pub mod blobstore;
mod cache;
pub mod check;
pub mod contents;
pub mod digest;
pub mod error;
pub mod inspect;
pub mod layers;
pub mod lifecycle;
pub mod manifest;
pub mod metadata;
pub mod migrate;
pub mod names;
pub mod service;

pub use blobstore::S3Config;
pub use contents::{ImageDiff, ImageFiles, ImageLayer, ImageRef, ImageWaste, Indexing, LayerFiles};
pub use digest::{Algorithm, Digest};
pub use error::{Error, ErrorCode, Result};
pub use service::{
    BlobInfo, ChunkSpec, Clock, Expired, GcOptions, GcReport, GcTotals, MetaBackend,
    NamespaceUsage, Policy, PushedManifest, Quota, Registry, RepoRefusal, Rollback, StorageBackend,
};
