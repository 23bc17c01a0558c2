//! Requests of the stateless revision (2026-07-28): no `initialize`, no session id. Each
//! request stands alone, with a view of the policy of its own; their counters of scope
//! `session` are shared by every stateless client of the same identity (there is no
//! session to key them by). A stdio server is a small pool of children the gateway
//! initializes itself; a server reached by URL gets each request as it came, without a
//! session (a server of the revisions with sessions refuses it, and its error is relayed).

use std::sync::Arc;

use super::Gateway;
use hyper::StatusCode;
use serde_json::Value;

use super::errors::{Response, rpc_error};
use super::exchange;
use super::link::Link;
use super::sessions::Session;
use super::{Upstream, child, streamable};
use crate::proxy::replies::code;
use crate::upstream::http::HttpUpstream;

pub(super) async fn post(gw: &Arc<Gateway>, body: &[u8], version: Option<&str>) -> Response {
    if body.trim_ascii_start().starts_with(b"[") {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            &Value::Null,
            code::INVALID_REQUEST,
            "Bad Request: protocol revision 2026-07-28 has no batches; send each message in a POST of its own",
        );
    }
    let identity = gw.backend.identity.as_deref().unwrap_or("anonymous");
    let core = Arc::new(gw.policy_session(format!("stateless:{identity}"), true));
    match &gw.upstream {
        Upstream::Command { server, env } => {
            let pool = gw.stateless_pool(server, env);
            child::respond(pool.post(body, core).await, ())
        }
        Upstream::Url {
            client,
            url,
            headers,
        } => {
            let link = Link::Http(Box::new(HttpUpstream::new(
                client.clone(),
                url.clone(),
                headers.clone(),
                gw.backend.max_message_bytes,
            )));
            let session = Arc::new(Session::new(
                String::new(),
                core,
                link,
                None,
                gw.backend.telemetry.clone(),
            ));
            let busy = session.enter();
            let outcome = exchange::client_message(gw, &session, body, version).await;
            streamable::respond(gw, &session, outcome, false, busy)
        }
    }
}
