//! The handlers of the machine-facing surfaces, each already authorized by
//! the gate: the distribution API (`v2`), the registry's own JSON API for
//! tools and the CLI (`admin`, `/api/v1`), the token server (`token`), and
//! Amazon ECR's API (`ecr`, SigV4-signed JSON on `[ecr] path`).

pub mod admin;
pub mod ecr;
pub mod token;
pub mod v2;
