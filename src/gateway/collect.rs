//! The policy core's output as a list of routes: the gateway handles one exchange at a time
//! and sends each message itself, so it collects what the core writes.

use std::time::Duration;

use serde_json::Value;

use crate::proxy::{Closed, Failure, Inbound, RequestId, Route, Routes, Session};

pub fn client_message(core: &Session, message: Inbound<'_>) -> Vec<Route> {
    let mut routes = Routes::default();
    core.client_message(message, &mut routes);
    routes.0
}

pub fn server_message(core: &Session, message: Inbound<'_>) -> Vec<Route> {
    let mut routes = Routes::default();
    core.server_message(message, &mut routes);
    routes.0
}

pub fn close(core: &Session, why: Closed) -> Vec<Route> {
    let mut routes = Routes::default();
    core.close(why, &mut routes);
    routes.0
}

pub fn expire(core: &Session, timeout: Duration) -> Vec<Route> {
    let mut routes = Routes::default();
    core.expire(timeout, &mut routes);
    routes.0
}

pub fn request_failed(core: &Session, id: &Value, why: Failure) -> Vec<Route> {
    let mut routes = Routes::default();
    core.request_failed(&RequestId::from_value(id), why, &mut routes);
    routes.0
}
