//! Directories with secrets and users' data (the data directory, the module cache) are for
//! their owner only, also when an older release made them readable by others.

use anyhow::{Context, Result};

/// Makes `dir` private to its owner (0700).
pub fn restrict_to_owner(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).with_context(|| format!("restricting {}", dir.display()))
}
