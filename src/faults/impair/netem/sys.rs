//! Thin libc wrappers for the daemon: namespaces, pidfd, signalfd, ppoll.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Moves this (single-threaded) process into the network namespace of `pid`.
pub fn enter_netns_of(pid: i32) -> io::Result<()> {
    let f = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    cvt(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) })?;
    Ok(())
}

/// A pidfd for `pid`: readable once the process has exited.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// Whether `pid` still exists (for kernels without pidfd).
pub fn process_alive(pid: i32) -> bool {
    unsafe { libc::kill(pid, 0) == 0 || *libc::__errno_location() == libc::EPERM }
}

/// Asks the kernel for timer wake-ups precise to `ns` (default slack is 50 µs).
pub fn set_timer_slack_ns(ns: u64) -> io::Result<()> {
    cvt(unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns as libc::c_ulong, 0, 0, 0) })?;
    Ok(())
}

/// Switches this process to SCHED_FIFO at `prio` (1..=99), so that other
/// processes' CPU use does not delay the verdicts.
pub fn set_realtime(prio: i32) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: prio,
    };
    cvt(unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) })?;
    Ok(())
}

/// Signals blocked for normal delivery and read from a descriptor instead.
pub struct SignalFd {
    fd: OwnedFd,
}

impl SignalFd {
    /// Blocks `signals` for this process and opens a non-blocking signalfd for them.
    pub fn new(signals: &[libc::c_int]) -> io::Result<SignalFd> {
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for &s in signals {
                libc::sigaddset(&mut set, s);
            }
            cvt(libc::sigprocmask(
                libc::SIG_BLOCK,
                &set,
                std::ptr::null_mut(),
            ))?;
            let fd = cvt(libc::signalfd(
                -1,
                &set,
                libc::SFD_NONBLOCK | libc::SFD_CLOEXEC,
            ))?;
            Ok(SignalFd {
                fd: OwnedFd::from_raw_fd(fd),
            })
        }
    }

    /// The descriptor, for poll.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The next pending signal, if any.
    pub fn read(&self) -> Option<libc::c_int> {
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        let n = unsafe { libc::read(self.fd(), &mut info as *mut _ as *mut libc::c_void, size) };
        (n as usize == size).then_some(info.ssi_signo as libc::c_int)
    }
}

/// `ppoll` with a nanosecond timeout (`None`: wait forever). EINTR counts as a timeout.
pub fn ppoll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let tsp = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    let r = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            tsp,
            std::ptr::null(),
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(0)
        } else {
            Err(e)
        };
    }
    Ok(r as usize)
}

/// Writes `pid` to `path` via a temporary file and rename.
pub fn write_pid_file(path: &std::path::Path, pid: u32) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, format!("{pid}\n"))?;
    std::fs::rename(&tmp, path)
}

/// Removes `path` if it still names `pid` (another daemon may have replaced it).
pub fn remove_pid_file(path: &std::path::Path, pid: u32) {
    if std::fs::read_to_string(path).is_ok_and(|s| s.trim() == pid.to_string()) {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_file_round_trip_and_guarded_removal() {
        let p = std::env::temp_dir().join(format!("netem-pid-{}", std::process::id()));
        write_pid_file(&p, 1234).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "1234\n");
        remove_pid_file(&p, 999);
        assert!(p.exists(), "not ours: kept");
        remove_pid_file(&p, 1234);
        assert!(!p.exists());
    }

    #[test]
    fn ppoll_times_out_precisely() {
        set_timer_slack_ns(1).unwrap();
        let t = std::time::Instant::now();
        assert_eq!(
            ppoll(&mut [], Some(Duration::from_micros(2500))).unwrap(),
            0
        );
        let e = t.elapsed();
        // generous upper bound: a loaded VM can be descheduled for tens of ms
        assert!(
            e >= Duration::from_micros(2500) && e < Duration::from_millis(500),
            "{e:?}"
        );
    }

    #[test]
    fn self_is_alive_and_pidfd_opens() {
        let me = std::process::id() as i32;
        assert!(process_alive(me));
        assert!(pidfd_open(me).is_ok());
    }
}
