//! Shared helpers for integration tests.

#![allow(dead_code)]

pub mod proxy_process;
pub mod redis_server;
