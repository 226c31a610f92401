//! What layers contain: each layer blob read into its file list (`index`),
//! kept per layer digest so images that share a layer share the work
//! (`indexer`), and the lists stacked into an image's file system, with
//! what it wasted, listings and diffs (`tree`). Nothing here holds a
//! layer's contents: only names, attributes and digests.

mod entry;
mod index;
mod indexer;
mod secrets;
mod tree;

pub use entry::{is_within, Entry, Kind, LayerIndex};
pub use index::{index_layer, normalise, IndexError, Limits, Progress};
pub use indexer::{Indexed, Indexer, Pending};
pub use secrets::looks_secret;
pub use tree::{diff, efficiency, list, stack, Change, Node, Row, Secret, Stacked, Waste, Wasted};

#[cfg(test)]
mod tests;
