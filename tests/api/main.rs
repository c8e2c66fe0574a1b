//! API tests: one binary, a module per feature, each test against a real server on 127.0.0.1.

#[path = "../common/mod.rs"]
mod common;

mod admin;
mod admin_console;
mod audit;
mod backup;
mod billing;
mod cli;
mod cluster;
mod compat;
mod console;
mod document;
mod errors;
mod face;
mod faces;
mod faults;
mod hardening;
mod integration_guide;
mod licence;
mod limits;
mod liveness;
mod media;
mod observability;
mod ocr_accuracy;
mod openapi;
mod permissions;
mod real_documents;
mod scale_out;
mod signing;
mod tls;
mod workflow;
