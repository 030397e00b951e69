//! `testbed-netem`: the delay/jitter/loss/flap daemon of the testbed's link
//! impairments, bound to an NFQUEUE inside the network namespace of a
//! node. The testbed starts one per impaired node; see
//! `testbed::faults::impair` and `--help`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(testbed::faults::impair::netem::daemon::main(&args));
}
