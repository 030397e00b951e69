//! Failover phase timings derived from the timeline (fault -> sdown -> odown
//! -> elected -> promoted -> every sentinel switched -> VIP answering ->
//! client recovered), and the `timings.jsonl` file tests append them to.

use crate::observe::timeline::{Event, Kind};
use serde::Serialize;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

/// ms from the fault to each phase; `None` when it did not happen.
#[derive(Debug, Clone, Serialize)]
pub struct Phases {
    pub run: String,
    pub image: String,
    pub down_after_ms: u64,
    pub sdown_ms: Option<f64>,
    pub odown_ms: Option<f64>,
    pub elected_ms: Option<f64>,
    pub promoted_ms: Option<f64>,
    /// The last of the sentinels' first `+switch-master`.
    pub switch_all_ms: Option<f64>,
    pub vip_answering_ms: Option<f64>,
    pub client_recovered_ms: Option<f64>,
    /// How many sentinels published `+switch-master`.
    pub sentinels_switched: usize,
}

/// Computes the phases of the failover that follows the fault at `fault_ms`.
pub fn phases(
    run: &str,
    image: &str,
    down_after_ms: u64,
    events: &[Event],
    fault_ms: f64,
) -> Phases {
    let after: Vec<&Event> = events.iter().filter(|e| e.t_ms >= fault_ms).collect();
    let first = |kind: Kind, name: &str, pred: &dyn Fn(&Event) -> bool| {
        after
            .iter()
            .find(|e| e.kind == kind && e.name == name && pred(e))
            .map(|e| e.t_ms - fault_ms)
    };
    let any = |_: &Event| true;
    let on_master = |e: &Event| e.detail.starts_with("master ");
    let mut seen = BTreeSet::new();
    let mut switch_all = None;
    for e in after
        .iter()
        .filter(|e| e.kind == Kind::Sentinel && e.name == "+switch-master")
    {
        if seen.insert(e.source.clone()) {
            switch_all = Some(e.t_ms - fault_ms);
        }
    }
    Phases {
        run: run.to_string(),
        image: image.to_string(),
        down_after_ms,
        sdown_ms: first(Kind::Sentinel, "+sdown", &on_master),
        odown_ms: first(Kind::Sentinel, "+odown", &any),
        elected_ms: first(Kind::Sentinel, "+elected-leader", &any),
        promoted_ms: first(Kind::Sentinel, "+promoted-slave", &any),
        switch_all_ms: switch_all,
        vip_answering_ms: first(Kind::Observation, "vip-answering", &any),
        client_recovered_ms: first(Kind::Observation, "client-recovered", &any),
        sentinels_switched: seen.len(),
    }
}

impl Phases {
    /// One line per phase.
    pub fn render(&self) -> String {
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0} ms"));
        format!(
            "phases of {} ({}, down-after {} ms), from the fault:\n  sdown {}\n  odown {}\n  elected {}\n  promoted {}\n  all {} sentinels switched {}\n  VIP answering {}\n  client recovered {}\n",
            self.run,
            self.image,
            self.down_after_ms,
            f(self.sdown_ms),
            f(self.odown_ms),
            f(self.elected_ms),
            f(self.promoted_ms),
            self.sentinels_switched,
            f(self.switch_all_ms),
            f(self.vip_answering_ms),
            f(self.client_recovered_ms)
        )
    }

    /// Appends this as one JSON line to `<state_root>/timings.jsonl`.
    pub fn append(&self, state_root: &Path) -> crate::Result<()> {
        std::fs::create_dir_all(state_root).map_err(|e| crate::Error::io(state_root, e))?;
        let p = state_root.join("timings.jsonl");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(|e| crate::Error::io(&p, e))?;
        writeln!(f, "{}", serde_json::to_string(self).expect("serialises"))
            .map_err(|e| crate::Error::io(&p, e))
    }
}
