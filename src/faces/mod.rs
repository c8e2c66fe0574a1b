//! Faces kept for 1:N search: the embedded vector index (`index`).

pub mod index;
