//! Who is calling: a session token or API token that still holds (`edge_spin::session`), and
//! what that caller may see of other users' jobs.

use crate::Ctx;
use edge_spin::{ApiError, Head};

pub use edge_spin::session::Caller;

/// Where a route accepts the token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TokenFrom {
    /// `Authorization: Bearer` only.
    Header,
    /// `Authorization: Bearer`, or else `?access_token=` (for `EventSource`, which cannot send
    /// headers). Only for routes whose URL is not handed around (the event stream).
    HeaderOrQuery,
}

/// Whether `caller` may still see a job of `owner`, by the database as it is now: a caller
/// whose credential ended (deactivated, signed out, password changed, token revoked or
/// expired) sees nothing, a demoted administrator only their own jobs. A long-lived answer
/// (the event stream) asks again while it runs.
pub fn still_sees(caller: &Caller, db: &spin_sdk::sqlite::Connection, owner: &str) -> Result<bool, ApiError> {
    Ok(match caller.current_admin(db, edge_spin::unix_now())? {
        None => false,
        Some(admin) => owner == caller.email || admin,
    })
}

pub fn authenticate(ctx: &Ctx, head: &Head, from: TokenFrom) -> Result<Caller, ApiError> {
    let query_token = match from {
        TokenFrom::HeaderOrQuery => head.query_param("access_token"),
        TokenFrom::Header => None,
    };
    edge_spin::session::authenticate(&ctx.db, &ctx.config.tokens, head, query_token.as_deref(), ctx.now)
}
