//! Shared helpers for integration tests.

#![allow(dead_code)]

pub mod redis_server;
