//! What tests read of `/proc`: the fields of a process's (or thread's) `stat` file, and the
//! processes a process started.

use std::path::Path;

/// The fields of a `stat` file (`/proc/PID/stat`, `/proc/PID/task/TID/stat`) after the
/// parenthesised command name, which may itself hold spaces and parentheses: index 0 is the
/// state (field 3 in proc(5)), 1 the parent (4), 11 and 12 user and system ticks (14, 15),
/// 16 the nice value (19). `None` when the file cannot be read (the process ended).
pub fn stat_fields(path: impl AsRef<Path>) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(path).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// The processes whose parent is `pid` now.
pub fn children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let parent = stat_fields(format!("/proc/{child}/stat")).and_then(|f| f.get(1)?.parse::<u32>().ok());
        if parent == Some(pid) {
            found.push(child);
        }
    }
    found
}
