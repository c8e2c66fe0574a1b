//! The eKYC workflow: a tenant's pipeline configuration ([`config`]) and the score, decision and
//! reasons drawn from the steps' results ([`score`]). Plain Rust: the HTTP layer and the job
//! runner call into it; nothing here touches storage or models.

pub mod config;
pub mod egress;
pub mod endpoints;
pub mod jobs;
pub mod pipeline;
pub mod review;
pub mod score;
pub mod tenant_config;
pub mod webhooks;
