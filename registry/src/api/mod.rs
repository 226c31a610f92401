//! The handlers of the machine-facing surfaces, each already authorized by
//! the gate: the distribution API (`v2`), the registry's own JSON API for
//! tools and the CLI (`admin`, `/api/v1`), and the token server (`token`).

pub mod admin;
pub mod token;
pub mod v2;
