//! The server's HTTP plumbing, below any route: accepting and serving
//! connections (HTTP/1.1, h2c, TLS), their timeouts, bodies drained after a
//! refusal, `sendfile` for blobs, the client behind trusted proxies, the
//! one error type mapped to OCI error JSON, and paging parameters.

pub mod conn;
pub mod ecr_error;
pub mod error;
pub mod forwarded;
pub mod linger;
pub mod paging;
pub mod sendfile;
pub mod tls;
pub mod watch;
