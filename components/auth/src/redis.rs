//! The job queue's Redis as the auth component reaches it (Spin's Redis interface): the storage
//! accounting `GET /users` and `GET /users/me` show, the deletion of a user's jobs and the
//! webhook test requests. Unreachable is a 503 that says so.

use edge_spin::ApiError;
use spin_sdk::redis::{Connection, RedisParameter, RedisResult};

pub struct Redis {
    connection: Connection,
}

fn unavailable(e: spin_sdk::redis::Error) -> ApiError {
    eprintln!("job queue Redis: {e}");
    ApiError::new(503, "job queue unavailable", "the job queue is unreachable; try again later").header("retry-after", "5")
}

pub fn text(s: &str) -> RedisParameter {
    RedisParameter::Binary(s.as_bytes().to_vec())
}

pub fn int(n: u64) -> RedisParameter {
    RedisParameter::Int64(i64::try_from(n).unwrap_or(i64::MAX))
}

impl Redis {
    pub fn open(redis_host: &str) -> Result<Redis, ApiError> {
        Connection::open(&format!("redis://{redis_host}")).map(|connection| Redis { connection }).map_err(unavailable)
    }

    pub fn command(&self, command: &str, args: Vec<RedisParameter>) -> Result<Vec<RedisResult>, ApiError> {
        self.connection.execute(command, &args).map_err(unavailable)
    }
}
