//! `POST /logout`: ends the session token the request carries, and it alone (the user's other
//! sessions, on other devices, go on). The token's id is kept in `ended_sessions` until the
//! token would have expired anyway; a token from before tokens had ids cannot be told from the
//! user's other sessions, so signing it out ends them all (the session version moves on).

use crate::Ctx;
use crate::db::db_error;
use crate::validate;
use edge_spin::session::Credential;
use edge_spin::{ApiError, ApiResult, Head, Reply};
use spin_sdk::sqlite::Value;

fn int(n: u64) -> Value {
    Value::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

pub fn handle(ctx: &Ctx, head: &Head) -> ApiResult {
    let caller = validate::current_caller(ctx, head)?;
    let Credential::Session { exp, id, .. } = &caller.credential else {
        return Err(ApiError::new(
            403,
            "forbidden",
            "POST /logout ends a session from POST /login; an API token is revoked with DELETE /users/me/tokens/{id}",
        ));
    };
    match id {
        Some(id) => {
            // Kept a minute past expiry: verification allows edge clocks 30 s of skew.
            ctx.db
                .execute("DELETE FROM ended_sessions WHERE expires_at < ?1", &[int(ctx.now.saturating_sub(60))])
                .map_err(db_error)?;
            ctx.db
                .execute(
                    "INSERT INTO ended_sessions (jti, expires_at) VALUES (?1, ?2) ON CONFLICT (jti) DO NOTHING",
                    &[Value::Text(id.clone()), int(*exp)],
                )
                .map_err(db_error)?;
        }
        None => {
            ctx.db
                .execute(
                    "INSERT INTO user_sessions (email, version) VALUES (?1, 1) \
                     ON CONFLICT (email) DO UPDATE SET version = version + 1",
                    &[Value::Text(caller.email.clone())],
                )
                .map_err(db_error)?;
        }
    }
    Ok(Reply::empty(204).for_log(Some(&caller.email), None))
}
