//! One file per resource, each with a `configure` that registers its routes.

pub mod admin;
pub mod audit;
pub mod billing;
pub mod compat;
pub mod document;
pub mod face;
pub mod faces;
pub mod liveness;
pub mod media;
pub mod ops;
pub mod ping;
pub mod webhooks;
pub mod workflow;
