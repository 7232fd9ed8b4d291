//! The kernel's side of the media sandbox: what the FFmpeg process takes away from itself
//! before it reads a byte of an upload.
//!
//! In this order, so that each step can still make the system calls the next needs:
//! 1. it dies with the thread that started it (`PR_SET_PDEATHSIG`), cannot be inspected
//!    (`PR_SET_DUMPABLE` off) and gains no privileges (`PR_SET_NO_NEW_PRIVS`);
//! 2. resource limits: a data (heap) size cap, a CPU-time cap, no file written, no core dump;
//! 3. every file descriptor but the worker's socket and the null standard output and error is
//!    closed;
//! 4. Landlock, with every file-system and network right of the kernel's ABI handled and none
//!    granted, and every scope: it can open no file (not even `/dev/null`), bind or connect no
//!    TCP port, reach no abstract Unix socket and signal no process outside itself (checked:
//!    an open and a connect must fail with Landlock's `EACCES`);
//! 5. a seccomp filter that allows only what decoding needs (reading and writing the descriptors
//!    it has, memory, futexes, clocks, exiting) and answers every other system call with
//!    `EPERM`: no `socket`, `open`, `execve`, `clone`, `ptrace`, executable mappings, or a path
//!    given to `stat` (checked: creating a socket must fail with `EPERM`).
//!
//! What the kernel does not support is reported, not fatal: the worker logs a loud warning
//! and FFmpeg still runs in a process of its own under the limits.

use std::collections::BTreeMap;

use landlock::{ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetStatus, Scope};
use seccompiler::{BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule};

use super::wire::Confinement;

/// The newest Landlock ABI this code asks for; an older kernel enforces what it knows.
const LANDLOCK_ABI: ABI = ABI::V7;

/// Limits of one media process.
#[derive(Debug, Clone, Copy)]
pub struct ProcessLimits {
    /// Heap and other private writable memory (`RLIMIT_DATA`).
    pub memory_bytes: u64,
    /// CPU seconds (`RLIMIT_CPU`); the process is killed past them.
    pub cpu_secs: u64,
}

/// Confines the calling process; see the module docs. `parent` is the worker's process id:
/// a child whose parent is already gone exits at once.
pub fn confine(limits: ProcessLimits, parent: Option<u32>) -> Confinement {
    // SAFETY: prctl with integer arguments, on this process only.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        libc::prctl(libc::PR_SET_DUMPABLE, 0);
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    }
    if parent.is_some_and(|pid| pid != std::os::unix::process::parent_id()) {
        std::process::exit(0);
    }
    let limits = set_limits(limits);
    close_other_descriptors();
    let (landlock, landlock_full) = restrict_with_landlock();
    // Each layer is checked on its own: Landlock answers EACCES, the seccomp filter EPERM.
    let file_refused = open_file_error() == Some(libc::EACCES);
    let tcp_refused = connect_error() == Some(libc::EACCES);
    let seccomp = install_seccomp_filter().is_ok();
    let socket_refused = socket_error() == Some(libc::EPERM);
    Confinement { landlock, landlock_full, seccomp, limits, file_refused, tcp_refused, socket_refused }
}

fn set_limits(limits: ProcessLimits) -> bool {
    let set = |resource, value: u64| {
        let limit = libc::rlimit { rlim_cur: value, rlim_max: value };
        // SAFETY: setrlimit with a valid struct; lowering limits needs no privilege.
        unsafe { libc::setrlimit(resource, &limit) == 0 }
    };
    // The CPU limit's hard value is one second above the soft one: SIGXCPU first (fatal, no
    // handler is installed), SIGKILL after.
    let cpu = {
        let limit = libc::rlimit { rlim_cur: limits.cpu_secs, rlim_max: limits.cpu_secs.saturating_add(1) };
        // SAFETY: as above.
        unsafe { libc::setrlimit(libc::RLIMIT_CPU, &limit) == 0 }
    };
    [
        set(libc::RLIMIT_DATA, limits.memory_bytes),
        set(libc::RLIMIT_FSIZE, 0),
        set(libc::RLIMIT_CORE, 0),
        set(libc::RLIMIT_NOFILE, 4),
        cpu,
    ]
    .iter()
    .all(|ok| *ok)
}

fn close_other_descriptors() {
    // SAFETY: closes descriptors this process does not use (everything from 3 on; the socket
    // is 0, the null standard output and error 1 and 2).
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
}

fn restrict_with_landlock() -> (String, bool) {
    let ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(LANDLOCK_ABI))
        .and_then(|r| r.handle_access(AccessNet::from_all(LANDLOCK_ABI)))
        .and_then(|r| r.scope(Scope::from_all(LANDLOCK_ABI)))
        .and_then(|r| r.create());
    let status = match ruleset.and_then(|r| r.restrict_self()) {
        Ok(status) => status,
        Err(e) => return (format!("not enforced: {e}"), false),
    };
    let abi = kernel_abi();
    match status.ruleset {
        RulesetStatus::FullyEnforced => (format!("fully enforced (ABI {abi})"), true),
        RulesetStatus::PartiallyEnforced => (format!("partially enforced (the kernel's ABI {abi} is older than {})", LANDLOCK_ABI as i32), abi >= 4),
        RulesetStatus::NotEnforced => ("not enforced: the kernel has no Landlock".into(), false),
    }
}

/// The kernel's Landlock ABI version (0 without Landlock).
fn kernel_abi() -> i64 {
    // SAFETY: the documented version query: NULL attributes, size 0, the VERSION flag.
    let version = unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, std::ptr::null::<u8>(), 0usize, 1u32) };
    version.max(0)
}

/// The system calls the confined process may make (see the module docs).
fn allowed_syscalls() -> Vec<i64> {
    vec![
        // I/O on the descriptors it has: the worker's socket, the null standard output/error.
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_readv,
        libc::SYS_writev,
        libc::SYS_recvfrom,
        libc::SYS_sendto,
        libc::SYS_recvmsg,
        libc::SYS_sendmsg,
        libc::SYS_close,
        libc::SYS_fstat,
        libc::SYS_lseek,
        // Memory (mmap and mprotect never executable: see the rules below).
        libc::SYS_brk,
        libc::SYS_munmap,
        libc::SYS_mremap,
        libc::SYS_madvise,
        // Synchronisation, time, randomness.
        libc::SYS_futex,
        libc::SYS_clock_gettime,
        libc::SYS_clock_getres,
        libc::SYS_gettimeofday,
        libc::SYS_clock_nanosleep,
        libc::SYS_nanosleep,
        libc::SYS_sched_yield,
        libc::SYS_sched_getaffinity,
        libc::SYS_getrandom,
        // Signals to itself (abort) and leaving.
        libc::SYS_rt_sigreturn,
        libc::SYS_rt_sigprocmask,
        libc::SYS_sigaltstack,
        libc::SYS_getpid,
        libc::SYS_gettid,
        libc::SYS_exit,
        libc::SYS_exit_group,
    ]
}

/// The seccomp filter as a BPF program for this machine's architecture.
fn seccomp_program() -> Result<BpfProgram, String> {
    let arch = std::env::consts::ARCH.try_into().map_err(|e| format!("{e}"))?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = allowed_syscalls().into_iter().map(|call| (call, Vec::new())).collect();
    // Memory may be mapped or protected as anything but executable: the process never loads
    // code after it is confined, so an exploit cannot make its data executable either.
    let not_executable = || -> Result<Vec<SeccompRule>, String> {
        let condition = SeccompCondition::new(2, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(libc::PROT_EXEC as u64), 0)
            .map_err(|e| format!("{e}"))?;
        Ok(vec![SeccompRule::new(vec![condition]).map_err(|e| format!("{e}"))?])
    };
    rules.insert(libc::SYS_mmap, not_executable()?);
    rules.insert(libc::SYS_mprotect, not_executable()?);
    // Signals only to its own threads (`abort`), whatever the kernel's Landlock can scope.
    let own = SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, u64::from(std::process::id()))
        .map_err(|e| format!("{e}"))?;
    rules.insert(libc::SYS_tgkill, vec![SeccompRule::new(vec![own]).map_err(|e| format!("{e}"))?]);
    let filter = SeccompFilter::new(rules, SeccompAction::Errno(libc::EPERM as u32), SeccompAction::Allow, arch)
        .map_err(|e| format!("{e}"))?;
    filter.try_into().map_err(|e: seccompiler::BackendError| format!("{e}"))
}

fn install_seccomp_filter() -> Result<(), String> {
    let program = seccomp_program()?;
    seccompiler::apply_filter(&program).map_err(|e| format!("{e}"))
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The error of opening a file for reading (`None`: it opened, and was closed again).
fn open_file_error() -> Option<i32> {
    // SAFETY: a plain open of a NUL-terminated path; a descriptor that opens is closed.
    unsafe {
        let fd = libc::open(c"/etc/hostname".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd >= 0 {
            libc::close(fd);
            return None;
        }
    }
    Some(errno())
}

/// The error of connecting a TCP socket to the discard port of the loopback address
/// (`ECONNREFUSED` where nothing listens, when the kernel allows the attempt at all).
fn connect_error() -> Option<i32> {
    // SAFETY: a socket, a connect with a valid sockaddr_in of its size, and closing it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Some(errno());
        }
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 9u16.to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be() },
            sin_zero: [0; 8],
        };
        let ret = libc::connect(fd, (&raw const addr).cast(), std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t);
        let error = if ret == 0 { None } else { Some(errno()) };
        libc::close(fd);
        error
    }
}

/// The error of creating a socket (`None`: one was made, and closed again).
fn socket_error() -> Option<i32> {
    // SAFETY: a plain socket call; a descriptor that opens is closed.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd >= 0 {
            libc::close(fd);
            return None;
        }
    }
    Some(errno())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_compiles_for_this_machine_and_keeps_dangerous_calls_out() {
        let program = seccomp_program().unwrap();
        assert!(!program.is_empty());
        let allowed = allowed_syscalls();
        for forbidden in [
            libc::SYS_socket,
            libc::SYS_connect,
            libc::SYS_bind,
            libc::SYS_open,
            libc::SYS_openat,
            libc::SYS_openat2,
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_clone,
            libc::SYS_clone3,
            libc::SYS_fork,
            libc::SYS_vfork,
            libc::SYS_ptrace,
            libc::SYS_newfstatat,
            libc::SYS_statx,
            libc::SYS_kill,
            libc::SYS_prctl,
            libc::SYS_ioctl,
        ] {
            assert!(!allowed.contains(&forbidden), "system call {forbidden} must not be allowed");
        }
    }
}
