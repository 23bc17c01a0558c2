//! Shared helpers for integration tests.

#![allow(dead_code)]

pub mod go_server;
pub mod otlp;
pub mod proxy_process;
pub mod raw_session;
pub mod redis_server;
