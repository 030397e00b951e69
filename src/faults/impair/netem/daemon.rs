//! The `testbed-netem` daemon: one process per impaired network namespace
//! (command line in [`super::cli`]).
//!
//! It enters the network namespace of `--netns-pid`, binds the NFQUEUE (copy
//! 64 bytes, FAIL_OPEN, GSO), and gives every queued packet a fate from the
//! rule table: DROP at once, ACCEPT at once, or ACCEPT at arrival + delay. Held
//! packets wait in a binary heap of due times; the loop sleeps in `ppoll` with
//! a nanosecond timeout (1 ns timer slack, at most `--max-sleep-us` at a time,
//! SCHED_FIFO) so verdicts leave on time even on a busy machine. SIGHUP re-reads
//! the rules (a file that does not parse is ignored, the old table stays);
//! SIGUSR1 logs counters; SIGTERM/SIGINT or the exit of the target process end
//! it, after every held packet has been ACCEPTed (closing the socket with
//! packets still queued would make the kernel DROP them). Single-threaded.

use super::cli::{Args, USAGE};
use super::nfqueue::{self, Config, Message, Queue, Verdict};
use super::rng::SplitMix64;
use super::rules::{self, DropReason, Fate, RuleTable};
use super::sys;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Counters, logged on SIGUSR1, reload and exit.
#[derive(Debug, Default)]
pub struct Stats {
    pub received: u64,
    pub passed_now: u64,
    pub delayed: u64,
    pub dropped_loss: u64,
    pub dropped_flap: u64,
    pub not_ip: u64,
    pub max_held: usize,
    pub enobufs: u64,
    pub kernel_errors: u64,
    /// Delayed packets released < 100 µs, < 1 ms, < 5 ms, >= 5 ms after their due time.
    pub late_hist: [u64; 4],
    pub late_us_max: u64,
}

struct Log {
    out: Box<dyn Write>,
    prefix: String,
}

impl Log {
    fn line(&mut self, msg: std::fmt::Arguments) {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let (s, us) = (t.as_secs(), t.subsec_micros());
        let _ = writeln!(self.out, "{s}.{us:06} {} {msg}", self.prefix);
        let _ = self.out.flush();
    }
}

fn io_err(what: &'static str) -> impl Fn(std::io::Error) -> String {
    move |err| format!("{what}: {err}")
}

fn load(path: &std::path::Path) -> Result<rules::RuleFile, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    rules::parse(&text)
}

/// Runs the daemon; returns the process exit code (0 normal end, 1 error, 2 usage).
pub fn main(argv: &[String]) -> i32 {
    if argv.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return 0;
    }
    let args = match Args::parse(argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("testbed-netem: {e}\n{USAGE}");
            return 2;
        }
    };
    let out: Box<dyn Write> = match &args.log {
        None => Box::new(std::io::stderr()),
        Some(p) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
        {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("testbed-netem: cannot open log {}: {e}", p.display());
                return 1;
            }
        },
    };
    let (pid, tb, node, q) = (std::process::id(), &args.testbed, &args.node, args.queue);
    let mut log = Log {
        out,
        prefix: format!("testbed-netem[{pid}] testbed={tb} node={node} queue={q}:"),
    };
    let result = Daemon::start(&args, &mut log).and_then(|mut d| d.run());
    if let Some(p) = &args.pid_file {
        sys::remove_pid_file(p, pid);
    }
    match result {
        Ok(()) => 0,
        Err(e) => {
            log.line(format_args!("fatal: {e}"));
            1
        }
    }
}

struct Daemon<'a> {
    args: &'a Args,
    log: &'a mut Log,
    queue: Queue,
    signals: sys::SignalFd,
    pidfd: Option<OwnedFd>,
    table: RuleTable,
    rng: SplitMix64,
    /// (due, arrival sequence number, packet id): FIFO among equal due times.
    held: BinaryHeap<Reverse<(Instant, u64, u32)>>,
    seq: u64,
    stats: Stats,
    vbuf: Vec<u8>,
    rbuf: Vec<u8>,
    start: Instant,
}

impl<'a> Daemon<'a> {
    fn start(args: &'a Args, log: &'a mut Log) -> Result<Daemon<'a>, String> {
        let first = load(&args.rules)?;
        let sigs = [libc::SIGHUP, libc::SIGTERM, libc::SIGINT, libc::SIGUSR1];
        let signals = sys::SignalFd::new(&sigs).map_err(io_err("signalfd"))?;
        let pidfd = match sys::pidfd_open(args.netns_pid) {
            Ok(fd) => Some(fd),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                return Err(format!("process {} not found", args.netns_pid))
            }
            Err(_) => None, // no pidfd on this kernel: poll for the process instead
        };
        sys::enter_netns_of(args.netns_pid).map_err(io_err("setns"))?;
        let _ = sys::set_timer_slack_ns(1);
        let rt = match args.rt_prio {
            0 => "off".to_string(),
            p => sys::set_realtime(p)
                .map_or_else(|e| format!("failed ({e})"), |()| format!("SCHED_FIFO {p}")),
        };
        let flags = nfqueue::FLAG_FAIL_OPEN | if args.gso { nfqueue::FLAG_GSO } else { 0 };
        let cfg = Config {
            queue: args.queue,
            copy_range: args.copy_range,
            maxlen: args.maxlen,
            flags,
        };
        let queue = Queue::open(cfg, 8 << 20).map_err(io_err("bind NFQUEUE"))?;
        if let Some(p) = &args.pid_file {
            sys::write_pid_file(p, std::process::id()).map_err(io_err("pid file"))?;
        }
        let rules_json = serde_json::to_string(&first).unwrap_or_default();
        log.line(format_args!(
            "start seed={} netns_pid={} {cfg:?} rt={rt} max_sleep_us={} rules={rules_json}",
            args.seed, args.netns_pid, args.max_sleep_us
        ));
        Ok(Daemon {
            args,
            log,
            queue,
            signals,
            pidfd,
            table: RuleTable::default().install(&first, 0),
            rng: SplitMix64::new(args.seed),
            held: BinaryHeap::new(),
            seq: 0,
            stats: Stats::default(),
            vbuf: Vec::with_capacity(64 * 1024),
            rbuf: vec![0u8; 70_000],
            start: Instant::now(),
        })
    }

    fn run(&mut self) -> Result<(), String> {
        let mut next_alive_check = Instant::now();
        let why = loop {
            self.release_due();
            let now = Instant::now();
            let mut timeout = self
                .held
                .peek()
                .map(|Reverse((due, _, _))| due.saturating_duration_since(now));
            if self.args.max_sleep_us > 0 {
                let cap = Duration::from_micros(self.args.max_sleep_us);
                timeout = timeout.map(|t| t.min(cap));
            }
            if self.pidfd.is_none() {
                let cap = Duration::from_millis(250);
                timeout = Some(timeout.map_or(cap, |t| t.min(cap)));
            }
            let pidfd = self.pidfd.as_ref().map_or(-1, |f| f.as_raw_fd());
            let mut fds = [
                libc::pollfd {
                    fd: self.queue.fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.signals.fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: pidfd,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            sys::ppoll(&mut fds, timeout).map_err(io_err("ppoll"))?;
            if fds[0].revents != 0 {
                self.receive()?;
            }
            if let Some(why) = self.handle_signals() {
                break why;
            }
            if fds[2].revents != 0 {
                break "target process exited";
            }
            if self.pidfd.is_none() && Instant::now() >= next_alive_check {
                next_alive_check = Instant::now() + Duration::from_millis(250);
                if !sys::process_alive(self.args.netns_pid) {
                    break "target process exited";
                }
            }
        };
        let n = self.held.len();
        while let Some(Reverse((_, _, id))) = self.held.pop() {
            self.push(id, Verdict::Accept);
        }
        self.flush();
        let stats = &self.stats;
        self.log.line(format_args!(
            "exit ({why}), released {n} held packets early; {stats:?}"
        ));
        Ok(())
    }

    fn release_due(&mut self) {
        // within 20 µs of the due time: release rather than sleep again
        let horizon = Instant::now() + Duration::from_micros(20);
        while let Some(&Reverse((due, _, id))) = self.held.peek() {
            if due > horizon {
                break;
            }
            self.held.pop();
            let late = Instant::now().saturating_duration_since(due).as_micros() as u64;
            let bucket = match late {
                0..100 => 0,
                100..1000 => 1,
                1000..5000 => 2,
                _ => 3,
            };
            self.stats.late_hist[bucket] += 1;
            self.stats.late_us_max = self.stats.late_us_max.max(late);
            self.push(id, Verdict::Accept);
        }
        self.flush();
    }

    /// Reads what the socket holds, at most 256 datagrams so that a flood
    /// cannot hold back the release of packets that are due.
    fn receive(&mut self) -> Result<(), String> {
        for _ in 0..256 {
            let n = match self.queue.recv(&mut self.rbuf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    self.stats.enobufs += 1; // announcements lost; FAIL_OPEN accepted those packets
                    continue;
                }
                Err(e) => return Err(format!("recv: {e}")),
            };
            let arrived = Instant::now();
            let now_ns = arrived.duration_since(self.start).as_nanos() as u64;
            let buf = std::mem::take(&mut self.rbuf);
            for m in nfqueue::parse(&buf[..n]) {
                match m {
                    Ok(Message::Packet(p)) => self.on_packet(p.id, p.payload, arrived, now_ns),
                    Ok(Message::Error { errno, seq }) if errno != 0 => {
                        self.stats.kernel_errors += 1;
                        if self.stats.kernel_errors <= 10 {
                            self.log
                                .line(format_args!("kernel error {errno} for request seq {seq}"));
                        }
                    }
                    Ok(_) => {}
                    Err(e) => self.log.line(format_args!("bad message: {e}")),
                }
            }
            self.rbuf = buf;
        }
        self.flush();
        Ok(())
    }

    fn on_packet(&mut self, id: u32, payload: &[u8], arrived: Instant, now_ns: u64) {
        self.stats.received += 1;
        let Some(ip) = nfqueue::ip_summary(payload) else {
            self.stats.not_ip += 1;
            return self.push(id, Verdict::Accept);
        };
        match self.table.decide(ip.src, ip.dst, now_ns, &mut self.rng) {
            Fate::Drop(reason) => {
                match reason {
                    DropReason::Loss => self.stats.dropped_loss += 1,
                    DropReason::Flap => self.stats.dropped_flap += 1,
                }
                self.push(id, Verdict::Drop);
            }
            Fate::Pass { delay_us: 0 } => {
                self.stats.passed_now += 1;
                self.push(id, Verdict::Accept);
            }
            Fate::Pass { delay_us } => {
                self.stats.delayed += 1;
                self.seq += 1;
                let due = arrived + Duration::from_micros(delay_us);
                self.held.push(Reverse((due, self.seq, id)));
                self.stats.max_held = self.stats.max_held.max(self.held.len());
            }
        }
    }

    /// Handles pending signals; returns why to stop, if a signal asks for it.
    fn handle_signals(&mut self) -> Option<&'static str> {
        while let Some(sig) = self.signals.read() {
            match sig {
                libc::SIGHUP => self.reload(),
                libc::SIGUSR1 => {
                    let (held, stats) = (self.held.len(), &self.stats);
                    self.log.line(format_args!("stats held={held} {stats:?}"));
                }
                libc::SIGTERM => return Some("SIGTERM"),
                _ => return Some("SIGINT"),
            }
        }
        None
    }

    fn reload(&mut self) {
        let now_ns = Instant::now().duration_since(self.start).as_nanos() as u64;
        match load(&self.args.rules) {
            Ok(f) => {
                self.table = self.table.install(&f, now_ns);
                let json = serde_json::to_string(&f).unwrap_or_default();
                let stats = &self.stats;
                self.log.line(format_args!(
                    "reload seed={} rules={json} (until now: {stats:?})",
                    self.args.seed
                ));
            }
            Err(e) => {
                let n = self.table.len();
                self.log.line(format_args!(
                    "reload failed, keeping the {n} rules in force: {e}"
                ));
            }
        }
    }

    fn push(&mut self, id: u32, v: Verdict) {
        nfqueue::encode_verdict(&mut self.vbuf, 0, self.args.queue, id, v);
        if self.vbuf.len() > 60 * 1024 {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.vbuf.is_empty() {
            if self.queue.send(&self.vbuf).is_err() {
                self.stats.kernel_errors += 1;
            }
            self.vbuf.clear();
        }
    }
}
