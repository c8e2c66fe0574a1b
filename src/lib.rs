//! kycd: an on-premises eKYC appliance in one binary.
//!
//! The library holds everything; `main.rs` only parses the command line. See ARCHITECTURE.md for
//! the map of the modules and the path of a request.

pub mod admission;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod cli;
pub mod config;
pub mod console;
pub mod document;
pub mod error;
pub mod faces;
pub mod http;
pub mod io_runtime;
pub mod kya;
pub mod media;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod tenancy;
pub mod vision;
pub mod workflow;
